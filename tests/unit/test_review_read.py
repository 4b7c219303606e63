"""The review's read over in-memory CRMs: records grouped into people by identity, events and
deals attached to the person, email-only events by hash, the call budget, the progress lines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from leadsync.connectors.base import (
    BudgetExhausted,
    Deal,
    EngagementEvent,
    RecordRef,
    UnresolvedEvent,
)
from leadsync.identity import email_hash
from leadsync.person import person_key
from leadsync.review.read import read_histories
from leadsync.scoring import Event
from tests.fakes import FakeConnector

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def clock() -> datetime:
    return NOW


def page(url: str, at: datetime) -> Event:
    return Event("page_view", at, MappingProxyType({"url": url}))


class HeldHubSpot(FakeConnector):
    """A HubSpot whose stream also has an event known by email only (as HubSpot's email and
    form streams do)."""

    held: list[UnresolvedEvent]

    def iter_engagement(self, since: datetime) -> Iterator[EngagementEvent]:
        yield from super().iter_engagement(since)
        yield from self.held  # type: ignore[misc]


def crms() -> tuple[HeldHubSpot, FakeConnector]:
    hs, sf = HeldHubSpot("hubspot", clock), FakeConnector("salesforce", clock)
    hs.held = []
    a_hs = hs.add("contact", "1", email="a@corp.example", lead_source="webinar")
    a_sf = sf.add("Contact", "003A", email="A@corp.example")
    hs.add("contact", "2", email="b@corp.example")
    hs.add_event(a_hs, page("/pricing", NOW - 10 * DAY))
    sf.add_event(a_sf, Event("sales_touch", NOW - 5 * DAY, MappingProxyType({"channel": "call"})))
    deal = Deal(a_sf, "006X", NOW - 3 * DAY, None, False, 1000.0)
    sf.deals = [deal, replace(deal)]  # reached twice (a contact role and a conversion)
    hs.held = [UnresolvedEvent(email_hash("b@corp.example"), page("/blog", NOW - DAY), "h1",
                               NOW),
               UnresolvedEvent(email_hash("nobody@corp.example"), page("/x", NOW), "h2", NOW)]
    return hs, sf


def test_records_become_people_with_their_events_and_deals() -> None:
    hs, sf = crms()
    lines: list[str] = []
    people, stats = read_histories({"hubspot": hs, "salesforce": sf}, NOW - 30 * DAY,
                                   say=lines.append)
    by_id = {h.profile.id: h for h in people}
    assert sorted(by_id) == sorted([person_key("b@corp.example", ""),
                                    person_key("a@corp.example", "")])  # the sync's keys
    a, b = by_id[person_key("a@corp.example", "")], by_id[person_key("b@corp.example", "")]
    assert a.links == ("salesforce:Contact:003A", "hubspot:contact:1")
    assert [e.type for e in a.profile.events] == ["page_view", "sales_touch"]
    assert a.profile.lead_source == "webinar"
    assert [(d.opened_at, d.won_at, d.amount) for d in a.deals] == [(NOW - 3 * DAY, None, 1000.0)]
    assert a.first("opportunity") == NOW - 3 * DAY and a.first("won") is None
    assert [e.props["url"] for e in b.profile.events] == ["/blog"]  # attached by email hash
    assert (stats.records, stats.events, stats.deals, stats.unmatched_events) == (3, 3, 2, 1)
    # people, engagement and deals of each CRM: one call each (owners are not read)
    assert stats.calls == {"hubspot": 3, "salesforce": 3}
    assert lines == [
        "read hubspot people: 2 (1 API calls so far)",
        "read hubspot engagement: 3 (2 API calls so far)",
        "read hubspot deals: 0 (3 API calls so far)",
        "read salesforce people: 1 (4 API calls so far)",
        "read salesforce engagement: 1 (5 API calls so far)",
        "read salesforce deals: 2 (6 API calls so far)",
    ]


def test_the_call_budget_stops_the_read() -> None:
    hs, sf = crms()
    with pytest.raises(BudgetExhausted, match="4 API calls"):
        read_histories({"hubspot": hs, "salesforce": sf}, NOW - 30 * DAY, max_calls=4)
    assert hs.calls + sf.calls == 5  # stopped after the first read past the budget
    people, _ = read_histories({"hubspot": crms()[0]}, NOW - 30 * DAY, max_calls=3)
    assert len(people) == 2  # exactly the budget is fine


def test_no_crm_records_no_people() -> None:
    people, stats = read_histories({"hubspot": FakeConnector("hubspot", clock)}, NOW)
    assert people == [] and stats.total_calls == 3
    assert RecordRef.parse("hubspot:contact:1").id == "1"
