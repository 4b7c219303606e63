"""Email events and form submissions -> leadsync events (HubSpot marketing mapping), and the
resolver that turns their emails into contacts with batched reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from leadsync.connectors.base import RecordRef
from leadsync.connectors.hubspot.engagement import EmailResolver
from leadsync.connectors.hubspot.marketing import (
    KeyedEvent,
    email_event_from_raw,
    submission_email,
    submission_from_raw,
)
from leadsync.scoring.profile import Event

MS = 1_793_523_600_000  # 2026-11-01T07:00:00Z
AT = datetime.fromtimestamp(MS / 1000, UTC)


@pytest.mark.parametrize(
    ("raw", "type_", "props"),
    [({"type": "OPEN", "emailCampaignId": 42}, "email_open", {"campaign": "42"}),
     ({"type": "CLICK", "url": "https://x/pricing", "emailCampaignId": 7}, "email_click",
      {"url": "https://x/pricing", "campaign": "7"}),
     ({"type": "CLICK"}, "email_click", {}),
     ({"type": "STATUSCHANGE", "portalSubscriptionStatus": "UNSUBSCRIBED"},
      "email_unsubscribe", {}),
     ({"type": "STATUSCHANGE", "portalSubscriptionStatus": "SUBSCRIBED",
       "subscriptions": [{"id": 3, "status": "UNSUBSCRIBED"}]}, "email_unsubscribe", {})],
)  # fmt: skip
def test_email_events_map(raw: dict[str, Any], type_: str, props: dict[str, str]) -> None:
    item = email_event_from_raw({**raw, "id": "ev-1", "created": MS, "recipient": "Taro@X.JP "})
    assert item is not None
    assert item.email == "taro@x.jp" and item.id == "email:ev-1"
    assert item.event.type == type_ and dict(item.event.props) == props
    assert item.event.at == item.seen_at == AT and item.event.source == "hubspot"


@pytest.mark.parametrize(
    "raw",
    [{"type": "SENT"}, {"type": "DELIVERED"}, {"type": "BOUNCE"},
     {"type": "STATUSCHANGE", "portalSubscriptionStatus": "SUBSCRIBED",
      "subscriptions": [{"id": 3, "status": "SUBSCRIBED"}]},
     {"type": "OPEN", "created": "soon"}, {"type": "OPEN", "created": True},
     {"type": "OPEN", "recipient": "not-an-email"}, {"type": "OPEN", "recipient": None},
     {"type": "OPEN", "id": ""}],
)  # fmt: skip
def test_email_events_that_are_not_engagement_or_broken_are_dropped(raw: dict[str, Any]) -> None:
    assert email_event_from_raw({"id": "e", "created": MS, "recipient": "a@b.c", **raw}) is None


def _submission(email: str | None, at: object = MS, **extra: Any) -> dict[str, Any]:
    values = [{"name": "firstname", "value": "太郎"}]
    if email is not None:
        values.append({"name": "Email", "value": email})
    return {"submittedAt": at, "values": values, **extra}


def test_form_submission_maps_with_form_name_page_and_stable_id() -> None:
    raw = _submission("Hana@Example.co.jp", pageUrl="https://x/demo")
    item = submission_from_raw(raw, "guid-1", "demo_request")
    assert item is not None and item.email == "hana@example.co.jp"
    assert item.event.type == "form_submit" and item.seen_at == AT
    assert dict(item.event.props) == {"form": "demo_request", "url": "https://x/demo"}
    again = submission_from_raw(dict(raw), "guid-1", "demo_request")
    other_form = submission_from_raw(raw, "guid-2", "demo_request")
    later = submission_from_raw(_submission("hana@example.co.jp", MS + 1), "guid-1", "x")
    assert again is not None and other_form is not None and later is not None
    assert item.id == again.id and item.id.startswith("form:")
    assert len({item.id, other_form.id, later.id}) == 3
    assert "hana" not in item.id


def test_form_submission_without_email_or_time_is_dropped() -> None:
    assert submission_from_raw(_submission(None), "g", "f") is None
    assert submission_from_raw(_submission("a@b.c", at=None), "g", "f") is None
    assert submission_email({"values": "nope"}) is None


class _FakeClient:
    """Answers batch reads by email from a table, recording each request's emails."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.reads: list[list[str]] = []
        self.contacts_batch = self

    def read(self, body: dict[str, Any]) -> None:  # stands in for the SDK method
        raise AssertionError("called through call()")

    def call(self, op: str, fn: Callable[..., Any], body: dict[str, Any]) -> tuple[int, Any]:
        assert body["idProperty"] == "email" and len(body["inputs"]) <= 100
        emails = [i["id"] for i in body["inputs"]]
        self.reads.append(emails)
        results = [{"id": self.table[e], "properties": {"email": e.upper()}}
                   for e in emails if e in self.table]  # fmt: skip
        return (207 if len(results) < len(emails) else 200), {"results": results}


def _keyed(email: str, n: int) -> KeyedEvent:
    event = Event(type="email_open", at=AT, source="hubspot")
    return KeyedEvent(email, event, f"email:{n}", AT)


def test_resolver_batches_distinct_emails_and_skips_unknown_ones() -> None:
    table = {f"p{i}@x.jp": str(1000 + i) for i in range(250)}
    client = _FakeClient(table)
    resolver = EmailResolver(client)  # type: ignore[arg-type]
    items = [_keyed(f"p{i % 250}@x.jp", i) for i in range(600)]
    items += [_keyed("ghost@x.jp", 900), _keyed("ghost@x.jp", 901)]
    out = list(resolver.resolve(items))
    assert [len(r) for r in client.reads] == [100, 100, 51]  # 250 known + 1 unknown, once each
    assert len(out) == 600 and resolver.unknown_events == 2 and resolver.unknown_emails() == 1
    by_id = {e.id: e.person for e in out}
    assert by_id["email:7"] == RecordRef("hubspot", "contact", "1007")
    assert by_id["email:257"] == RecordRef("hubspot", "contact", "1007")


def test_resolver_remembers_a_bounded_number_of_emails_and_reads_a_forgotten_one_again() -> None:
    """Memory flat in the number of people: the newest `remember` emails are kept; an email
    forgotten is read again (one more share of a batch read), never resolved wrongly."""
    table = {f"p{i}@x.jp": str(1000 + i) for i in range(300)}
    client = _FakeClient(table)
    resolver = EmailResolver(client, remember=150)  # type: ignore[arg-type]
    items = [_keyed(f"p{i}@x.jp", i) for i in range(300)]  # 3 reads of 100
    items += [_keyed("p0@x.jp", 1000), _keyed("p299@x.jp", 1001), _keyed("ghost@x.jp", 1002)]
    out = list(resolver.resolve(items))
    assert [len(r) for r in client.reads] == [100, 100, 100, 2]  # p0 forgotten, p299 kept
    assert client.reads[-1] == ["p0@x.jp", "ghost@x.jp"]
    assert len(resolver.contacts) == 150
    by_id = {e.id: e.person for e in out}
    assert len(out) == 302 and resolver.unknown_events == 1 and resolver.unknown_emails() == 1
    assert by_id["email:1000"] == RecordRef("hubspot", "contact", "1000")
    assert by_id["email:1001"] == RecordRef("hubspot", "contact", "1299")
