"""Routing through the real SDKs against the sandbox (docs/routing.md): queue-owned, unowned,
inactive-owner and integration-user-owned MQLs get an owner by territory, written to every
record of the person in both CRMs with the reason; their follow-up tasks go to that owner; a
worked lead and an owned lead keep theirs; a later cycle writes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from leadsync.commands.common import environ
from leadsync.config.rules_parts import Where
from leadsync.config.rules_routing import parse_routing
from leadsync.config.settings import SlaSettings, load_settings
from leadsync.pipeline import run_job
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import Sandbox
from leadsync.sandbox.seed_routing import EXAMPLE_ROUTING, REPS, RoutingCases, add_routing_cases
from leadsync.state import InMemoryStateStore

AIKO, REN, SAM = (email for email, *_ in REPS)


@pytest.fixture
def sandbox() -> Iterator[tuple[Sandbox, RoutingCases, Runtime, str]]:
    """Only the routing cases (no seeded population), the example rules, the manager as the
    fallback owner."""
    with Sandbox(contacts=0, seed=3) as sb, environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        cases = add_routing_cases(sb)
        with sb.data.lock:
            manager = next(u["Email"] for u in sb.data.sf["User"].values()
                           if ".manager" in u["Email"])
        settings = load_settings().model_copy(update={
            "redis_url": None, "sla": SlaSettings(fallback_owner=manager)})
        rt = build_runtime(settings, state=InMemoryStateStore(), clock=sb.now)
        routing = parse_routing(EXAMPLE_ROUTING, Where("example"))
        yield sb, cases, replace(rt, model=replace(rt.model, routing=routing)), manager


def owners(sb: Sandbox, cases: RoutingCases) -> dict[str, list[tuple[str | None, str | None]]]:
    """Per case: (Salesforce Lead OwnerId, HubSpot hubspot_owner_id) of each person."""
    with sb.data.lock:
        return {case: [(sb.data.sf["Lead"][lead]["OwnerId"] if lead else None,
                        sb.data.hs_contacts[cid].get("hubspot_owner_id")) for lead, cid in ids]
                for case, ids in cases.people.items()}


def leadsync_tasks(sb: Sandbox) -> Counter[tuple[str, str]]:
    with sb.data.lock:
        sf = [t["OwnerId"] for t in sb.data.sf["Task"].values()
              if str(t.get("Subject", "")).startswith("[LeadSync]")]
        hs = [t["hubspot_owner_id"] for t in sb.data.hs_tasks.values()
              if str(t.get("hs_task_subject", "")).startswith("[LeadSync]")]
    return Counter([("salesforce", o) for o in sf] + [("hubspot", o) for o in hs])


def test_unowned_mqls_are_routed_in_both_crms_and_get_their_task(
        sandbox: tuple[Sandbox, RoutingCases, Runtime, str]) -> None:
    sb, cases, rt, manager = sandbox
    before = owners(sb, cases)
    first = run_job(rt, "incremental")
    assert first.stages == Counter({"mql": 16})
    assert first.routed == Counter({"japan": 10, "us": 3, "fallback": 1})
    assert first.routing_unrouted == []
    sf, hs = cases.sf_users, cases.hs_owners
    with sb.data.lock:
        manager_hs = next(o["id"] for o in sb.data.hs_owners.values() if o.get("email") == manager)
    # the Japan pool, weights 2:1, in turn order: Aiko 7 of 10, Ren 3
    a, r = (sf[AIKO], hs[AIKO]), (sf[REN], hs[REN])
    assert owners(sb, cases) == {
        "queue": [a, r, a, a],
        "inactive": [r, a, a],
        "integration": [(sf[SAM], hs[SAM])] * 2,
        "hubspot-unowned": [(None, r[1]), (None, a[1]), (None, a[1])],
        "hubspot-archived": [(None, hs[SAM])],
        "no-territory": [(None, manager_hs)],
        "worked": before["worked"],  # a rep works it (Lead Status): never reassigned
        "owned": before["owned"],  # an active owner keeps it
    }
    with sb.data.lock:
        sf_reasons = Counter(r.get("LeadSync_Routed_By__c") for r in sb.data.sf["Lead"].values())
        hs_reasons = Counter(c.get("leadsync_routed_by") for c in sb.data.hs_contacts.values())
    assert sf_reasons == Counter({"rule japan (pool japan)": 7, "rule us (owner)": 2, None: 2})
    assert hs_reasons == Counter({"rule japan (pool japan)": 10, "rule us (owner)": 3,
                                  "fallback owner": 1, None: 2})
    assert rt.state.route_counts("japan") == {AIKO: (7, 7), REN: (3, 3)}

    sb.clock.advance(21 * 3600)  # 3 h before the 24 h MQL deadline: a task is owed
    second = run_job(rt, "incremental")
    assert second.routed == Counter()
    assert second.tasks_created == Counter({"salesforce": 11, "hubspot": 5})
    assert leadsync_tasks(sb) == Counter({
        ("salesforce", sf[AIKO]): 6,  # 5 routed + the owned lead
        ("salesforce", sf[REN]): 2,
        ("salesforce", sf[SAM]): 2,
        ("salesforce", cases.queue): 1,  # the worked lead: its owner is left alone
        ("hubspot", hs[AIKO]): 2,
        ("hubspot", hs[REN]): 1,
        ("hubspot", hs[SAM]): 1,
        ("hubspot", manager_hs): 1,
    })
    third = run_job(rt, "incremental")
    assert (third.routed, third.records_written, third.tasks_created) == (
        Counter(), Counter(), Counter())


def test_a_worked_lead_is_released_from_the_pool(
        sandbox: tuple[Sandbox, RoutingCases, Runtime, str]) -> None:
    """A rep starts working a routed lead: its place in the rep's capacity is freed."""
    sb, cases, rt, _ = sandbox
    run_job(rt, "incremental")
    lead = cases.people["queue"][0][0]
    assert lead is not None
    with sb.data.lock:
        stamp = (sb.now() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        sb.data.sf["Lead"][lead].update({"Status": "Working - Contacted",
                                         "LastModifiedDate": stamp, "SystemModstamp": stamp})
    sb.clock.advance(600)
    again = run_job(rt, "incremental")
    assert again.routed == Counter()
    assert rt.state.route_counts("japan") == {AIKO: (7, 6), REN: (3, 3)}
