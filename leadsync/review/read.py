"""The review's read: people, engagement and deals from every enabled CRM, grouped into people.

Reads through the Connector Protocol only: `iter_changed_people(None)` (every record, with its
lead source, owner, leadsync's own MQL/SQL dates and creation date), `iter_engagement(since)`
(marketing events and rep touches; HubSpot events known by email only are attached by email
hash, as the sync does) and `iter_deals()` (Salesforce opportunities through contact roles
and converted Leads, HubSpot deals through their contact associations). Records are grouped
into people with `leadsync.identity` and each named by its durable person key
(`leadsync.person`), as the sync names it. A call budget (`max_calls`, over every
connector) stops the read with `BudgetExhausted`; `say` gets a progress line per phase
and every `PROGRESS_EVERY` items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from leadsync.connectors.base import (
    BudgetExhausted,
    Connector,
    CrmPerson,
    Deal,
    EngagementEvent,
    UnresolvedEvent,
)
from leadsync.identity import email_hash, group_records, merge_profile, normalise_email
from leadsync.person import derived_key
from leadsync.review.asof import DealFacts, History
from leadsync.scoring import Event

PROGRESS_EVERY = 2000
T = TypeVar("T")


@dataclass(slots=True)
class ReadStats:
    """What the read cost and found: API calls by system, records, events, deals, and the
    HubSpot events whose email matched no record (left out)."""

    calls: dict[str, int] = field(default_factory=dict)
    records: int = 0
    events: int = 0
    deals: int = 0
    unmatched_events: int = 0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class CallBudget:
    """At most `limit` API calls over these connectors (None: no limit of its own; the CRMs'
    daily budgets still apply)."""

    def __init__(self, connectors: Mapping[str, Connector], limit: int | None) -> None:
        self.connectors = connectors
        self.limit = limit
        self.start = {name: c.api_calls() for name, c in connectors.items()}

    def spent(self) -> dict[str, int]:
        return {name: c.api_calls() - self.start[name] for name, c in self.connectors.items()}

    def check(self) -> None:
        if self.limit is not None and sum(self.spent().values()) > self.limit:
            raise BudgetExhausted(f"the review's read budget of {self.limit:,} API calls is "
                                  "spent (--max-calls)")


def person_key(group: Sequence[CrmPerson]) -> str:
    """The id a group of records goes by: the person's durable key from the CRM data
    (`leadsync.person.derived_key`: the email's hash), as the sync names it on a cold start."""
    return derived_key(group)


def read_histories(connectors: Mapping[str, Connector], since: datetime, *,
                   max_calls: int | None = None,
                   say: Callable[[str], None] = lambda _line: None,
                   ) -> tuple[list[History], ReadStats]:
    """Every person with their events since `since` and their deals (see the module docstring)."""
    budget = CallBudget(connectors, max_calls)
    stats = ReadStats()
    records: dict[str, CrmPerson] = {}
    events: dict[str, list[Event]] = {}
    held: list[UnresolvedEvent] = []
    deals: list[Deal] = []
    for system, conn in sorted(connectors.items()):
        for rec in _paced(conn.iter_changed_people(None), budget, say, f"{system} people"):
            records[rec.ref.key] = rec
        found = _paced(conn.iter_engagement(since), budget, say, f"{system} engagement")
        for item in _engagement(found):
            if isinstance(item, UnresolvedEvent):
                held.append(item)
            else:
                events.setdefault(item.person.key, []).append(item.event)
                stats.events += 1
        deals.extend(_paced(conn.iter_deals(), budget, say, f"{system} deals"))
    stats.unmatched_events = _attach_held(held, records, events)
    stats.events += len(held) - stats.unmatched_events
    stats.records, stats.deals = len(records), len(deals)
    stats.calls = budget.spent()
    return _people(records, events, deals), stats


def _engagement(items: Iterable[object]) -> Iterator[EngagementEvent | UnresolvedEvent]:
    """The stream's items (HubSpot's may be events known by email only)."""
    for item in items:
        if isinstance(item, EngagementEvent | UnresolvedEvent):
            yield item


def _paced(items: Iterable[T], budget: CallBudget, say: Callable[[str], None], what: str
           ) -> Iterator[T]:
    count = 0
    for count, item in enumerate(items, 1):
        if count % PROGRESS_EVERY == 0:
            budget.check()
            say(f"reading {what}: {count:,} ({sum(budget.spent().values()):,} API calls)")
        yield item
    budget.check()
    say(f"read {what}: {count:,} ({sum(budget.spent().values()):,} API calls so far)")


def _attach_held(held: list[UnresolvedEvent], records: Mapping[str, CrmPerson],
                 events: dict[str, list[Event]]) -> int:
    """Attach email-only events to the record with that email (HubSpot's first); return how
    many matched none."""
    by_hash: dict[str, str] = {}
    for key in sorted(records, key=lambda k: (not k.startswith("hubspot:"), k)):
        email = normalise_email(records[key].profile.email)
        if email is not None:
            by_hash.setdefault(email_hash(email), key)
    unmatched = 0
    for item in held:
        found = by_hash.get(item.email_hash)
        if found is None:
            unmatched += 1
        else:
            events.setdefault(found, []).append(item.event)
    return unmatched


def _people(records: Mapping[str, CrmPerson], events: Mapping[str, list[Event]],
            deals: Sequence[Deal]) -> list[History]:
    by_record: dict[str, list[Deal]] = {}
    for deal in deals:
        by_record.setdefault(deal.person.key, []).append(deal)
    people = []
    for group in group_records(records.values()):
        pid = person_key(group)
        own = [ev for rec in group for ev in events.get(rec.ref.key, ())]
        profile = merge_profile(pid, group, own, {})
        created = [r.created_at for r in group if r.created_at is not None]
        facts: dict[str, DealFacts] = {}  # one per deal, however many of the records it names
        for rec in group:
            for deal in by_record.get(rec.ref.key, ()):
                facts[f"{deal.person.system}:{deal.id}"] = _facts(deal)
        people.append(History(
            profile, min(created, default=None),
            tuple(sorted(facts.values(), key=lambda d: d.opened_at)),
            tuple(r.ref.key for r in group)))
    return sorted(people, key=lambda h: h.profile.id)


def _facts(deal: Deal) -> DealFacts:
    return DealFacts(
        opened_at=deal.created_at,
        won_at=deal.closed_at if deal.won else None,
        lost_at=deal.closed_at if not deal.won else None,
        amount=deal.amount)
