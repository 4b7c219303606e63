"""leadsync.connectors."""
