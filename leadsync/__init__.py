"""leadsync: one shared lead definition (score, stage, SLA) executed in HubSpot and Salesforce."""

__version__ = "0.1.0"
