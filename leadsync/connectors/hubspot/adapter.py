"""`HubSpotConnector`: the Connector Protocol over HubSpot's v3 APIs.

Reads: contacts changed since a cursor through search on `lastmodifieddate` (GTE, ascending,
deduped by id, restarted from the last value before the 10,000-result cap), everyone through
the list endpoint, engagement through the events, email events and forms APIs (`engagement.py`).
Writes and tasks live in `writes.py`, provisioning and checks in `provision.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from leadsync.config.settings import HubSpotSettings
from leadsync.connectors.base import (
    AccountLinks,
    CrmAccount,
    CrmPerson,
    Deal,
    EngagementEvent,
    FieldUpdate,
    FollowUpTask,
    RecordRef,
    SalesChange,
    System,
    TaskResult,
    UnresolvedEvent,
    WriteResult,
)
from leadsync.connectors.http import RetryPolicy, utc_now
from leadsync.connectors.hubspot import accounts, engagement, writes
from leadsync.connectors.hubspot import provision as _provision
from leadsync.connectors.hubspot.client import HubSpotClient
from leadsync.connectors.hubspot.mapping import (
    CONTACT_PROPERTIES,
    DEAL_PROPERTIES,
    contact_to_person,
    deal_links,
    parse_datetime,
)

log = logging.getLogger(__name__)
SEARCH_CAP = 10_000
SEARCH_PAGE = 200
LIST_PAGE = 100
BATCH = 100
OWNER_CACHE = timedelta(minutes=15)


def _epoch_ms(value: datetime) -> str:
    return str(int(value.timestamp() * 1000))


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class HubSpotConnector:
    """HubSpot contacts, engagement, field writes and tasks (DESIGN §2, §4, §6)."""

    system: System = "hubspot"

    def __init__(
        self,
        settings: HubSpotSettings,
        *,
        redis: Any | None = None,
        clock: Callable[[], datetime] = utc_now,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.fields = settings.fields
        self.clock = clock
        self.client = HubSpotClient(settings, redis=redis, policy=policy, sleep=sleep)
        self._owners: dict[str, str] | None = None
        self._owners_at: datetime | None = None
        self._queues: set[str] = set()
        self._properties = list(CONTACT_PROPERTIES) + list(self.fields.model_dump().values())

    def api_calls(self) -> int:
        return self.client.calls.value

    # ---- owners ---------------------------------------------------------------------------
    def list_owners(self) -> dict[str, str]:
        """Owner id -> lowercased email, cached for 15 minutes (one sync run)."""
        now = self.clock()
        if self._owners is not None and self._owners_at and now - self._owners_at < OWNER_CACHE:
            return self._owners
        owners: dict[str, str] = {}
        queues: set[str] = set()
        after: str | None = None
        while True:
            # no `archived`: active owners are the default, and the SDK would render the
            # Python bool as "False" where HubSpot's spec takes "false" (API_NOTES.md)
            kwargs: dict[str, Any] = {"limit": 100}
            if after:
                kwargs["after"] = after
            _, page = self.client.call("owners", self.client.owners.get_page, **kwargs)
            for owner in page.get("results", []):
                if owner.get("id") is not None and owner.get("type") == "QUEUE":
                    queues.add(str(owner["id"]))
                if owner.get("id") is not None and owner.get("email"):
                    owners[str(owner["id"])] = str(owner["email"]).lower()
            after = _next_after(page)
            if not after:
                break
        self._owners, self._owners_at, self._queues = owners, now, queues
        return owners

    def is_queue_owner(self, owner_id: str) -> bool:
        """A queue owns the contact (an owner of type QUEUE), not a rep."""
        self.list_owners()
        return owner_id in self._queues

    # ---- deals (the review) -------------------------------------------------------------------
    def iter_deals(self) -> Iterator[Deal]:
        """Every deal with the contacts associated with it (the list endpoint with
        `associations=contacts`, 100 a page), one `Deal` per (contact, deal); deals without
        contacts are skipped (no person to credit). Closed: `hs_is_closed`, won:
        `hs_is_closed_won` (HubSpot computes both from the pipeline stage), dated by closedate."""
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE, "properties": list(DEAL_PROPERTIES),
                                      "associations": ["contacts"]}
            if after:
                kwargs["after"] = after
            _, page = self.client.call("deals list", self.client.deals_basic.get_page, **kwargs)
            for raw in page.get("results", []):
                yield from deal_links(raw)
            after = _next_after(page)
            if not after:
                return

    # ---- accounts (docs/accounts.md) --------------------------------------------------------
    def iter_accounts(self, since: datetime | None = None) -> Iterator[CrmAccount]:
        """Every company (or those modified at or after `since`), with HubSpot's
        target-account flag."""
        return accounts.iter_accounts(self.client, since)

    def deleted_accounts(self, since: datetime) -> list[RecordRef]:
        """Companies archived at or after `since` (HubSpot lists them for 90 days)."""
        return accounts.deleted_accounts(self.client, since)

    def read_account_links(self, refs: Sequence[RecordRef]) -> list[AccountLinks]:
        """Contacts' associated companies (the primary one marked)."""
        return accounts.read_account_links(self.client, refs)

    def write_account_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                              ) -> WriteResult:
        """The leadsync company properties (only changed values are sent)."""
        return accounts.write_account_updates(self.client, updates, dry_run=dry_run)

    # ---- people ---------------------------------------------------------------------------
    def iter_changed_people(self, since: datetime | None) -> Iterator[CrmPerson]:
        """Contacts modified at or after `since` (None: all, via the list endpoint)."""
        owners = self.list_owners()
        raws = self._list_all() if since is None else self._search_since(since)
        for raw in raws:
            yield contact_to_person(raw, owners, self.fields)

    def iter_people_pages(self, since: datetime | None, after: str | None = None
                          ) -> Iterator[tuple[list[CrmPerson], str | None]]:
        """`iter_changed_people` a page at a time, each with where the read resumes after it.
        A full read (since=None, the list endpoint, by id) gives the next page's `after` token
        (None after the last page) and starts at `after` when given; a search (since given,
        ascending by lastmodifieddate) gives None: its resume point is the caller's cursor."""
        owners = self.list_owners()
        if since is not None:
            batch: list[CrmPerson] = []
            for raw in self._search_since(since):
                batch.append(contact_to_person(raw, owners, self.fields))
                if len(batch) == SEARCH_PAGE:
                    yield batch, None
                    batch = []
            if batch:
                yield batch, None
            return
        while True:
            results, after = self._list_page(after)
            yield [contact_to_person(raw, owners, self.fields) for raw in results], after
            if not after:
                return

    def _list_all(self) -> Iterator[dict[str, Any]]:
        after: str | None = None
        while True:
            results, after = self._list_page(after)
            yield from results
            if not after:
                return

    def _list_page(self, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the contacts list endpoint and the next page's `after` token. The
        contacts' companies come inline (`associations=companies`): the account phase needs
        no association read for them (docs/accounts.md)."""
        kwargs: dict[str, Any] = {"limit": LIST_PAGE, "properties": self._properties,
                                  "associations": ["companies"]}
        if after:
            kwargs["after"] = after
        _, page = self.client.call("contacts list", self.client.contacts_basic.get_page,
                                   **kwargs)  # fmt: skip
        results = list(page.get("results", []))
        for raw in results:  # asked for: a contact without the key has no company
            raw.setdefault("associations", {})
        return results, _next_after(page)

    def _search_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Search pages ascending by lastmodifieddate; before `after` would pass the cap, the
        query restarts from the newest value seen (GTE) and already-seen ids are skipped."""
        seen: set[str] = set()
        boundary = since
        while True:
            newest: datetime | None = None
            after = 0
            while True:
                page = self._search_page(boundary, after)
                for raw in page.get("results", []):
                    modified = parse_datetime(raw.get("properties", {}).get("lastmodifieddate"))
                    if modified is not None and (newest is None or modified > newest):
                        newest = modified
                    if str(raw["id"]) not in seen:
                        seen.add(str(raw["id"]))
                        yield raw
                nxt = _next_after(page)
                if not nxt:
                    return
                after = int(nxt)
                if after + SEARCH_PAGE > SEARCH_CAP:
                    break
            if newest is None or newest <= boundary:
                # 10,000 contacts share one timestamp: only a full read can get past it.
                log.warning("search cap hit on one timestamp; falling back to full list")
                yield from (r for r in self._list_all() if str(r["id"]) not in seen)
                return
            boundary = newest

    def _search_page(self, boundary: datetime, after: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate",
                                           "operator": "GTE", "value": _epoch_ms(boundary)}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": self._properties,
            "limit": SEARCH_PAGE,
            "after": str(after),
        }  # fmt: skip
        _, page = self.client.call(
            "contacts search", self.client.contacts_search.do_search, body, search=True
        )
        return page

    def read_people(self, refs: Sequence[RecordRef]) -> list[CrmPerson]:
        """Batch-read HubSpot contacts (100 per call); unknown ids are left out."""
        ids = [r.id for r in refs if r.system == "hubspot"]
        owners = self.list_owners() if ids else {}
        people: list[CrmPerson] = []
        for start in range(0, len(ids), BATCH):
            body = {"properties": self._properties, "propertiesWithHistory": [],
                    "inputs": [{"id": i} for i in ids[start : start + BATCH]]}  # fmt: skip
            _, page = self.client.call("contacts batch read", self.client.contacts_batch.read, body)
            results = page.get("results", [])
            people.extend(contact_to_person(r, owners, self.fields) for r in results)
        return people

    def find_people_by_email(self, email: str) -> list[CrmPerson]:
        """Contacts whose email equals `email` (for `leadsync explain`)."""
        body = {
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ",
                                           "value": email.strip().lower()}]}],
            "properties": self._properties, "limit": 10,
        }  # fmt: skip
        _, page = self.client.call(
            "contacts search", self.client.contacts_search.do_search, body, search=True
        )
        owners = self.list_owners()
        return [contact_to_person(r, owners, self.fields) for r in page.get("results", [])]

    # ---- engagement ------------------------------------------------------------------------
    def iter_engagement(self, since: datetime) -> Iterator[EngagementEvent]:
        """Engagement at or after `since`: v3 events (page views, webinars, meetings), email
        opens/clicks/unsubscribes and form submissions, resolved to contacts by email."""
        return engagement.iter_engagement(self.client, since)

    engagement_streams: tuple[str, ...] = engagement.STREAMS

    def iter_engagement_stream(self, stream: str, since: datetime
                               ) -> Iterator[EngagementEvent | UnresolvedEvent]:
        """One of `engagement_streams` at or after `since`, for its own cursor (the streams
        arrive with different delays); events of emails no contact has yet come unresolved."""
        return engagement.iter_stream(self.client, stream, since)

    def iter_engagement_for(self, people: Sequence[CrmPerson], since: datetime
                            ) -> Iterator[EngagementEvent]:
        """The engagement of these contacts only (a few calls per contact, plus the forms)."""
        contacts = {p.ref.id: p.profile.email for p in people if p.ref.system == "hubspot"}
        return engagement.iter_engagement_for(self.client, contacts, since)

    # ---- writes, tasks, provisioning (see writes.py / provision.py) --------------------------
    def iter_sales_changes(self, since: datetime) -> Iterator[SalesChange]:
        """Nothing, and no request. HubSpot's sales signal leadsync reads is the contact's own
        `hs_lead_status`, and changing it moves the contact's `lastmodifieddate`, so
        `iter_changed_people` already sees it. Deals are not read: sales works in Salesforce
        (DESIGN.md §5), and the sandbox serves no deals API to test such a read against."""
        del since
        return iter(())

    def write_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                      ) -> WriteResult:
        return writes.write_updates(self.client, self.fields, updates, dry_run=dry_run)

    def find_task_keys(self, refs: Sequence[RecordRef]) -> set[str]:
        return writes.find_task_keys(self.client, refs)

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> TaskResult:
        return writes.create_tasks(self.client, tasks)

    def provision(self, out_dir: Path | None = None) -> list[str]:
        """Create the `leadsync` property group and properties (idempotent)."""
        return _provision.provision(self.client, self.fields)

    def check(self) -> list[str]:
        """Problems with connectivity, token, scopes and the written properties ([] if fine)."""
        return _provision.check(self.client, self.fields)


def _next_after(page: dict[str, Any]) -> str | None:
    paging = page.get("paging") or {}
    nxt = paging.get("next") or {}
    after = nxt.get("after")
    return str(after) if after not in (None, "") else None
