"""HubSpot companies and contacts' company associations (docs/accounts.md).

- `iter_accounts`: every company through the list endpoint (100 a page): name, domain,
  industry, numberofemployees, hubspot_owner_id and HubSpot's ABM flag `hs_is_target_account`
  (attribute `target_account`).
- `read_account_links`: the v4 batch read of contact -> company associations, 100 contacts a
  call; the company whose association types include `Primary` (type 1) is the primary one. A
  contact without companies is a 207 error row (`NO_ASSOCIATIONS_FOUND`): no link, not a
  failure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from leadsync.connectors.base import AccountLinks, CrmAccount, RecordRef
from leadsync.connectors.hubspot.client import HubSpotClient
from leadsync.connectors.values import read_int, read_text

COMPANY_PROPERTIES = ("name", "domain", "industry", "numberofemployees", "hubspot_owner_id",
                      "hs_is_target_account")
PRIMARY_TYPE = 1
PAGE = 100
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
    )


def iter_accounts(client: HubSpotClient) -> Iterator[CrmAccount]:
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
