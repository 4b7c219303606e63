"""The routing step over fake connectors (docs/routing.md): owner ids per CRM, the reason,
what is reported, and a dry run that takes no turn."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from leadsync.config.rules import load_default_rules, parse_rules
from leadsync.connectors.base import CrmPerson, RecordRef
from leadsync.identity import Person
from leadsync.owner_routing import Router
from leadsync.report import CycleReport
from leadsync.scoring import Event, Profile, evaluate
from leadsync.state import InMemoryStateStore
from tests.fakes import FakeConnector

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ROUTING = {"pools": {"jp": {"members": ["rep@example.com", "boss@example.com"]}},
           "rules": [{"id": "us", "when": {"field": "country", "eq": "US"},
                      "owner": "rep@example.com"},
                     {"id": "jp", "when": {"field": "country", "eq": "JP"}, "pool": "jp"}]}


def model():  # type: ignore[no-untyped-def]
    routing = parse_rules({"version": "t", "routing": ROUTING}, "r.yaml").routing
    return replace(load_default_rules(), routing=routing)


def person(country: str, sf_owner: str | None, hs_owner: str | None) -> Person:
    demo = Event("form_submit", NOW - timedelta(hours=1),
                 MappingProxyType({"form": "demo_request"}))
    profile = Profile(id="p-1", country=country, events=(demo,))
    sf = CrmPerson(RecordRef("salesforce", "Lead", "00Q1"), replace(profile, id="sf"), NOW,
                   owner_id=sf_owner)
    hs = CrmPerson(RecordRef("hubspot", "contact", "1"), replace(profile, id="hs"), NOW,
                   owner_id=hs_owner)
    return Person(id="p-1", records=(sf, hs), profile=profile)


def router(dry_run: bool = False) -> tuple[Router, CycleReport, InMemoryStateStore]:
    sf, hs = FakeConnector("salesforce", lambda: NOW), FakeConnector("hubspot", lambda: NOW)
    hs.owners = {"owner-2": "boss@example.com"}  # rep@ is no HubSpot owner
    report, state = CycleReport(job="incremental", dry_run=dry_run, now=NOW), InMemoryStateStore()
    return (Router(model(), state, {"salesforce": sf, "hubspot": hs}, fallback_owner=None,
                   report=report, now=NOW, dry_run=dry_run), report, state)


def test_owner_written_where_the_crm_has_them_and_the_rest_reported() -> None:
    r, report, _ = router()
    p = person("US", "005-gone", None)
    ev = evaluate(p.profile, r.model, NOW)
    assert ev.stage == "mql"
    step = r.route([p], [ev])
    assert step.values == {"salesforce:Lead:00Q1": {"owner_id": "owner-1",
                                                    "routed_by": "rule us (owner)"}}
    assert [rec.owner_id for rec in step.people[0].records] == ["owner-1", None]
    assert step.people[0].task_target().owner_id == "owner-1"  # the task follows
    assert (dict(report.routed), report.routing_unrouted) == ({"us": 1}, ["p-1"])


def test_an_active_owner_is_kept_and_nothing_written() -> None:
    r, report, _ = router()
    p = person("US", "owner-2", "owner-2")
    step = r.route([p], [evaluate(p.profile, r.model, NOW)])
    assert (step.values, step.people, dict(report.routed)) == ({}, [p], {})


def test_a_dry_run_takes_no_turn() -> None:
    r, report, state = router(dry_run=True)
    p = person("JP", None, None)
    step = r.route([p], [evaluate(p.profile, r.model, NOW)])
    assert step.values == {"salesforce:Lead:00Q1": {"owner_id": "owner-1",  # the first member
                                                    "routed_by": "rule jp (pool jp)"}}
    assert state.route_counts("jp") == {}
    assert dict(report.routed) == {"jp": 1}


def test_a_turn_is_taken_once_per_person() -> None:
    r, _, state = router()
    p = person("JP", None, None)
    ev = evaluate(p.profile, r.model, NOW)
    r.route([p], [ev])
    r.route([p], [ev])  # a retried cycle: the same rep, no second turn
    assert state.route_counts("jp") == {"rep@example.com": (1, 1), "boss@example.com": (0, 0)}


def routed_once(r: Router, p: Person, stage: str, status: str | None = None) -> None:
    ev = replace(evaluate(p.profile, r.model, NOW), stage=stage)
    p = replace(p, profile=replace(p.profile, sales_status=status))
    r.route([p], [ev])


# (steps of (Salesforce owner, evaluated stage, sales status), rep's and boss's open counts)
OPEN_COUNTS = [
    ([("owner-2", "mql", None)], (0, 1)),  # assigned by hand: counted against boss
    ([("owner-2", "sql", "accepted")], (0, 1)),
    ([("owner-2", "mql", "working")], (0, 1)),  # worked, still an open MQL
    ([("owner-2", "lead", None)], (0, 0)),
    ([("owner-2", "mql", None), ("owner-2", "opportunity", "opportunity_open")], (0, 0)),
    ([("owner-2", "mql", None), ("owner-2", "recycled", "rejected")], (0, 0)),
    ([("owner-2", "mql", None), ("owner-1", "mql", None)], (1, 0)),  # reassigned by hand
    ([("owner-2", "mql", None), ("owner-2", "sql", None)], (0, 1)),  # mql -> sql: once
    ([(None, "mql", None)], (1, 0)),  # routed: the pool's first turn
    ([(None, "mql", None), ("owner-1", "mql", None)], (1, 0)),  # the routed owner written
    ([(None, "mql", None), ("owner-1", "customer", "won")], (0, 0)),
    ([("005-gone", "mql", "working")], (0, 0)),  # an inactive owner counts for nobody
]


@pytest.mark.parametrize(("steps", "counts"), OPEN_COUNTS)
def test_open_counts_follow_owner_and_stage(
        steps: list[tuple[str | None, str, str | None]], counts: tuple[int, int]) -> None:
    r, _, state = router()
    for owner, stage, status in steps:
        routed_once(r, person("JP", owner, None), stage, status)
    assert state.owner_loads(["rep@example.com", "boss@example.com"]) == {
        "rep@example.com": counts[0], "boss@example.com": counts[1]}


def test_a_dry_run_counts_nobody() -> None:
    r, _, state = router(dry_run=True)
    routed_once(r, person("JP", "owner-2", None), "mql")
    assert state.open_owners() == {}


def test_hand_assigned_people_on_the_same_page_count_before_the_turns() -> None:
    """Capacity 1: the page's first person is routed, but boss's hand-assigned MQL later in
    the same page is counted first, so the turn goes to rep and the next person finds the
    pool full."""
    routing = {**ROUTING, "pools": {"jp": {"members": ["boss@example.com", "rep@example.com"],
                                           "capacity": 1}}}
    r, report, state = router()
    r.model = replace(r.model, routing=parse_rules({"version": "t", "routing": routing},
                                                   "r.yaml").routing)
    r.policy = r.model.routing
    people = [replace(person("JP", None, None), id=f"p-{i}") for i in range(2)]
    people.append(replace(person("JP", "owner-2", None), id="hand"))
    evs = [evaluate(p.profile, r.model, NOW) for p in people]
    step = r.route(people, evs)
    assert [p.task_target().owner_id for p in step.people] == ["owner-1", None, "owner-2"]
    assert state.route_counts("jp") == {"boss@example.com": (0, 1), "rep@example.com": (1, 1)}
    # p-0: rep is no HubSpot owner (reported, as ever); p-1: pool full and no fallback owner
    assert report.routing_unrouted == ["p-0", "p-1"]


@pytest.mark.parametrize("keep_people", [True, False])
def test_a_full_run_drops_from_the_counts_only_the_people_it_did_not_evaluate(
        keep_people: bool) -> None:
    """The sweep after a complete full run (docs/routing.md, "Capacity") works from the people
    counted at its start that no page evaluated, so it does not need the report's list of
    everyone evaluated (`keep_people=False`: `leadsync sync` and the workers)."""
    from leadsync.pipeline import run_job
    from tests.unit.test_pipeline import Clock, make_runtime

    clock = Clock()
    hs, sf = FakeConnector("hubspot", clock), FakeConnector("salesforce", clock)
    demo = Event("form_submit", clock.now - timedelta(hours=1),
                 MappingProxyType({"form": "demo_request"}))
    for i in range(3):
        ref = sf.add("Lead", f"00Q{i}", owner_id=None, email=f"p{i}@example.co.jp",
                     country="JP")
        sf.add_event(ref, demo)
    state = InMemoryStateStore()
    runtime = replace(make_runtime((hs, sf), clock, state), model=model())
    run_job(runtime, "full")
    counted = state.open_owners()
    assert len(counted) == 3
    state.set_open_owners({"p-gone-1": "rep@example.com", "p-gone-2": "boss@example.com"})
    clock.advance(minutes=10)
    report = run_job(runtime, "full", keep_people=keep_people)
    assert state.open_owners() == counted  # the two no CRM holds left, the three stay
    assert len(report.outcomes) == (3 if keep_people else 0)
    assert len(report.primary) == (3 if keep_people else 0)
