"""HubSpot engagement against the sandbox over a real socket: v3 events, email events (opens,
clicks, unsubscribes) and form submissions arrive mapped to the right contact, incremental
reads cost calls in proportion to what changed, and faults are retried."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from leadsync.config.settings import load_settings
from leadsync.connectors.http import RetryPolicy
from leadsync.connectors.hubspot.adapter import HubSpotConnector

sandbox = pytest.importorskip("leadsync.sandbox")
Sandbox, Faults = sandbox.Sandbox, sandbox.Faults
EMAIL_TYPES = {"OPEN": "email_open", "CLICK": "email_click", "STATUSCHANGE": "email_unsubscribe"}


@pytest.fixture()
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with Sandbox(contacts=500, seed=5, hubspot_rate_limit=1000) as box:
        for key, value in box.env.items():
            monkeypatch.setenv(key, value)
        yield box


def _connector() -> HubSpotConnector:
    return HubSpotConnector(load_settings().hubspot)


def _owner_of(sb: Any) -> dict[str, str]:
    """Lowercased email -> the contact HubSpot files it under (the oldest one)."""
    owner: dict[str, str] = {}
    for rid in sorted(sb.data.hs_contacts, key=int):
        email = sb.data.hs_contacts[rid].get("email")
        if email:
            owner.setdefault(email.lower(), rid)
    return owner


def _expected(sb: Any, since: datetime) -> Counter[tuple[str, str, str]]:
    """(contact id, leadsync type, url or form) of every email event and submission since."""
    ms = since.timestamp() * 1000
    owner = _owner_of(sb)
    out: Counter[tuple[str, str, str]] = Counter()
    for created, _, email, kind, fields in sb.data.hs_email_events:
        if created >= ms:
            out[(owner[email.lower()], EMAIL_TYPES[kind], fields.get("url", ""))] += 1
    for guid, rows in sb.data.hs_form_submissions.items():
        name = sb.data.hs_forms[guid]["name"]
        for submitted, _, email, _ in rows:
            if submitted >= ms:
                out[(owner[email.lower()], "form_submit", name)] += 1
    return out


def _got(events: list[Any]) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for e in events:
        if e.event.type.startswith("email_"):
            out[(e.person.id, e.event.type, e.event.props.get("url", ""))] += 1
        elif e.event.type == "form_submit":
            out[(e.person.id, "form_submit", e.event.props["form"])] += 1
    return out


def test_full_read_maps_email_events_and_submissions_to_contacts(sb: Any) -> None:
    since = sb.now() - timedelta(days=180)
    conn = _connector()
    events = list(conn.iter_engagement(since))
    expected = _expected(sb, since)
    assert _got(events) == expected
    kinds = Counter(k for _, k, _ in expected.elements())
    assert all(kinds[k] > 0 for k in ("email_open", "email_click", "email_unsubscribe"))
    forms = Counter(f for _, k, f in expected.elements() if k == "form_submit")
    assert forms["demo_request"] > 0 and forms["newsletter"] > 0 and forms["case-study-acme"] > 0
    assert len({e.id for e in events}) == len(events)  # stable, distinct ids for dedupe
    assert all(e.seen_at == e.event.at and e.seen_at >= since for e in events)
    demo = next(e for e in events if e.event.props.get("form") == "demo_request")
    assert demo.event.props["url"].endswith("/demo")
    again = list(_connector().iter_engagement(since))
    assert sorted(e.id for e in again) == sorted(e.id for e in events)
    pages = Counter(e.event.type for e in events)
    assert pages["page_view"] > 0 and pages["webinar_attended"] > 0


def test_incremental_read_costs_calls_per_change(sb: Any) -> None:
    sb.simulate(hours=48)
    conn = _connector()
    forms = len(sb.data.hs_forms)
    for hours in (1, 48):
        since = sb.now() - timedelta(hours=hours)
        sb.reset_stats()
        before = conn.api_calls()
        events = list(conn.iter_engagement(since))
        calls = conn.api_calls() - before
        assert _got(events) == _expected(sb, since)
        requests = sb.stats()["hubspot"]["requests"]
        distinct = len({(e.person.id) for e in events if e.id.startswith(("email:", "form:"))})
        # v3 pages + 3 email series + forms list + one page per form + a batch read per 100
        floor = 1 + 3 + 1 + forms + max(1, -(-distinct // 100))
        assert requests["GET /form-integrations/v1/submissions/forms/{guid}"] == forms
        assert requests["GET /email/public/v1/events"] == 3
        assert calls <= floor + 1, (hours, calls, requests)


def test_unknown_email_is_counted_and_skipped_never_logged(
    sb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="leadsync")
    now_ms = int(sb.now().timestamp() * 1000)
    with sb.data.lock:
        sb.data.hs_email_events.append(
            (now_ms, 10**9, "ghost@nowhere.example", "OPEN", {"emailCampaignId": 1})
        )
    events = list(_connector().iter_engagement(sb.now() - timedelta(minutes=1)))
    assert not [e for e in events if e.id.startswith("email:")]
    record = next(r for r in caplog.records if "without a contact" in r.getMessage())
    assert record.__dict__["events"] == 1 and record.__dict__["emails"] == 1
    for r in caplog.records:
        assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", r.getMessage() + str(r.__dict__))


def test_engagement_read_survives_faults(sb: Any) -> None:
    since = sb.now() - timedelta(days=90)
    expected = _expected(sb, since)
    sb.set_faults(Faults(burst_429=3, error_rate=0.15, seed=4))
    policy = RetryPolicy(base_delay=0.01, max_delay=0.05)  # real backoff, shorter waits
    conn = HubSpotConnector(load_settings().hubspot, policy=policy)
    events = list(conn.iter_engagement(since))
    assert _got(events) == expected
    assert sb.stats()["hubspot"]["errors_injected"] > 0
