"""Salesforce Accounts and the Account links of Contacts and Leads (docs/accounts.md).

- `iter_accounts`: every Account (`Id, Name, Website, Industry, NumberOfEmployees, OwnerId`)
  plus the org's target-account checkbox `Target_Account__c` when the org has one (one
  describe of Account per connector, cached), as attribute `target_account`.
- `deleted_accounts`: the Accounts deleted since a time, from the recycle bin (Salesforce keeps
  deleted records there 15 days): `queryAll` (`query` leaves them out) of
  `SELECT Id FROM Account WHERE IsDeleted = true AND SystemModstamp >= ...` (a delete stamps
  SystemModstamp). The adapter's cursor read asks `queryAll` for the changed Accounts with
  `IsDeleted` instead, which answers both in one query (`iter_accounts(deleted=...)`), and
  `deleted_accounts` then returns what that read found.
- `read_account_links`: Contacts' `AccountId` and Leads' `ConvertedAccountId`, by id, 400 ids
  an IN (...) (the person read does not keep them, so this is one query per 400 records).
- `write_account_updates`: the LeadSync account fields, diffed against what was read, through
  sObject Collections like the people's fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from simple_salesforce.format import format_soql

from leadsync.connectors.account_values import (
    KIND,
    SALESFORCE_ACCOUNT_FIELDS,
    account_canonical,
)
from leadsync.connectors.base import (
    AccountLinks,
    CrmAccount,
    FieldUpdate,
    RecordError,
    RecordRef,
    WriteResult,
)
from leadsync.connectors.salesforce.client import SalesforceClient, soql
from leadsync.connectors.salesforce.mapping import format_datetime, same_value
from leadsync.connectors.salesforce.writes import REASONS_LEN, patch_collections
from leadsync.connectors.values import InvalidValue, read_int, read_text

ACCOUNT_FIELDS = ("Id", "Name", "Website", "Industry", "NumberOfEmployees", "OwnerId")
TARGET_FIELD = "Target_Account__c"
ID_CHUNK = 400


def account_fields(client: SalesforceClient) -> tuple[str, ...]:
    """The Account fields to read: the standard ones, the target flag when it exists and the
    LeadSync account fields that are deployed (`check` reports missing ones)."""
    describe = client.rest("describe Account", "sobjects/Account/describe") or {}
    names = {str(f.get("name")) for f in describe.get("fields", []) or []}
    own = tuple(n for n in SALESFORCE_ACCOUNT_FIELDS.values() if n in names)
    return ACCOUNT_FIELDS + ((TARGET_FIELD,) if TARGET_FIELD in names else ()) + own


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
        current={logical: raw.get(name) for logical, name in SALESFORCE_ACCOUNT_FIELDS.items()
                 if name in raw},
    )


def iter_accounts(client: SalesforceClient, fields: Sequence[str],
                  since: datetime | None = None,
                  deleted: list[RecordRef] | None = None) -> Iterator[CrmAccount]:
    """Every Account, or with `since` those whose SystemModstamp is at or after it. With
    `since` and a `deleted` list the read goes through `queryAll` and also selects
    `IsDeleted`: one query returns the changed Accounts (yielded) and the ones deleted since
    (appended to `deleted`), saving `deleted_accounts`' own query."""
    where = "" if since is None else f"SystemModstamp >= {_stamp(since)}"
    both = since is not None and deleted is not None
    select = ", ".join([*fields, "IsDeleted"] if both else fields)
    for page in client.query_pages("accounts", soql(select, "Account", where),
                                   include_deleted=both):
        for raw in page:
            if both and raw.get("IsDeleted"):
                assert deleted is not None
                deleted.append(RecordRef("salesforce", "Account", str(raw["Id"])))
            else:
                yield account_of(raw)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deleted_accounts(client: SalesforceClient, since: datetime) -> list[RecordRef]:
    """The Accounts deleted at or after `since` (module doc)."""
    where = f"IsDeleted = true AND SystemModstamp >= {_stamp(since)}"
    return [RecordRef("salesforce", "Account", str(raw["Id"]))
            for page in client.query_pages("deleted accounts", soql("Id", "Account", where),
                                           include_deleted=True)
            for raw in page]


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


def write_account_updates(client: SalesforceClient, updates: Sequence[FieldUpdate], *,
                          dry_run: bool = False) -> WriteResult:
    """Diff and PATCH the LeadSync account fields of Accounts (sObject Collections, 200 a
    call); failures are per record."""
    result = WriteResult()
    pending: list[tuple[RecordRef, dict[str, Any]]] = []
    for update in updates:
        ref = update.ref
        if ref.system != "salesforce" or ref.object_type != "Account":
            result.failed.append(RecordError(ref, "not a Salesforce Account", False))
            continue
        try:
            changed = _plan(update)
        except InvalidValue as exc:
            result.failed.append(RecordError(ref, f"invalid value: {exc}", False))
            continue
        if not changed:
            result.unchanged.append(ref)
            continue
        pending.append((ref, {"attributes": {"type": "Account"}, "id": ref.id, **changed}))
    if dry_run:
        result.written.extend(ref for ref, _ in pending)
        return result
    return patch_collections(client, pending, result)


def _plan(update: FieldUpdate) -> dict[str, object]:
    out: dict[str, object] = {}
    for logical, raw in update.values.items():
        value = account_canonical(logical, raw, reasons_len=REASONS_LEN)
        kind = KIND[logical]
        wire: object = None if value is None else (
            format_datetime(value) if isinstance(value, datetime)
            else int(value) if kind in ("score", "engagement") else value)
        if not same_value(kind, wire, update.previous.get(logical)):
            out[SALESFORCE_ACCOUNT_FIELDS[logical]] = wire
    return out
