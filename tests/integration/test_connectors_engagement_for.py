"""Per-record engagement (`iter_engagement_for`, used by `leadsync explain`) against the sandbox
over real sockets: exactly the whole window's events of those records, at a few calls."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from leadsync.config.settings import load_settings
from leadsync.connectors.base import Connector, CrmPerson, EngagementEvent
from leadsync.connectors.hubspot.adapter import HubSpotConnector
from leadsync.connectors.salesforce.adapter import SalesforceConnector

sandbox = pytest.importorskip("leadsync.sandbox")
Sandbox = sandbox.Sandbox


@pytest.fixture()
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with Sandbox(contacts=400, seed=5, hubspot_rate_limit=1000) as box:
        for key, value in box.env.items():
            monkeypatch.setenv(key, value)
        box.simulate(hours=24)
        yield box


def _busiest(conn: Connector, events: list[EngagementEvent], n: int) -> list[CrmPerson]:
    """The `n` live records with the most events in `events` (and more than one kind)."""
    live = {p.ref: p for p in conn.iter_changed_people(None)}
    kinds: dict[Any, set[str]] = {}
    for e in events:
        kinds.setdefault(e.person, set()).add(e.event.type)
    counts = Counter(e.person for e in events if e.person in live and len(kinds[e.person]) > 1)
    assert len(counts) >= n
    return [live[ref] for ref, _ in counts.most_common(n)]


def _share(conn: Connector, sb: Any) -> tuple[list[EngagementEvent], list[EngagementEvent], int]:
    since = sb.now() - timedelta(days=180)
    before = conn.api_calls()
    everything = list(conn.iter_engagement(since))
    whole_calls = conn.api_calls() - before
    people = _busiest(conn, everything, 3)
    refs = {p.ref for p in people}
    expected = [e for e in everything if e.person in refs]
    before = conn.api_calls()
    mine = list(conn.iter_engagement_for(people, since))
    calls = conn.api_calls() - before
    assert sorted((e.person, e.id) for e in mine) == sorted((e.person, e.id) for e in expected)
    assert calls < whole_calls
    return mine, expected, calls


def test_hubspot_engagement_for_a_few_contacts(sb: Any) -> None:
    conn = HubSpotConnector(load_settings().hubspot)
    mine, _, calls = _share(conn, sb)
    assert any(e.id.startswith("email:") for e in mine)  # email events by recipient
    # per contact: one v3 events page and one page per email event type; then the forms list
    # and one submissions page per form (the API cannot filter submissions by person)
    assert calls <= 3 * (1 + 3) + 1 + len(sb.data.hs_forms), calls
    sb.reset_stats()
    list(conn.iter_engagement_for([], sb.now() - timedelta(days=180)))
    assert sum(sb.stats()["hubspot"]["requests"].values()) == 0


def test_salesforce_engagement_for_a_few_records(sb: Any) -> None:
    conn = SalesforceConnector(load_settings().salesforce)
    _, expected, calls = _share(conn, sb)
    assert expected
    assert calls == 3  # Task, Event and CampaignMember, one page each for 3 records


def test_explain_reads_only_the_persons_engagement(sb: Any) -> None:
    from click.testing import CliRunner

    from leadsync.cli import cli

    with sb.data.lock:
        email = next(c["email"] for c in sb.data.hs_contacts.values() if c.get("email"))
    sb.reset_stats()
    result = CliRunner().invoke(cli, ["explain", email], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    hubspot = sb.stats()["hubspot"]["requests"]
    assert hubspot["GET /events/v3/events"] <= 3, hubspot  # objectId-filtered, not the window
    assert hubspot["GET /email/public/v1/events"] <= 3 * 3, hubspot
