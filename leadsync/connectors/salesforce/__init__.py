"""leadsync.connectors.salesforce."""
