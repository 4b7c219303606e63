"""HubSpot companies and contacts' company associations (docs/accounts.md).

- `iter_accounts`: every company through the list endpoint (100 a page): name, domain,
  industry, numberofemployees, hubspot_owner_id and HubSpot's ABM flag `hs_is_target_account`
  (attribute `target_account`).
- `deleted_accounts`: the companies archived (deleted) since a time: the list with
  `archived=true` (100 a page), which holds every company archived in the last 90 days (the
  restore window) with its `archivedAt`; the list takes no time filter, so `archivedAt` is
  compared here.
- `read_account_links`: the v4 batch read of contact -> company associations, 100 contacts a
  call; the company whose association types include `Primary` (type 1) is the primary one. A
  contact without companies is a 207 error row (`NO_ASSOCIATIONS_FOUND`): no link, not a
  failure.
- `write_account_updates`: the leadsync company properties, diffed against what was read,
  100 companies a batch update; errors per company.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from leadsync.connectors.account_values import (
    HUBSPOT_ACCOUNT_PROPERTIES,
    KIND,
    account_canonical,
)
from leadsync.connectors.base import (
    AccountLinks,
    BudgetExhausted,
    CrmAccount,
    FieldUpdate,
    RecordError,
    RecordRef,
    WriteResult,
)
from leadsync.connectors.http import redact
from leadsync.connectors.hubspot.client import HubSpotClient, HubSpotRequestError
from leadsync.connectors.hubspot.mapping import format_datetime, parse_datetime, same_value
from leadsync.connectors.hubspot.writes import REASONS_LEN, RETRYABLE_CATEGORIES
from leadsync.connectors.values import InvalidValue, read_int, read_text

COMPANY_PROPERTIES = ("name", "domain", "industry", "numberofemployees", "hubspot_owner_id",
                      "hs_is_target_account", *HUBSPOT_ACCOUNT_PROPERTIES.values())
PRIMARY_TYPE = 1
PAGE = 100
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
BATCH = 100


def company_to_account(raw: dict[str, Any]) -> CrmAccount:
    props = raw.get("properties") or {}
    target = read_text(props.get("hs_is_target_account"))
    return CrmAccount(
        ref=RecordRef("hubspot", "company", str(raw.get("id"))),
        name=read_text(props.get("name")),
        website=read_text(props.get("domain")),
        industry=read_text(props.get("industry")),
        employees=read_int(props.get("numberofemployees")),
        owner_id=read_text(props.get("hubspot_owner_id")),
        attributes={} if target is None else {"target_account": target.lower() == "true"},
        current={logical: props.get(name) for logical, name in HUBSPOT_ACCOUNT_PROPERTIES.items()
                 if name in props},
    )


def iter_accounts(client: HubSpotClient, since: datetime | None = None
                  ) -> Iterator[CrmAccount]:
    """Every company (the list, 100 a page), or with `since` those modified at or after it
    (search by `hs_lastmodifieddate`, 200 a page, ascending; past the search's 10,000-result
    window the query restarts from the newest value seen)."""
    if since is not None:
        yield from _changed(client, since)
        return
    after: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE, "properties": list(COMPANY_PROPERTIES)}
        if after:
            kwargs["after"] = after
        _, page = client.call("companies list", client.companies_basic.get_page, **kwargs)
        for raw in page.get("results", []) or []:
            yield company_to_account(raw)
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return


def deleted_accounts(client: HubSpotClient, since: datetime) -> list[RecordRef]:
    """The companies archived at or after `since` (module doc). The SDK would send a Python
    bool as "True", which HubSpot's spec does not take: the parameter goes as "true"."""
    out: list[RecordRef] = []
    after: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE, "archived": "true",
                                  "properties": ["hs_object_id"]}
        if after:
            kwargs["after"] = after
        _, page = client.call("companies archived", client.companies_basic.get_page, **kwargs)
        for raw in page.get("results", []) or []:
            stamp = parse_datetime(raw.get("archivedAt"))
            if stamp is None or stamp >= since:  # no time: deleted, when is unknown
                out.append(RecordRef("hubspot", "company", str(raw.get("id"))))
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return out


def _changed(client: HubSpotClient, since: datetime) -> Iterator[CrmAccount]:
    seen: set[str] = set()
    boundary = since
    while True:
        newest = boundary
        after = 0
        while True:
            body: dict[str, Any] = {
                "filterGroups": [{"filters": [{
                    "propertyName": "hs_lastmodifieddate", "operator": "GTE",
                    "value": str(int(boundary.timestamp() * 1000))}]}],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "properties": list(COMPANY_PROPERTIES), "limit": SEARCH_PAGE, "after": str(after),
            }
            _, page = client.call("companies search", client.companies_search.do_search, body,
                                  search=True)
            for raw in page.get("results", []) or []:
                stamp = parse_datetime((raw.get("properties") or {}).get("hs_lastmodifieddate"))
                newest = max(newest, stamp) if stamp is not None else newest
                if str(raw.get("id")) not in seen:
                    seen.add(str(raw.get("id")))
                    yield company_to_account(raw)
            nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not nxt:
                return
            after = int(nxt)
            if after + SEARCH_PAGE > SEARCH_CAP:
                break
        if newest <= boundary:  # 10,000 companies on one timestamp: the full list instead
            yield from (a for a in iter_accounts(client) if a.ref.id not in seen)
            return
        boundary = newest


def links_of(row: dict[str, Any]) -> AccountLinks | None:
    cid = str((row.get("from") or {}).get("id") or "")
    if not cid:
        return None
    ids: list[str] = []
    primary: str | None = None
    for item in row.get("to", []) or []:
        company = str(item.get("toObjectId"))
        ids.append(company)
        types = item.get("associationTypes") or []
        if any(t.get("typeId") == PRIMARY_TYPE and t.get("category") == "HUBSPOT_DEFINED"
               for t in types):
            primary = company
    return AccountLinks(RecordRef("hubspot", "contact", cid), tuple(ids), primary)


def read_account_links(client: HubSpotClient, refs: Sequence[RecordRef]) -> list[AccountLinks]:
    contacts = sorted({r.id for r in refs if r.system == "hubspot" and r.object_type == "contact"})
    out: list[AccountLinks] = []
    for start in range(0, len(contacts), BATCH):
        inputs = [{"id": c} for c in contacts[start : start + BATCH]]
        _, page = client.call("company associations", client.associations_batch.get_page,
                              "contacts", "companies", {"inputs": inputs})  # fmt: skip
        for row in page.get("results", []) or []:
            links = links_of(row)
            if links is not None and links.account_ids:
                out.append(links)
    return out


def _plan(update: FieldUpdate) -> dict[str, str]:
    out: dict[str, str] = {}
    for logical, raw in update.values.items():
        value = account_canonical(logical, raw, reasons_len=REASONS_LEN)
        wire = "" if value is None else (
            format_datetime(value) if isinstance(value, datetime) else value)
        if not same_value(KIND[logical], wire, update.previous.get(logical)):
            out[HUBSPOT_ACCOUNT_PROPERTIES[logical]] = wire
    return out


def write_account_updates(client: HubSpotClient, updates: Sequence[FieldUpdate], *,
                          dry_run: bool = False) -> WriteResult:
    result = WriteResult()
    pending: list[tuple[RecordRef, dict[str, str]]] = []
    for update in updates:
        if update.ref.system != "hubspot" or update.ref.object_type != "company":
            result.failed.append(RecordError(update.ref, "not a HubSpot company", False))
            continue
        try:
            props = _plan(update)
        except InvalidValue as exc:
            result.failed.append(RecordError(update.ref, f"invalid value: {exc}", False))
            continue
        if props:
            pending.append((update.ref, props))
        else:
            result.unchanged.append(update.ref)
    if dry_run:
        result.written.extend(ref for ref, _ in pending)
        return result
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        by_id = {ref.id: ref for ref, _ in chunk}
        body = {"inputs": [{"id": ref.id, "properties": p} for ref, p in chunk]}
        try:
            _, resp = client.call("companies batch update", client.companies_batch.update, body)
        except HubSpotRequestError as exc:
            reason = f"{exc.status} {exc.category}: {exc.message}"
            result.failed.extend(RecordError(r, reason, exc.status == 409)
                                 for r in by_id.values())
            continue
        except BudgetExhausted as exc:
            exc.done = result
            raise
        errored: set[str] = set()
        for err in resp.get("errors", []) or []:
            category = str(err.get("category", ""))
            reason = f"{category}: {redact(err.get('message', ''), 200)}"
            for rid in [str(i) for i in (err.get("context") or {}).get("ids", []) or []]:
                if rid in by_id and rid not in errored:
                    errored.add(rid)
                    result.failed.append(RecordError(by_id[rid], reason,
                                                     category in RETRYABLE_CATEGORIES))
        result.written.extend(r for rid, r in by_id.items() if rid not in errored)
    return result
