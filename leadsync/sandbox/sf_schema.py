"""The Salesforce objects the sandbox serves: fields, types, lengths, picklists, id prefixes.

One table drives SOQL field validation, parent-field lookups, sObject Collections value
checks and `describe` (docs/wire-contract.md lists the same fields).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SfField:
    name: str
    type: (
        str  # id string email textarea picklist boolean double int currency date datetime reference
    )
    length: int = 0
    updateable: bool = True
    picklist: tuple[str, ...] = ()
    required: bool = False


LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Qualified",
    "Unqualified",
    "Nurture",
)
STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified")
SLA_STATUSES = ("none", "on_track", "due_soon", "breached", "met")
OPP_STAGES = (
    "Prospecting",
    "Qualification",
    "Proposal",
    "Negotiation",
    "Closed Won",
    "Closed Lost",
)
# OpportunityStage: stage -> (IsClosed, IsWon). Opportunity.IsClosed/IsWon are derived from it
CLOSED_STAGES: dict[str, tuple[bool, bool]] = {"Closed Won": (True, True),
                                               "Closed Lost": (True, False)}  # fmt: skip
# a change to one of these fields adds an OpportunityHistory row (and so does the insert)
OPP_HISTORY_FIELDS = ("StageName", "Amount", "CloseDate")

_AUDIT = (
    SfField("Id", "id", 18, False),
    SfField("CreatedDate", "datetime", 0, False),
    SfField("SystemModstamp", "datetime", 0, False),
)
_MODIFIED = (SfField("LastModifiedDate", "datetime", 0, False),)
_BANT = tuple(
    SfField(f"BANT_{n}__c", "boolean") for n in ("Budget", "Authority", "Need", "Timeline")
)
_LEADSYNC = (
    SfField("LeadSync_Score__c", "double", 4),
    SfField("LeadSync_Fit_Grade__c", "string", 1),
    SfField("LeadSync_Engagement__c", "double", 4),
    SfField("LeadSync_Stage__c", "picklist", 40, picklist=STAGES),
    SfField("LeadSync_Reasons__c", "string", 255),
    SfField("LeadSync_MQL_At__c", "datetime"),
    SfField("LeadSync_SQL_At__c", "datetime"),
    SfField("LeadSync_SLA_Due__c", "datetime"),
    SfField("LeadSync_SLA_Status__c", "picklist", 40, picklist=SLA_STATUSES),
    SfField("LeadSync_Model__c", "string", 40),
    SfField("LeadSync_Routed_By__c", "string", 255),
)
_PERSON = (
    SfField("FirstName", "string", 40),
    SfField("LastName", "string", 80, required=True),
    SfField("Email", "email", 80),
    SfField("Title", "string", 128),
    SfField("LeadSource", "picklist", 40),
    SfField("OwnerId", "reference", 18),
)

OBJECTS: dict[str, tuple[SfField, ...]] = {
    "User": (
        *_AUDIT,
        SfField("Email", "email", 128),
        SfField("Name", "string", 121, False),
        SfField("Username", "string", 80),
        SfField("IsActive", "boolean"),
    ),
    # a queue (Type "Queue") can own Leads: OwnerId then starts with 00G (docs/routing.md)
    "Group": (
        *_AUDIT,
        SfField("Name", "string", 40),
        SfField("DeveloperName", "string", 80),
        SfField("Type", "string", 40),
    ),
    # which objects a queue may own (its "Supported Objects"); a record of any other object
    # owned by the queue is refused with FIELD_INTEGRITY_EXCEPTION (sf_records)
    "QueueSobject": (
        *_AUDIT[:2],
        SfField("QueueId", "reference", 18, False),
        SfField("SobjectType", "string", 40, False),
    ),
    "Lead": (
        *_AUDIT,
        *_MODIFIED,
        *_PERSON,
        SfField("Company", "string", 255, required=True),
        SfField("NumberOfEmployees", "int", 8),
        SfField("Industry", "picklist", 40),
        SfField("Country", "string", 80),
        SfField("State", "string", 80),
        SfField("AnnualRevenue", "currency", 18),
        SfField("Status", "picklist", 40, picklist=LEAD_STATUSES),
        SfField("IsConverted", "boolean", 0, False),
        SfField("ConvertedContactId", "reference", 18, False),
        SfField("ConvertedAccountId", "reference", 18, False),
        SfField("ConvertedDate", "date", 0, False),
        SfField("ConvertedOpportunityId", "reference", 18, False),
        *_BANT,
        *_LEADSYNC,
    ),
    "Account": (
        *_AUDIT,
        SfField("IsDeleted", "boolean", 0, False),  # true only in the recycle bin (queryAll)
        SfField("Name", "string", 255, required=True),
        SfField("Website", "url", 255),
        SfField("OwnerId", "reference", 18),
        SfField("Target_Account__c", "boolean"),  # the org's own target-account checkbox
        SfField("LeadSync_Account_Score__c", "double", 4),
        SfField("LeadSync_Account_Reasons__c", "string", 255),
        SfField("LeadSync_Engaged_People__c", "double", 4),
        SfField("LeadSync_MQA_At__c", "datetime"),
        SfField("LeadSync_Model__c", "string", 40),
        SfField("NumberOfEmployees", "int", 8),
        SfField("Industry", "picklist", 40),
        SfField("AnnualRevenue", "currency", 18),
        SfField("BillingCountry", "string", 80),
        SfField("BillingState", "string", 80),
    ),
    "Contact": (
        *_AUDIT,
        *_MODIFIED,
        *_PERSON,
        SfField("AccountId", "reference", 18),
        SfField("MailingState", "string", 80),
        *_BANT,
        *_LEADSYNC,
    ),
    "LeadHistory": (
        *_AUDIT[:2],
        SfField("LeadId", "reference", 18, False),
        SfField("Field", "string", 255, False),
        SfField("OldValue", "string", 255, False),
        SfField("NewValue", "string", 255, False),
    ),
    "Task": (
        *_AUDIT,
        *_MODIFIED,
        SfField("WhoId", "reference", 18),
        SfField("WhatId", "reference", 18),
        SfField("OwnerId", "reference", 18),
        SfField("Subject", "string", 255),
        SfField("Status", "picklist", 40, picklist=("Not Started", "In Progress", "Completed")),
        SfField("Priority", "picklist", 40, picklist=("High", "Normal", "Low")),
        SfField("ActivityDate", "date"),
        SfField("Description", "textarea", 32000),
        SfField("Type", "picklist", 40, picklist=("Call", "Email", "Meeting", "Other")),
        SfField("TaskSubtype", "picklist", 40, picklist=("Task", "Email", "Call")),
        SfField("IsReminderSet", "boolean"),
        SfField("ReminderDateTime", "datetime"),
    ),
    "Event": (
        *_AUDIT,
        SfField("WhoId", "reference", 18),
        SfField("OwnerId", "reference", 18),
        SfField("Subject", "string", 255),
        SfField("StartDateTime", "datetime"),
        SfField("Type", "picklist", 40),
    ),
    "Campaign": (*_AUDIT, SfField("Name", "string", 80), SfField("Type", "picklist", 40)),
    "CampaignMember": (
        *_AUDIT,
        SfField("CampaignId", "reference", 18),
        SfField("LeadId", "reference", 18),
        SfField("ContactId", "reference", 18),
        SfField("Status", "picklist", 40),
        SfField("HasResponded", "boolean", 0, False),
    ),
    "Opportunity": (
        *_AUDIT,
        *_MODIFIED,
        SfField("Name", "string", 120, required=True),
        SfField("StageName", "picklist", 40, picklist=OPP_STAGES, required=True),
        SfField("IsClosed", "boolean", 0, False),
        SfField("IsWon", "boolean", 0, False),
        SfField("CloseDate", "date", required=True),
        SfField("Amount", "currency", 18),
        SfField("OwnerId", "reference", 18),
        SfField("Description", "textarea", 32000),
    ),
    "OpportunityContactRole": (
        *_AUDIT,
        *_MODIFIED,
        SfField("OpportunityId", "reference", 18, required=True),
        SfField("ContactId", "reference", 18),
        SfField("IsPrimary", "boolean"),
        SfField("Role", "picklist", 40),
    ),
    # written by the server only: one row on insert and one per change of OPP_HISTORY_FIELDS
    "OpportunityHistory": (
        *_AUDIT,
        SfField("OpportunityId", "reference", 18, False),
        SfField("StageName", "picklist", 40, False, picklist=OPP_STAGES),
        SfField("CloseDate", "date", 0, False),
        SfField("Amount", "currency", 18, False),
    ),
    "OpportunityStage": (
        *_AUDIT,
        SfField("ApiName", "string", 255, False),
        SfField("MasterLabel", "string", 255, False),
        SfField("IsClosed", "boolean", 0, False),
        SfField("IsWon", "boolean", 0, False),
        SfField("IsActive", "boolean", 0, False),
        SfField("SortOrder", "int", 8, False),
    ),
}

FIELDS: dict[str, dict[str, SfField]] = {
    obj: {f.name: f for f in fields} for obj, fields in OBJECTS.items()
}
FIELDS_LOWER: dict[str, dict[str, str]] = {
    obj: {name.lower(): name for name in fields} for obj, fields in FIELDS.items()
}
OBJECT_NAMES: dict[str, str] = {name.lower(): name for name in OBJECTS}

ID_PREFIX = {
    "User": "005",
    "Group": "00G",
    "QueueSobject": "03g",
    "Lead": "00Q",
    "Account": "001",
    "Contact": "003",
    "LeadHistory": "017",
    "Task": "00T",
    "Event": "00U",
    "Campaign": "701",
    "CampaignMember": "00v",
    "Opportunity": "006",
    "OpportunityContactRole": "00K",
    "OpportunityHistory": "008",
    "OpportunityStage": "01J",
}
PREFIX_OBJECT = {prefix: obj for obj, prefix in ID_PREFIX.items()}

# relationship name -> (id field, parent object), per child object
PARENTS: dict[str, dict[str, tuple[str, str]]] = {
    "Contact": {"Account": ("AccountId", "Account")},
    "CampaignMember": {"Campaign": ("CampaignId", "Campaign")},
    "OpportunityContactRole": {"Opportunity": ("OpportunityId", "Opportunity")},
    "OpportunityHistory": {"Opportunity": ("OpportunityId", "Opportunity")},
    "Lead": {"Owner": ("OwnerId", "User"),
             "ConvertedOpportunity": ("ConvertedOpportunityId", "Opportunity")},
    "Task": {"Owner": ("OwnerId", "User")},
}


def describe(obj: str, version: str) -> dict[str, Any]:
    """The `describe` document of `obj`, with the keys clients read."""
    fields = []
    for f in OBJECTS[obj]:
        fields.append(
            {
                "name": f.name,
                "label": f.name.replace("__c", "").replace("_", " "),
                "type": f.type,
                "length": f.length,
                "updateable": f.updateable,
                "createable": f.updateable,
                "nillable": not f.required and f.type != "boolean",
                "custom": f.name.endswith("__c"),
                "picklistValues": [
                    {"value": v, "label": v, "active": True, "defaultValue": i == 0}
                    for i, v in enumerate(f.picklist)
                ],
            }
        )
    return {
        "name": obj,
        "label": obj,
        "keyPrefix": ID_PREFIX[obj],
        "custom": False,
        "createable": True,
        "updateable": True,
        "queryable": True,
        "fields": fields,
        "urls": {"sobject": f"/services/data/v{version}/sobjects/{obj}"},
    }
