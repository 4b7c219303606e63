"""leadsync.tasks."""
