"""The Salesforce metadata package for `leadsync provision` and the describe-based field check.

leadsync never deploys metadata itself (that needs Modify Metadata, more than an integration
user should hold): it writes a source-format project the admin deploys with
`sf project deploy start --source-dir force-app`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from leadsync.config.settings import SalesforceFieldNames
from leadsync.scoring.profile import STAGE_ORDER, STAGES

OBJECTS = ("Lead", "Contact")
STAGE_VALUES = list(STAGE_ORDER) + sorted(STAGES - set(STAGE_ORDER))
SLA_VALUES = ["none", "on_track", "due_soon", "breached", "met"]

# logical -> (label, metadata type, describe type, extra XML elements, picklist values)
FIELD_SPECS: Mapping[str, tuple[str, str, str, str, list[str]]] = {
    "score": ("LeadSync Score", "Number", "double", "<precision>4</precision><scale>0</scale>", []),
    "fit_grade": ("LeadSync Fit Grade", "Text", "string", "<length>1</length>", []),
    "engagement": ("LeadSync Engagement", "Number", "double",
                   "<precision>4</precision><scale>0</scale>", []),
    "stage": ("LeadSync Stage", "Picklist", "picklist", "", STAGE_VALUES),
    "reasons": ("LeadSync Reasons", "Text", "string", "<length>255</length>", []),
    "mql_at": ("LeadSync MQL At", "DateTime", "datetime", "", []),
    "sql_at": ("LeadSync SQL At", "DateTime", "datetime", "", []),
    "sla_due": ("LeadSync SLA Due", "DateTime", "datetime", "", []),
    "sla_status": ("LeadSync SLA Status", "Picklist", "picklist", "", SLA_VALUES),
    "model": ("LeadSync Model", "Text", "string", "<length>40</length>", []),
    "routed_by": ("LeadSync Routed By", "Text", "string", "<length>255</length>", []),
}  # fmt: skip
TEXT_LENGTHS = {"fit_grade": 1, "reasons": 255, "model": 40, "routed_by": 255}
#: the Account fields (docs/accounts.md): API name -> (label, type, describe type, extra, length)
ACCOUNT_SPECS: Mapping[str, tuple[str, str, str, str, int | None]] = {
    "LeadSync_Account_Score__c": ("LeadSync Account Score", "Number", "double",
                                  "<precision>4</precision><scale>0</scale>", None),
    "LeadSync_Account_Reasons__c": ("LeadSync Account Reasons", "Text", "string",
                                    "<length>255</length>", 255),
    "LeadSync_Engaged_People__c": ("LeadSync Engaged People", "Number", "double",
                                   "<precision>4</precision><scale>0</scale>", None),
    "LeadSync_MQA_At__c": ("LeadSync MQA At", "DateTime", "datetime", "", None),
    "LeadSync_Model__c": ("LeadSync Model", "Text", "string", "<length>40</length>", 40),
}  # fmt: skip


def account_field_xml(api_name: str) -> str:
    """One Account `<CustomField>` in source format."""
    label, mtype, _, extra, _ = ACCOUNT_SPECS[api_name]
    return custom_field_xml(api_name, label, mtype, "account score", extra=extra, values=())


def account_problems(describe: Mapping[str, Any]) -> list[str]:
    """LeadSync account fields missing, read-only, mistyped or too short on Account (pure)."""
    by_name = {str(f.get("name")): f for f in describe.get("fields", []) or []}
    problems: list[str] = []
    for api_name, (_, _, expected, _, length) in ACCOUNT_SPECS.items():
        found = by_name.get(api_name)
        if found is None:
            problems.append(f"Salesforce: Account.{api_name} is missing "
                            "(deploy the provision package)")
            continue
        if found.get("updateable") is False:
            problems.append(f"Salesforce: Account.{api_name} is not writable by the "
                            "integration user")
        if str(found.get("type")) != expected:
            problems.append(f"Salesforce: Account.{api_name} has type {found.get('type')}, "
                            f"expected {expected}")
        if length and isinstance(found.get("length"), int) and found["length"] < length:
            problems.append(f"Salesforce: Account.{api_name} holds {found['length']} "
                            f"characters, leadsync writes up to {length}")
    return problems


def field_xml(api_name: str, logical: str) -> str:
    """One `<CustomField>` in source format."""
    label, mtype, _, extra, values = FIELD_SPECS[logical]
    return custom_field_xml(api_name, label, mtype, logical, extra=extra, values=values)


def custom_field_xml(api_name: str, label: str, mtype: str, written_for: str, *,
                     extra: str | None, values: Sequence[str]) -> str:
    """A `<CustomField>` leadsync writes (`written_for` names it in the description), with an
    optional extra element and a restricted picklist of `values`."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">',
        f"    <fullName>{escape(api_name)}</fullName>",
        f"    <label>{escape(label)}</label>",
        f"    <type>{mtype}</type>",
        "    <externalId>false</externalId>",
        "    <required>false</required>",
        "    <trackHistory>false</trackHistory>",
        f"    <description>Written by leadsync ({written_for}); do not edit by hand.</description>",
    ]
    if extra:
        parts.append(f"    {extra}")
    if values:
        parts.append("    <valueSet><restricted>true</restricted><valueSetDefinition>")
        parts.append("        <sorted>false</sorted>")
        parts.extend(
            f"        <value><fullName>{escape(v)}</fullName><default>false</default>"
            f"<label>{escape(v)}</label></value>"
            for v in values
        )
        parts.append("    </valueSetDefinition></valueSet>")
    parts.append("</CustomField>")
    return "\n".join(parts) + "\n"


def write_package(out_dir: Path, fields: SalesforceFieldNames, api_version: str) -> list[str]:
    """Write sfdx-project.json and one field file per written field and object; return paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    project = {
        "packageDirectories": [{"path": "force-app", "default": True}],
        "name": "leadsync-fields",
        "namespace": "",
        "sourceApiVersion": api_version,
    }
    written: list[str] = []
    project_file = out_dir / "sfdx-project.json"
    project_file.write_text(json.dumps(project, indent=2) + "\n", encoding="utf-8")
    written.append(str(project_file))
    for obj in OBJECTS:
        folder = out_dir / "force-app" / "main" / "default" / "objects" / obj / "fields"
        folder.mkdir(parents=True, exist_ok=True)
        for logical, api_name in fields.model_dump().items():
            path = folder / f"{api_name}.field-meta.xml"
            path.write_text(field_xml(api_name, logical), encoding="utf-8")
            written.append(str(path))
    folder = out_dir / "force-app" / "main" / "default" / "objects" / "Account" / "fields"
    folder.mkdir(parents=True, exist_ok=True)
    for api_name in ACCOUNT_SPECS:
        path = folder / f"{api_name}.field-meta.xml"
        path.write_text(account_field_xml(api_name), encoding="utf-8")
        written.append(str(path))
    return written


def describe_problems(
    obj: str, describe: Mapping[str, Any], fields: SalesforceFieldNames
) -> list[str]:
    """Written fields missing, read-only, of the wrong type or too short on `obj` (pure)."""
    by_name = {str(f.get("name")): f for f in describe.get("fields", []) or []}
    problems: list[str] = []
    for logical, api_name in fields.model_dump().items():
        found = by_name.get(api_name)
        expected = FIELD_SPECS[logical][2]
        if found is None:
            problems.append(
                f"Salesforce: {obj}.{api_name} is missing (deploy the provision package)"
            )
            continue
        if found.get("updateable") is False:
            problems.append(f"Salesforce: {obj}.{api_name} is not writable by the integration user")
        if str(found.get("type")) != expected:
            problems.append(
                f"Salesforce: {obj}.{api_name} has type {found.get('type')}, expected {expected}"
            )
        length = TEXT_LENGTHS.get(logical)
        if length and isinstance(found.get("length"), int) and found["length"] < length:
            problems.append(f"Salesforce: {obj}.{api_name} holds {found['length']} characters, "
                            f"leadsync writes up to {length}")  # fmt: skip
    return problems
