"""leadsync.sandbox."""
