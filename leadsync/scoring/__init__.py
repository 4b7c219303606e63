"""leadsync.scoring."""
