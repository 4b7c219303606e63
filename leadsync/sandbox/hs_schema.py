"""HubSpot contact and task property definitions and value normalisation.

HubSpot sends every property value as a string; dates as ISO-8601 and accepts epoch ms on write.
The definitions follow the properties API shape so `GET /crm/v3/properties/contacts` can serve
them as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from leadsync.sandbox.store import hs_time, parse_time

LIFECYCLE = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
LEAD_STATUS = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)
EMPLOYEE_BANDS = ("1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+")
READ_ONLY = frozenset(
    {"hs_object_id", "createdate", "lastmodifieddate", "hs_createdate", "hs_lastmodifieddate",
     "associatedcompanyid"}
)

# name, label, type, fieldType, options
_CONTACT: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("email", "Email", "string", "text", ()),
    ("firstname", "First Name", "string", "text", ()),
    ("lastname", "Last Name", "string", "text", ()),
    ("jobtitle", "Job Title", "string", "text", ()),
    ("company", "Company Name", "string", "text", ()),
    ("numemployees", "Number of Employees", "enumeration", "select", EMPLOYEE_BANDS),
    ("industry", "Industry", "string", "text", ()),
    ("country", "Country/Region", "string", "text", ()),
    ("state", "State/Region", "string", "text", ()),
    ("annualrevenue", "Annual Revenue", "string", "text", ()),
    (
        "hs_analytics_source",
        "Original Source",
        "enumeration",
        "select",
        (
            "ORGANIC_SEARCH",
            "PAID_SEARCH",
            "EMAIL_MARKETING",
            "SOCIAL_MEDIA",
            "REFERRALS",
            "OTHER_CAMPAIGNS",
            "DIRECT_TRAFFIC",
            "OFFLINE",
        ),
    ),
    ("hs_lead_status", "Lead Status", "enumeration", "radio", LEAD_STATUS),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", LIFECYCLE),
    ("hubspot_owner_id", "Contact owner", "enumeration", "select", ()),
    ("createdate", "Create Date", "datetime", "date", ()),
    ("lastmodifieddate", "Last Modified Date", "datetime", "date", ()),
    ("hs_object_id", "Record ID", "number", "number", ()),
    # the primary company's id, kept by HubSpot as associations change (read-only since 2019)
    ("associatedcompanyid", "Primary Associated Company ID", "number", "number", ()),
    ("salesforceleadid", "Salesforce Lead ID", "string", "text", ()),
    ("salesforcecontactid", "Salesforce Contact ID", "string", "text", ()),
    ("bant_budget", "BANT Budget", "bool", "booleancheckbox", ("true", "false")),
    ("bant_authority", "BANT Authority", "bool", "booleancheckbox", ("true", "false")),
    ("bant_need", "BANT Need", "bool", "booleancheckbox", ("true", "false")),
    ("bant_timeline", "BANT Timeline", "bool", "booleancheckbox", ("true", "false")),
]

LEADSYNC: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("leadsync_score", "LeadSync score", "number", "number", ()),
    ("leadsync_fit_grade", "LeadSync fit grade", "string", "text", ()),
    ("leadsync_engagement", "LeadSync engagement", "number", "number", ()),
    (
        "leadsync_stage",
        "LeadSync stage",
        "enumeration",
        "select",
        ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified"),
    ),
    ("leadsync_reasons", "LeadSync reasons", "string", "textarea", ()),
    ("leadsync_mql_at", "LeadSync MQL at", "datetime", "date", ()),
    ("leadsync_sql_at", "LeadSync SQL at", "datetime", "date", ()),
    ("leadsync_sla_due", "LeadSync SLA due", "datetime", "date", ()),
    (
        "leadsync_sla_status",
        "LeadSync SLA status",
        "enumeration",
        "select",
        ("none", "on_track", "due_soon", "breached", "met"),
    ),
    ("leadsync_model", "LeadSync model", "string", "text", ()),
    ("leadsync_routed_by", "LeadSync routed by", "string", "text", ()),
]

TASK_TYPES: dict[str, str] = {
    "hs_timestamp": "datetime",
    "hs_task_subject": "string",
    "hs_task_body": "string",
    "hubspot_owner_id": "enumeration",
    "hs_task_status": "enumeration",
    "hs_task_priority": "enumeration",
    "hs_task_type": "enumeration",
    "hs_createdate": "datetime",
    "hs_lastmodifieddate": "datetime",
    "hs_object_id": "number",
}
TASK_OPTIONS: dict[str, tuple[str, ...]] = {
    "hs_task_status": ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
    "hs_task_priority": ("NONE", "LOW", "MEDIUM", "HIGH"),
    "hs_task_type": ("EMAIL", "CALL", "TODO"),
}


def property_definition(
    name: str,
    label: str,
    type_: str,
    field_type: str,
    *,
    options: tuple[str, ...],
    group: str,
    now: datetime,
) -> dict[str, Any]:
    """A property in the shape of the properties API."""
    stamp = hs_time(now)
    return {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "groupName": group,
        "description": "",
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": False,
        "hidden": False,
        "formField": True,
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
        "options": [
            {"label": o, "value": o, "displayOrder": i, "hidden": False}
            for i, o in enumerate(options)
        ],
        "modificationMetadata": {
            "archivable": True,
            "readOnlyDefinition": not name.startswith("leadsync_"),
            "readOnlyValue": name in READ_ONLY,
        },
    }


def default_properties(now: datetime, provisioned: bool) -> dict[str, dict[str, Any]]:
    """The contact properties of a fresh portal, plus leadsync's when `provisioned`."""
    out = {
        p[0]: property_definition(*p[:4], options=p[4], group="contactinformation", now=now)
        for p in _CONTACT
    }
    if provisioned:
        out.update(
            {
                p[0]: property_definition(*p[:4], options=p[4], group="leadsync", now=now)
                for p in LEADSYNC
            }
        )
    return out


def normalize(type_: str, options: list[str], value: Any) -> str:
    """A written value in HubSpot's stored form; ValueError with HubSpot's wording if invalid."""
    if value is None or value == "":
        return ""
    text = str(value).strip() if not isinstance(value, bool) else ("true" if value else "false")
    if type_ == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} was not a valid number.") from None
        return str(int(number)) if number.is_integer() else repr(number)
    if type_ in ("datetime", "date"):
        return normalize_time(text, date_only=type_ == "date")
    if type_ == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text[:40]!r} was not one of the allowed options: [true, false]")
        return text.lower()
    if type_ == "enumeration" and options and any(v not in options for v in text.split(";")):
        raise ValueError(
            f"{text[:40]!r} was not one of the allowed options: [{', '.join(options)}]"
        )
    return text


def normalize_time(text: str, date_only: bool = False) -> str:
    """Epoch milliseconds or ISO-8601 -> HubSpot's ISO form (ValueError if neither)."""
    if text.lstrip("-").isdigit():
        moment = datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    else:
        try:
            moment = parse_time(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a valid date (epoch ms or ISO-8601)") from None
    return moment.date().isoformat() if date_only else hs_time(moment)
