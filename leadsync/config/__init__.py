"""leadsync.config."""
