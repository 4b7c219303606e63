"""Salesforce Accounts and the Account links of Contacts and Leads (docs/accounts.md).

- `iter_accounts`: every Account (`Id, Name, Website, Industry, NumberOfEmployees, OwnerId`)
  plus the org's target-account checkbox `Target_Account__c` when the org has one (one
  describe of Account per connector, cached), as attribute `target_account`.
- `read_account_links`: Contacts' `AccountId` and Leads' `ConvertedAccountId`, by id, 400 ids
  an IN (...) (the person read does not keep them, so this is one query per 400 records).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from simple_salesforce.format import format_soql

from leadsync.connectors.base import AccountLinks, CrmAccount, RecordRef
from leadsync.connectors.salesforce.client import SalesforceClient, soql
from leadsync.connectors.values import read_int, read_text

ACCOUNT_FIELDS = ("Id", "Name", "Website", "Industry", "NumberOfEmployees", "OwnerId")
TARGET_FIELD = "Target_Account__c"
ID_CHUNK = 400


def account_fields(client: SalesforceClient) -> tuple[str, ...]:
    """The Account fields to read: the standard ones, and the target flag when it exists."""
    describe = client.rest("describe Account", "sobjects/Account/describe") or {}
    names = {str(f.get("name")) for f in describe.get("fields", []) or []}
    return ACCOUNT_FIELDS + ((TARGET_FIELD,) if TARGET_FIELD in names else ())


def account_of(raw: dict[str, Any]) -> CrmAccount:
    attributes: dict[str, object] = {}
    if TARGET_FIELD in raw:
        attributes["target_account"] = bool(raw.get(TARGET_FIELD))
    return CrmAccount(
        ref=RecordRef("salesforce", "Account", str(raw["Id"])),
        name=read_text(raw.get("Name")),
        website=read_text(raw.get("Website")),
        industry=read_text(raw.get("Industry")),
        employees=read_int(raw.get("NumberOfEmployees")),
        owner_id=read_text(raw.get("OwnerId")),
        attributes=attributes,
    )


def iter_accounts(client: SalesforceClient, fields: Sequence[str]) -> Iterator[CrmAccount]:
    for page in client.query_pages("accounts", soql(", ".join(fields), "Account")):
        for raw in page:
            yield account_of(raw)


def read_account_links(client: SalesforceClient, refs: Sequence[RecordRef]) -> list[AccountLinks]:
    out: list[AccountLinks] = []
    for obj, column in (("Contact", "AccountId"), ("Lead", "ConvertedAccountId")):
        ids = sorted({r.id for r in refs if r.system == "salesforce" and r.object_type == obj})
        for start in range(0, len(ids), ID_CHUNK):
            where = format_soql("Id IN {}", ids[start : start + ID_CHUNK]) + \
                f" AND {column} != null"
            for page in client.query_pages(f"{obj.lower()} accounts",
                                           soql(f"Id, {column}", obj, where)):
                out.extend(AccountLinks(RecordRef("salesforce", obj, str(raw["Id"])),
                                        (str(raw[column]),)) for raw in page)
    return out
