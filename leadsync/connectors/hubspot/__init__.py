"""leadsync.connectors.hubspot."""
