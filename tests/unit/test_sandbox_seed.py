"""Seeded data: determinism, the mix of people the demo and the pipeline tests rely on, and
the simulation of time passing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from leadsync.sandbox import DEFAULT_NOW, Faults, Sandbox
from leadsync.sandbox.pools import FREE_MAIL
from leadsync.sandbox.store import SandboxData, sf_id, task_key


def _seeded(contacts: int = 1500, seed: int = 7, now: datetime | None = None) -> Sandbox:
    box = Sandbox(contacts=contacts, seed=seed, now=now)
    box.seed_data()
    return box


@pytest.fixture(scope="module")
def data() -> SandboxData:
    return _seeded().data


def _snapshot(data: SandboxData) -> tuple[Any, ...]:
    return (data.hs_contacts, data.sf, data.hs_events, data.hs_owners, data.hs_email_events,
            data.hs_form_submissions, data.hs_forms)  # fmt: skip


def test_same_seed_same_data_and_other_seed_differs(data: SandboxData) -> None:
    assert _snapshot(_seeded().data) == _snapshot(data)
    assert _snapshot(_seeded(seed=8).data) != _snapshot(data)


def test_default_clock_is_fixed_and_seed_follows_the_clock() -> None:
    assert _seeded(contacts=1).now() >= DEFAULT_NOW
    later = datetime(2027, 1, 1, tzinfo=UTC)
    stamps = [p["createdate"] for p in _seeded(contacts=50, now=later).data.hs_contacts.values()]
    assert max(stamps) < "2027-01-01" and min(stamps) > "2025"


def test_every_stage_and_sla_state_is_present(data: SandboxData) -> None:
    people = [*data.sf["Lead"].values(), *data.sf["Contact"].values()]
    stages = Counter(r.get("LeadSync_Stage__c") for r in people)
    sla = Counter(r.get("LeadSync_SLA_Status__c") for r in people)
    for stage in (
        "subscriber",
        "lead",
        "mql",
        "sql",
        "opportunity",
        "customer",
        "recycled",
        "disqualified",
    ):
        assert stages[stage] > 0, stage
    for status in ("none", "on_track", "due_soon", "breached", "met"):
        assert sla[status] > 0, status
    now = DEFAULT_NOW.strftime("%Y-%m-%dT%H:%M")
    untouched_20h = [
        r
        for r in people
        if r.get("LeadSync_SLA_Status__c") == "due_soon" and r.get("LeadSync_Stage__c") == "mql"
    ]
    assert untouched_20h and all(r["LeadSync_SLA_Due__c"] > now for r in untouched_20h)
    touched = {
        t["WhoId"] for t in data.sf["Task"].values() if t["CreatedDate"] > r_mql(untouched_20h)
    }
    assert not touched & {r["Id"] for r in untouched_20h}
    assert Counter(p["lifecyclestage"] for p in data.hs_contacts.values())["customer"] > 0
    assert any(o["IsWon"] for o in data.sf["Opportunity"].values())
    assert any(o["IsClosed"] and not o["IsWon"] for o in data.sf["Opportunity"].values())


def r_mql(records: list[dict[str, Any]]) -> str:
    return min(r["LeadSync_MQL_At__c"] for r in records)


def test_people_mix(data: SandboxData) -> None:
    emails = [p.get("email") for p in data.hs_contacts.values()]
    free = sum(1 for e in emails if e and e.split("@")[1] in FREE_MAIL) / len(emails)
    assert 0.10 < free < 0.20
    assert any(e is None for e in emails)
    assert any(n > 1 for n in Counter(e.lower() for e in emails if e).values())  # HubSpot dups
    open_leads = {r.get("Email") for r in data.sf["Lead"].values() if not r["IsConverted"]}
    assert open_leads & {r.get("Email") for r in data.sf["Contact"].values()} - {None}
    titles = " ".join(p.get("jobtitle", "") for p in data.hs_contacts.values())
    for word in (
        "社長",
        "取締役",
        "本部長",
        "部長",
        "部長代理",
        "課長",
        "係長",
        "担当",
        "CEO",
        "VP Sales",
        "Director of IT",
        "Head of Marketing",
        "Manager",
        "Engineer",
    ):
        assert word in titles, word
    assert any("\u3040" <= c <= "\u9fff" for p in data.hs_contacts.values() for c in p["lastname"])
    hs_only = sum(1 for p in data.people if p.hs_ids and not (p.sf_lead_id or p.sf_contact_id))
    sf_only = sum(1 for p in data.people if not p.hs_ids and (p.sf_lead_id or p.sf_contact_id))
    assert hs_only > 0 and sf_only > 0
    assert any(r["IsConverted"] for r in data.sf["Lead"].values())
    owner_emails = {o.get("email") for o in data.hs_owners.values()}  # a queue has none
    assert {u["Email"] for u in data.sf["User"].values()} & owner_emails


def test_engagement_follows_propensity_and_conversion_follows_fit(data: SandboxData) -> None:
    per_contact = Counter(e[2] for e in data.hs_events)
    # email events and form submissions are keyed by email: they belong to the oldest contact
    by_email: dict[str, str] = {}
    for rid in sorted(data.hs_contacts, key=int, reverse=True):
        if data.hs_contacts[rid].get("email"):
            by_email[data.hs_contacts[rid]["email"].lower()] = rid
    per_contact.update(by_email[e[2].lower()] for e in data.hs_email_events)
    for rows in data.hs_form_submissions.values():
        per_contact.update(by_email[row[2].lower()] for row in rows)
    people = [p for p in data.people if p.hs_ids]
    people.sort(key=lambda p: p.propensity)
    low = sum(per_contact[p.hs_ids[0]] for p in people[: len(people) // 4])
    high = sum(per_contact[p.hs_ids[0]] for p in people[-len(people) // 4 :])
    assert high > 3 * low
    won = {
        r["ContactId"]
        for r in data.sf["OpportunityContactRole"].values()
        if data.sf["Opportunity"][r["OpportunityId"]]["IsWon"]
    }
    winners = [p.fit for p in data.people if p.sf_contact_id in won]
    assert sum(winners) / len(winners) > sum(p.fit for p in data.people) / len(data.people)


def test_simulate_is_deterministic_and_produces_activity() -> None:
    first, second = _seeded(contacts=600), _seeded(contacts=600)
    one, two = first.simulate(48), second.simulate(48)
    assert one == two and one["events"] > 0 and one["rep_touches"] > 0
    # same activity; timestamps follow each sandbox's (real-time ticking) clock
    assert [e[2:] for e in first.data.hs_events] == [e[2:] for e in second.data.hs_events]
    assert [e[2:] for e in first.data.hs_email_events] == [
        e[2:] for e in second.data.hs_email_events
    ]
    assert {g: [r[2:] for r in rows] for g, rows in first.data.hs_form_submissions.items()} == {
        g: [r[2:] for r in rows] for g, rows in second.data.hs_form_submissions.items()
    }
    assert (first.now() - DEFAULT_NOW).total_seconds() >= 48 * 3600
    with pytest.raises(ValueError, match="positive"):
        first.simulate(0)


def test_faults_parse_and_validation() -> None:
    assert Faults.parse("latency_ms=50, error_rate=0.05,daily_429=true") == Faults(
        latency_ms=50, error_rate=0.05, daily_429=True
    )
    assert Faults.parse("") == Faults()
    for bad, match in (
        ("nope=1", "unknown fault"),
        ("error_rate", "name=value"),
        ("error_rate=lots", "error_rate"),
        ("drop_rate=2", "between 0 and 1"),
        ("daily_429=maybe", "daily_429"),
    ):
        with pytest.raises(ValueError, match=match):
            Faults.parse(bad)


def test_store_helpers() -> None:
    assert sf_id("00Q", 1) == "00Q5g0000000001EAA"  # upper-case Q at index 2 -> bit 4 -> E
    assert len({sf_id("003", n) for n in range(1000)}) == 1000
    assert task_key("Call now\nleadsync-key: abc:1\n") == "abc:1"
    assert task_key("mentions leadsync-key: inline") is None
    assert task_key(None) is None
    with pytest.raises(ValueError, match="forward"):
        _seeded(contacts=1).advance(-1)
