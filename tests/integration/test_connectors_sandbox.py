"""Both connectors against the sandbox over real sockets (HTTP for HubSpot, TLS for
Salesforce), with injected 429 bursts, 5xx, per-record failures, latency and session expiry:
every run ends with the CRM in the expected state and the request count within budget."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadsync.config.settings import Settings, load_settings
from leadsync.connectors.base import (
    BudgetExhausted,
    Connector,
    CrmPerson,
    FieldUpdate,
    FollowUpTask,
    RecordRef,
)
from leadsync.connectors.hubspot.adapter import HubSpotConnector
from leadsync.connectors.salesforce.adapter import SalesforceConnector
from leadsync.scoring.evaluation import Reason

sandbox = pytest.importorskip("leadsync.sandbox")
Sandbox, Faults = sandbox.Sandbox, sandbox.Faults
N = 250


@pytest.fixture()
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with Sandbox(contacts=N, seed=11) as box:
        for key, value in box.env.items():
            monkeypatch.setenv(key, value)
        yield box


def _settings() -> Settings:
    return load_settings()


def _requests(stats: dict[str, Any], system: str) -> int:
    return sum(stats[system]["requests"].values())


def _target(i: int) -> dict[str, object]:
    return {"score": (i * 7) % 150, "engagement": i % 90, "fit_grade": "ABCD"[i % 4],
            "stage": "lead", "sla_status": "none", "model": "it-2026.11",
            "reasons": (Reason("pricing", "料金ページを閲覧", 15.0),
                        Reason("free-email", "フリーメール", -20.0)),
            "mql_at": datetime(2026, 11, 1, 9, tzinfo=UTC) if i % 5 == 0 else None}  # fmt: skip


def _write_until_done(conn: Connector, people: list[CrmPerson], rounds: int = 6) -> int:
    """Write targets; retry only the failed records, as the pipeline does. Returns rounds."""
    updates = {p.ref: FieldUpdate(p.ref, _target(i), p.current) for i, p in enumerate(people)}
    pending = list(updates.values())
    written: set[RecordRef] = set()
    for n in range(1, rounds + 1):
        result = conn.write_updates(pending)
        assert not set(result.written) & written, "a success was rewritten"
        written |= set(result.written)
        pending = [updates[f.ref] for f in result.failed]
        if not pending:
            return n
    raise AssertionError(f"{len(pending)} records still failing: {pending[0].ref}")


def _assert_state(conn: Connector, people: list[CrmPerson]) -> None:
    """Re-read everyone: a second write of the same targets must be a no-op."""
    again = {p.ref: p for p in conn.read_people([p.ref for p in people])}
    assert len(again) == len(people)
    before = conn.api_calls()
    result = conn.write_updates([FieldUpdate(p.ref, _target(i), again[p.ref].current)
                                 for i, p in enumerate(people)])  # fmt: skip
    assert not result.failed and not result.written
    assert len(result.unchanged) == len(people)
    assert conn.api_calls() == before  # nothing sent


def test_hubspot_full_read_and_write_back_under_faults(sb: Any) -> None:
    conn = HubSpotConnector(_settings().hubspot)
    assert conn.check() == []
    people = list(conn.iter_changed_people(None))
    assert len(people) >= N * 0.6
    sb.set_faults(Faults(burst_429=3, error_rate=0.05, record_failure_rate=0.1,
                         latency_ms=5, seed=3))  # fmt: skip
    rounds = _write_until_done(conn, people)
    sb.set_faults(Faults())
    _assert_state(conn, people)
    stats = sb.stats()
    assert rounds >= 2 and stats["hubspot"]["errors_injected"] > 0  # the faults did bite
    assert _requests(stats, "hubspot") == conn.api_calls()  # every request counted
    batches = math.ceil(len(people) / 100)
    # full read + write rounds + read-back: well under 3x the page/batch minimum plus faults
    assert conn.api_calls() <= 3 * (3 * batches) + 15
    assert stats["hubspot"]["rate_limited"] == 3  # only the injected burst: the limiter holds


def test_hubspot_backward_lifecycle_and_tasks(sb: Any) -> None:
    conn = HubSpotConnector(_settings().hubspot)
    person = next(iter(conn.iter_changed_people(None)))
    ref = person.ref
    assert not conn.write_updates([FieldUpdate(ref, {"stage": "sql"}, person.current)]).failed
    person = conn.read_people([ref])[0]
    assert person.current["lifecyclestage"] == "salesqualifiedlead"
    result = conn.write_updates([FieldUpdate(ref, {"stage": "recycled"}, person.current)])
    assert result.written == [ref], result.failed
    person = conn.read_people([ref])[0]
    assert person.current["lifecyclestage"] == "lead" and person.profile.stage == "recycled"

    due = sb.now() + timedelta(hours=4)
    task = FollowUpTask(key="it:hs:1", person=ref, owner_id=person.owner_id,
                        subject="[LeadSync] MQL follow-up", body="Call within the SLA",
                        due=due, priority="normal")  # fmt: skip
    created = conn.create_tasks([task])
    assert list(created.created) == ["it:hs:1"], created.failed
    assert conn.find_task_keys([ref]) == {"it:hs:1"}


def test_salesforce_full_read_and_write_back_under_faults(sb: Any) -> None:
    conn = SalesforceConnector(_settings().salesforce)
    assert conn.check() == []
    people = list(conn.iter_changed_people(None))
    assert len(people) >= N * 0.5
    assert not any(p.ref.object_type == "Lead" and p.ref.id.startswith("003") for p in people)
    sb.set_faults(Faults(error_rate=0.05, record_failure_rate=0.1, latency_ms=5, seed=5))
    assert _write_until_done(conn, people) >= 2
    sb.set_faults(Faults(expire_sessions=True))  # next call: 401 -> one re-login -> replay
    _assert_state(conn, people)
    stats = sb.stats()
    assert stats["salesforce"]["requests"].get("POST /services/Soap/u") == 2
    assert _requests(stats, "salesforce") == conn.api_calls()
    assert conn.api_calls() <= 3 * (4 + 2 * math.ceil(len(people) / 200)) + 15


def test_salesforce_tasks_and_incremental_engagement(sb: Any) -> None:
    conn = SalesforceConnector(_settings().salesforce)
    person = next(p for p in conn.iter_changed_people(None) if p.owner_id)
    start = sb.now() - timedelta(seconds=1)
    tasks = [FollowUpTask(key=f"it:sf:{k}", person=person.ref, owner_id=person.owner_id,
                          subject="[LeadSync] SQL follow-up", body="Act on it",
                          due=sb.now() + timedelta(days=1), priority=p)
             for k, p in (("a", "normal"), ("b", "high"))]  # fmt: skip
    result = conn.create_tasks(tasks)
    assert set(result.created) == {"it:sf:a", "it:sf:b"}, result.failed
    assert conn.find_task_keys([person.ref]) == {"it:sf:a", "it:sf:b"}
    # our own tasks are not sales touches
    touches = [e for e in conn.iter_engagement(start) if e.person == person.ref]
    assert all(e.id not in result.created.values() for e in touches)


def test_salesforce_daily_limit_stops_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox(contacts=120, seed=2, sf_daily_limit=40) as box:
        for key, value in box.env.items():
            monkeypatch.setenv(key, value)
        conn = SalesforceConnector(_settings().salesforce)
        people = list(conn.iter_changed_people(None))
        with pytest.raises(BudgetExhausted):
            for _ in range(60):
                conn.write_updates([FieldUpdate(people[0].ref, {"score": _ % 100})])
        sent = conn.api_calls()
        assert sent <= 40 * 0.5 + 1  # our share (50 %) of the org's 40, then a clean stop
        with pytest.raises(BudgetExhausted):
            conn._owners = None  # force a fresh owner query
            conn.list_owners()
        assert conn.api_calls() == sent  # nothing more was sent


def test_no_secret_or_email_reaches_logs_or_errors(
    sb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A faulty run of both connectors, captured at INFO (DEBUG for leadsync): no token,
    password, session id or email in any message or structured field."""
    import logging

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="leadsync")
    settings = _settings()
    sb.set_faults(Faults(burst_429=2, error_rate=0.1, record_failure_rate=0.2, seed=9))
    errors: list[str] = []
    for conn in (HubSpotConnector(settings.hubspot), SalesforceConnector(settings.salesforce)):
        people = list(conn.iter_changed_people(None))[:150]
        result = conn.write_updates([FieldUpdate(p.ref, {"score": 1, "model": "x"}, p.current)
                                     for p in people])  # fmt: skip
        errors += [f.reason for f in result.failed]
        conn.find_people_by_email(next(p.profile.email for p in people if p.profile.email))
    sb.set_faults(Faults(expire_sessions=True))
    SalesforceConnector(settings.salesforce).list_owners()
    secrets = [sb.env["LEADSYNC_HUBSPOT__ACCESS_TOKEN"], sb.env["LEADSYNC_SALESFORCE__PASSWORD"],
               sb.env["LEADSYNC_SALESFORCE__SECURITY_TOKEN"]]  # fmt: skip
    texts = errors + [r.getMessage() + " " + str(r.__dict__) for r in caplog.records]
    assert any("retrying" in t for t in texts)  # the faults produced log lines to inspect
    for text in texts:
        assert not any(s in text for s in secrets), text[:200]
        assert not re.search(r"00D\w{12,15}!", text), text[:200]  # Salesforce session id
        assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text), text[:200]  # an email address


def test_state_or_prefecture_reaches_the_profile_through_both_sdks(sb: Any) -> None:
    """Every record whose CRM holds a state (HubSpot `state`; Salesforce Lead `State`, Contact
    `MailingState`, else its Account's `BillingState`) carries it as `attributes.state`, which
    routing rules read as `{field: state, ...}`; the rest carry none."""
    settings = _settings()
    data = sb.data
    with data.lock:
        expected = {f"hubspot:contact:{cid}": c.get("state")
                    for cid, c in data.hs_contacts.items()}
        accounts = data.sf.get("Account", {})
        for lid, lead in data.sf["Lead"].items():
            if not lead.get("IsConverted"):
                expected[f"salesforce:Lead:{lid}"] = lead.get("State")
        for cid, contact in data.sf["Contact"].items():
            account = accounts.get(contact.get("AccountId") or "", {})
            expected[f"salesforce:Contact:{cid}"] = (contact.get("MailingState")
                                                     or account.get("BillingState"))
    seen: dict[str, object] = {}
    for conn in (HubSpotConnector(settings.hubspot), SalesforceConnector(settings.salesforce)):
        for rec in conn.iter_changed_people(None):
            seen[rec.ref.key] = rec.profile.attributes.get("state")
    assert seen == {k: (v or None) for k, v in expected.items()}
    with_state = sum(1 for v in seen.values() if v)
    assert with_state == sum(1 for v in expected.values() if v) > N // 2
