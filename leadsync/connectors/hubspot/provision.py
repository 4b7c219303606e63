"""HubSpot provisioning (the `leadsync` property group and its properties) and `check`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadsync.config.settings import HubSpotFieldNames
from leadsync.connectors.account_values import HUBSPOT_ACCOUNT_PROPERTIES
from leadsync.connectors.base import ConnectorError
from leadsync.connectors.hubspot.client import HubSpotClient, HubSpotRequestError
from leadsync.scoring.profile import STAGE_ORDER, STAGES

GROUP = "leadsync"
_STAGES = list(STAGE_ORDER) + sorted(STAGES - set(STAGE_ORDER))
_SLA = ["none", "on_track", "due_soon", "breached", "met"]

# logical name -> (label, type, fieldType, options)
PROPERTY_SPECS: Mapping[str, tuple[str, str, str, list[str]]] = {
    "score": ("LeadSync score", "number", "number", []),
    "fit_grade": ("LeadSync fit grade", "string", "text", []),
    "engagement": ("LeadSync engagement", "number", "number", []),
    "stage": ("LeadSync stage", "enumeration", "select", _STAGES),
    "reasons": ("LeadSync reasons", "string", "textarea", []),
    "mql_at": ("LeadSync MQL at", "datetime", "date", []),
    "sql_at": ("LeadSync SQL at", "datetime", "date", []),
    "sla_due": ("LeadSync SLA due", "datetime", "date", []),
    "sla_status": ("LeadSync SLA status", "enumeration", "select", _SLA),
    "model": ("LeadSync model", "string", "text", []),
    "routed_by": ("LeadSync routed by", "string", "text", []),
}


def property_create(name: str, logical: str) -> dict[str, Any]:
    label, ptype, field_type, options = PROPERTY_SPECS[logical]
    body: dict[str, Any] = {"name": name, "label": label, "type": ptype,
                            "fieldType": field_type, "groupName": GROUP}  # fmt: skip
    if options:
        body["options"] = [
            {"label": o, "value": o, "hidden": False, "displayOrder": i}
            for i, o in enumerate(options)
        ]
    return body


def _existing(client: HubSpotClient) -> dict[str, dict[str, Any]]:
    _, page = client.call("properties", client.properties.get_all, "contacts")
    return {str(p.get("name")): p for p in page.get("results", []) or []}


def provision(client: HubSpotClient, fields: HubSpotFieldNames) -> list[str]:
    """Create the group and any missing properties; return what was done, line by line."""
    done: list[str] = []
    _, groups = client.call("property groups", client.groups.get_all, "contacts")
    if any(g.get("name") == GROUP for g in groups.get("results", []) or []):
        done.append(f"group {GROUP}: exists")
    else:
        body = {"name": GROUP, "label": "LeadSync", "displayOrder": -1}
        try:
            client.call("create property group", client.groups.create, "contacts", body)
        except HubSpotRequestError as exc:
            # 409: it exists — another provision, or our own create whose reply was lost and
            # was replayed (creating a group changes nothing when replayed, so it may retry).
            if exc.status != 409:
                raise
            done.append(f"group {GROUP}: exists")
        else:
            done.append(f"group {GROUP}: created")
    existing = _existing(client)
    for logical, name in fields.model_dump().items():
        if name in existing:
            done.append(f"property {name}: exists")
            continue
        try:
            client.call("create property", client.properties.create, "contacts",
                        property_create(name, logical))  # fmt: skip
        except HubSpotRequestError as exc:
            if exc.status != 409:
                raise
            done.append(f"property {name}: exists")
            continue
        done.append(f"property {name}: created")
    return done + provision_companies(client)


# logical account field -> (label, type, fieldType) of the company property (docs/accounts.md)
COMPANY_SPECS: Mapping[str, tuple[str, str, str]] = {
    "account_score": ("LeadSync account score", "number", "number"),
    "account_reasons": ("LeadSync account reasons", "string", "textarea"),
    "engaged_people": ("LeadSync engaged people", "number", "number"),
    "mqa_at": ("LeadSync MQA at", "datetime", "date"),
    "model": ("LeadSync model", "string", "text"),
}


def _existing_companies(client: HubSpotClient) -> dict[str, dict[str, Any]]:
    _, page = client.call("company properties", client.properties.get_all, "companies")
    return {str(p.get("name")): p for p in page.get("results", []) or []}


def _create(client: HubSpotClient, op: str, fn: Any, body: dict[str, Any], what: str) -> str:
    """Create one group or property; 409 (it exists, or our replayed create) is fine."""
    try:
        client.call(op, fn, "companies", body)
    except HubSpotRequestError as exc:
        if exc.status != 409:
            raise
        return f"{what}: exists"
    return f"{what}: created"


def provision_companies(client: HubSpotClient) -> list[str]:
    """The `leadsync` company property group and the account properties."""
    _, groups = client.call("company property groups", client.groups.get_all, "companies")
    if any(g.get("name") == GROUP for g in groups.get("results", []) or []):
        done = [f"company group {GROUP}: exists"]
    else:
        done = [_create(client, "create company property group", client.groups.create,
                        {"name": GROUP, "label": "LeadSync", "displayOrder": -1},
                        f"company group {GROUP}")]
    existing = _existing_companies(client)
    for logical, name in HUBSPOT_ACCOUNT_PROPERTIES.items():
        if name in existing:
            done.append(f"company property {name}: exists")
            continue
        label, ptype, field_type = COMPANY_SPECS[logical]
        done.append(_create(client, "create company property", client.properties.create,
                            {"name": name, "label": label, "type": ptype,
                             "fieldType": field_type, "groupName": GROUP},
                            f"company property {name}"))
    return done


def company_problems(existing: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Missing or mistyped account properties on companies (pure, for `check`)."""
    problems: list[str] = []
    for logical, name in HUBSPOT_ACCOUNT_PROPERTIES.items():
        prop = existing.get(name)
        expected = COMPANY_SPECS[logical][1]
        if prop is None:
            problems.append(f"HubSpot: company property {name} is missing "
                            "(run leadsync provision)")
        elif str(prop.get("type")) != expected:
            problems.append(f"HubSpot: company property {name} has type {prop.get('type')}, "
                            f"expected {expected}")
    return problems


def field_problems(
    existing: Mapping[str, Mapping[str, Any]], fields: HubSpotFieldNames
) -> list[str]:
    """Missing or mistyped written properties (pure, for `check`)."""
    problems: list[str] = []
    for logical, name in fields.model_dump().items():
        prop = existing.get(name)
        expected = PROPERTY_SPECS[logical][1]
        if prop is None:
            problems.append(f"HubSpot: contact property {name} is missing (run leadsync provision)")
        elif str(prop.get("type")) != expected:
            problems.append(
                f"HubSpot: contact property {name} has type {prop.get('type')}, expected {expected}"
            )
    if "lifecyclestage" not in existing:
        problems.append("HubSpot: contact property lifecyclestage is missing")
    return problems


def check(client: HubSpotClient, fields: HubSpotFieldNames) -> list[str]:
    """Connectivity, token and scopes (one cheap call per scope) and the written properties."""
    try:
        problems = field_problems(_existing(client), fields)
    except ConnectorError as exc:
        return [f"HubSpot: cannot read contact properties: {exc}"]
    try:
        problems += company_problems(_existing_companies(client))
    except ConnectorError as exc:
        problems.append(f"HubSpot: cannot read company properties: {exc}")
    probes: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("crm.objects.contacts.read", "contacts list", client.contacts_basic.get_page,
         {"limit": 1}),
        ("crm.objects.owners.read", "owners", client.owners.get_page, {"limit": 1}),
        ("events read", "events", client.events.get_page,
         {"object_type": "contact", "limit": 1}),
    ]  # fmt: skip
    for scope, op, fn, kwargs in probes:
        try:
            client.call(op, fn, **kwargs)
        except ConnectorError as exc:
            problems.append(f"HubSpot: scope {scope} not usable: {exc}")
    return problems
