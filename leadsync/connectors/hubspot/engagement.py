"""HubSpot engagement readers: the v3 events API (page views, webinars, meetings), the email
events API (opens, clicks, unsubscribes) and form submissions.

The three arrive with different delays, so the sync reads them as three streams (`STREAMS`,
`iter_stream`), each from its own cursor: a page view that shows up late, dated before the
newest form submission, is still read.

Email events and submissions name people by email; `EmailResolver` turns emails into contact
ids with batch reads by email (100 distinct emails per call, each email read once per run
while the resolver remembers it: the newest `RESOLVED_MAX` emails, so a portal's whole email
list never sits in the process; an email read again after that costs a share of one call).
An email no contact has yet: `iter_stream` yields it as an `UnresolvedEvent` (keyed by the
email's hash) for the sync to keep and attach once the contact exists; the all-in-one
`iter_engagement` counts and skips it. Emails never reach a log.

API cost per run: v3 events pages of 100; one email-events series per type (pages of 1,000);
one forms list; per form, submission pages of 50 newest first, stopping at the first one older
than `since`; one batch read per 100 distinct emails seen.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from leadsync.connectors.base import EngagementEvent, RecordRef, UnresolvedEvent
from leadsync.connectors.hubspot.client import HubSpotClient
from leadsync.connectors.hubspot.mapping import event_from_raw
from leadsync.connectors.hubspot.marketing import (
    EMAIL_EVENT_TYPES,
    KeyedEvent,
    email_event_from_raw,
    email_key,
    submission_from_raw,
    submitted_at,
)
from leadsync.identity import email_hash, normalise_email

log = logging.getLogger(__name__)
#: emails the resolver remembers (email -> contact id); past that the oldest are forgotten
#: (memory flat in the number of people: docs/resume.md, "Memory")
RESOLVED_MAX = 20_000
EVENTS_PAGE = 100
EMAIL_PAGE = 1000
FORMS_PAGE = 100
SUBMISSIONS_PAGE = 50
BATCH = 100
STREAMS: tuple[str, ...] = ("events", "email_events", "form_submissions")


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def next_after(page: dict[str, Any]) -> str | None:
    paging = page.get("paging") or {}
    nxt = paging.get("next") or {}
    after = nxt.get("after")
    return str(after) if after not in (None, "") else None


def iter_v3_events(client: HubSpotClient, since: datetime, contact_id: str | None = None
                   ) -> Iterator[EngagementEvent]:
    """Contact events from `/events/v3/events` at or after `since` (ascending); with
    `contact_id`, that contact's only (the API's `objectId` filter)."""
    after: str | None = None
    while True:
        kwargs: dict[str, Any] = {"object_type": "contact", "occurred_after": _iso(since),
                                  "limit": EVENTS_PAGE}  # fmt: skip
        if contact_id is not None:
            kwargs["object_id"] = int(contact_id)
        if after:
            kwargs["after"] = after
        _, page = client.call("events", client.events.get_page, **kwargs)
        for raw in page.get("results", []):
            event = event_from_raw(raw)
            if event is not None and event.seen_at >= since:
                yield event
        after = next_after(page)
        if not after:
            return


def iter_email_events(client: HubSpotClient, since: datetime, recipient: str | None = None
                      ) -> Iterator[KeyedEvent]:
    """Opens, clicks and status changes created at or after `since`, one series per type (the
    API also holds sends, deliveries, bounces..., which are not engagement); with `recipient`,
    that address's only."""
    for event_type in EMAIL_EVENT_TYPES:
        offset: str | None = None
        while True:
            qs: dict[str, object] = {"startTimestamp": _ms(since), "eventType": event_type,
                                     "limit": EMAIL_PAGE}  # fmt: skip
            if recipient is not None:
                qs["recipient"] = recipient
            if offset:
                qs["offset"] = offset
            _, page = client.request("email events", "GET", "/email/public/v1/events", qs)
            for raw in page.get("events", []):
                item = email_event_from_raw(raw) if isinstance(raw, dict) else None
                if item is not None and item.seen_at >= since:
                    yield item
            new_offset = str(page.get("offset") or "")
            if not page.get("hasMore") or not new_offset or new_offset == offset:
                break
            offset = new_offset


def list_forms(client: HubSpotClient) -> list[tuple[str, str]]:
    """(GUID, name) of every live form."""
    forms: list[tuple[str, str]] = []
    after: str | None = None
    while True:
        qs: dict[str, object] = {"limit": FORMS_PAGE}
        if after:
            qs["after"] = after
        _, page = client.request("forms", "GET", "/marketing/v3/forms", qs)
        for form in page.get("results", []):
            if isinstance(form, dict) and form.get("id"):
                forms.append((str(form["id"]), str(form.get("name") or form["id"])))
        after = next_after(page)
        if not after:
            return forms


def iter_submissions(
    client: HubSpotClient, guid: str, name: str, since: datetime
) -> Iterator[KeyedEvent]:
    """A form's submissions at or after `since`: newest first, stop at the first older one."""
    path = f"/form-integrations/v1/submissions/forms/{urllib.parse.quote(guid, safe='')}"
    after: str | None = None
    while True:
        qs: dict[str, object] = {"limit": SUBMISSIONS_PAGE}
        if after:
            qs["after"] = after
        _, page = client.request("form submissions", "GET", path, qs)
        for raw in page.get("results", []):
            if not isinstance(raw, dict):
                continue
            at = submitted_at(raw)
            if at is not None and at < since:
                return
            item = submission_from_raw(raw, guid, name)
            if item is not None:
                yield item
        after = next_after(page)
        if not after:
            return


class EmailResolver:
    """Resolves `KeyedEvent`s to contacts: events wait until 100 distinct unknown emails are
    pending (or the stream ends), then one batch read by email resolves them all."""

    def __init__(self, client: HubSpotClient, known: Mapping[str, str] | None = None, *,
                 keep_unknown: bool = False, remember: int = RESOLVED_MAX) -> None:
        self.client = client
        self.keep_unknown = keep_unknown  # yield UnresolvedEvent instead of skipping
        # email -> contact id (None: no contact), the newest `remember` read (oldest first);
        # `known` pairs need no read
        self.contacts: dict[str, str | None] = dict(known or {})
        self.remember = remember
        self.waiting: list[KeyedEvent] = []
        self.wanted: dict[str, None] = {}  # ordered set of emails to read
        self.unknown_events = 0
        self.unknown = 0  # emails a read found no contact for

    def resolve(self, items: Iterable[KeyedEvent]
                ) -> Iterator[EngagementEvent | UnresolvedEvent]:
        for item in items:
            if item.email in self.contacts:
                yield from self._emit(item)
                continue
            self.waiting.append(item)
            self.wanted[item.email] = None
            if len(self.wanted) >= BATCH:
                yield from self.flush()
        yield from self.flush()

    def flush(self) -> Iterator[EngagementEvent | UnresolvedEvent]:
        emails = list(self.wanted)
        self.wanted = {}
        for start in range(0, len(emails), BATCH):
            self._read(emails[start : start + BATCH])
        waiting, self.waiting = self.waiting, []
        for item in waiting:
            yield from self._emit(item)
        for _ in range(len(self.contacts) - self.remember):  # the oldest read first
            del self.contacts[next(iter(self.contacts))]

    def _read(self, emails: list[str]) -> None:
        body = {"idProperty": "email", "properties": ["email"], "propertiesWithHistory": [],
                "inputs": [{"id": e} for e in emails]}  # fmt: skip
        _, page = self.client.call(
            "contacts batch read by email", self.client.contacts_batch.read, body
        )
        for email in emails:
            self.contacts[email] = None
        for raw in page.get("results", []):
            email = str((raw.get("properties") or {}).get("email") or "").strip().lower()
            if email in self.contacts and self.contacts[email] is None:
                self.contacts[email] = str(raw["id"])
        self.unknown += sum(1 for email in emails if self.contacts[email] is None)

    def _emit(self, item: KeyedEvent) -> Iterator[EngagementEvent | UnresolvedEvent]:
        contact = self.contacts.get(item.email)
        if contact is None:
            self.unknown_events += 1
            if self.keep_unknown:
                hashed = email_hash(normalise_email(item.email) or item.email)
                yield UnresolvedEvent(hashed, item.event, item.id, item.seen_at)
            return
        ref = RecordRef("hubspot", "contact", contact)
        yield EngagementEvent(person=ref, event=item.event, id=item.id, seen_at=item.seen_at)

    def unknown_emails(self) -> int:
        """Emails read that no contact has (one forgotten and read again counts again)."""
        return self.unknown


def iter_all_submissions(client: HubSpotClient, since: datetime) -> Iterator[KeyedEvent]:
    for guid, name in list_forms(client):
        yield from iter_submissions(client, guid, name, since)


def iter_stream(client: HubSpotClient, stream: str, since: datetime
                ) -> Iterator[EngagementEvent | UnresolvedEvent]:
    """One engagement stream at or after `since`; events of emails no contact has yet come
    as `UnresolvedEvent`s."""
    if stream == "events":
        yield from iter_v3_events(client, since)
        return
    if stream == "email_events":
        keyed = iter_email_events(client, since)
    elif stream == "form_submissions":
        keyed = iter_all_submissions(client, since)
    else:
        raise ValueError(f"unknown HubSpot engagement stream {stream!r}; "
                         f"expected one of {', '.join(STREAMS)}")
    resolver = EmailResolver(client, keep_unknown=True)
    yield from resolver.resolve(keyed)
    if resolver.unknown_events:
        log.info("HubSpot engagement of emails without a contact kept for later",
                 extra={"stream": stream, "events": resolver.unknown_events,
                        "emails": resolver.unknown_emails()})  # fmt: skip


def iter_engagement(client: HubSpotClient, since: datetime) -> Iterator[EngagementEvent]:
    """Everything HubSpot records of contacts' engagement at or after `since`."""
    yield from iter_v3_events(client, since)
    resolver = EmailResolver(client)

    def keyed() -> Iterator[KeyedEvent]:
        yield from iter_email_events(client, since)
        yield from iter_all_submissions(client, since)

    for item in resolver.resolve(keyed()):
        if isinstance(item, EngagementEvent):
            yield item
    if resolver.unknown_events:
        log.info(
            "HubSpot engagement of emails without a contact skipped",
            extra={"events": resolver.unknown_events, "emails": resolver.unknown_emails()},
        )


def iter_engagement_for(client: HubSpotClient, contacts: Mapping[str, str | None],
                        since: datetime) -> Iterator[EngagementEvent]:
    """The engagement of these contacts (id -> email) at or after `since`, for one person's
    explanation: v3 events by `objectId` and email events by `recipient` (a few calls per
    contact), and form submissions, which the API cannot filter by person, read per form and
    kept when the email is one of theirs."""
    keyed_emails = ((email_key(email), cid) for cid, email in contacts.items())
    emails = {email: cid for email, cid in keyed_emails if email}
    for contact_id in contacts:
        yield from iter_v3_events(client, since, contact_id)
    resolver = EmailResolver(client, known=emails)

    def keyed() -> Iterator[KeyedEvent]:
        for email in emails:
            yield from iter_email_events(client, since, recipient=email)
        if emails:
            for guid, name in list_forms(client):
                yield from (item for item in iter_submissions(client, guid, name, since)
                            if item.email in emails)

    for item in resolver.resolve(keyed()):
        if isinstance(item, EngagementEvent):
            yield item
