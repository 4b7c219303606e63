"""Routing through the real SDKs against the sandbox (docs/routing.md): queue-owned, unowned,
inactive-owner and integration-user-owned MQLs get an owner by territory, written to every
record of the person in both CRMs with the reason; their follow-up tasks go to that owner; a
worked lead and an owned lead keep theirs; a later cycle writes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from leadsync.cli import cli
from leadsync.commands.common import environ
from leadsync.config.rules_parts import Where
from leadsync.config.rules_routing import parse_routing
from leadsync.config.settings import SlaSettings, load_settings
from leadsync.pipeline import run_job
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import Sandbox
from leadsync.sandbox.seed_routing import EXAMPLE_ROUTING, REPS, RoutingCases, add_routing_cases
from leadsync.state import InMemoryStateStore
from tests.sandbox_support import salesforce

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
        manager_sf = next(u["Id"] for u in sb.data.sf["User"].values() if u["Email"] == manager)
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
    # Aiko's open people: 7 routed and the lead she owns by hand; the worked lead is the queue's
    assert rt.state.route_counts("japan") == {AIKO: (7, 8), REN: (3, 3)}
    assert rt.state.owner_loads([SAM, manager]) == {SAM: 3, manager: 1}  # the DE person

    sb.clock.advance(21 * 3600)  # 3 h before the 24 h MQL deadline: a task is owed
    second = run_job(rt, "incremental")
    assert second.routed == Counter()
    assert second.tasks_created == Counter({"salesforce": 11, "hubspot": 5})
    assert leadsync_tasks(sb) == Counter({
        ("salesforce", sf[AIKO]): 6,  # 5 routed + the owned lead
        ("salesforce", sf[REN]): 2,
        ("salesforce", sf[SAM]): 2,
        ("salesforce", manager_sf): 1,  # the worked lead: a queue's, its task to the fallback
        ("hubspot", hs[AIKO]): 2,
        ("hubspot", hs[REN]): 1,
        ("hubspot", hs[SAM]): 1,
        ("hubspot", manager_hs): 1,
    })
    third = run_job(rt, "incremental")
    assert (third.routed, third.records_written, third.tasks_created) == (
        Counter(), Counter(), Counter())


def set_lead_status(sb: Sandbox, lead: str, status: str) -> None:
    """A rep changes a Lead's Status (with its field history, as Salesforce keeps it)."""
    with sb.data.lock:
        stamp = (sb.now() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        old = sb.data.sf["Lead"][lead]["Status"]
        sb.data.sf["Lead"][lead].update({"Status": status, "LastModifiedDate": stamp,
                                         "SystemModstamp": stamp})
        hid = sb.data.new_sf_id("017")
        sb.data.sf["LeadHistory"][hid] = {"Id": hid, "LeadId": lead, "Field": "Status",
                                          "OldValue": old, "NewValue": status,
                                          "CreatedDate": stamp}
    sb.clock.advance(600)


def test_a_worked_lead_still_counts_and_a_rejected_one_frees_capacity(
        sandbox: tuple[Sandbox, RoutingCases, Runtime, str]) -> None:
    """A rep working a routed lead still has it open (an MQL being worked is load); when
    sales rejects it (recycled), its place in the rep's capacity is freed."""
    sb, cases, rt, _ = sandbox
    run_job(rt, "incremental")
    lead = cases.people["queue"][0][0]
    assert lead is not None
    set_lead_status(sb, lead, "Working - Contacted")
    again = run_job(rt, "incremental")
    assert again.routed == Counter()
    assert rt.state.route_counts("japan") == {AIKO: (7, 8), REN: (3, 3)}
    set_lead_status(sb, lead, "Rejected")
    third = run_job(rt, "incremental")
    assert third.transitions == Counter({"mql->recycled": 1})
    assert rt.state.route_counts("japan") == {AIKO: (7, 7), REN: (3, 3)}


def with_capacity(rt: Runtime, capacity: int) -> Runtime:
    pools = {"japan": {**EXAMPLE_ROUTING["pools"]["japan"], "capacity": capacity}}
    routing = parse_routing({**EXAMPLE_ROUTING, "pools": pools}, Where("test"))
    return replace(rt, model=replace(rt.model, routing=routing))


def test_hand_assigned_open_mqls_fill_a_reps_capacity(
        sandbox: tuple[Sandbox, RoutingCases, Runtime, str]) -> None:
    """Capacity 3: Aiko owns 3 open MQLs by hand (the owned lead and two queue leads a
    manager gave her), so she gets no turn; Ren takes 3 and the pool is full: the other 5
    Japan people go to the fallback owner."""
    sb, cases, rt, manager = sandbox
    for lead, _cid in cases.people["queue"][:2]:
        assert lead is not None
        with sb.data.lock:
            sb.data.sf["Lead"][lead]["OwnerId"] = cases.sf_users[AIKO]
    rt = with_capacity(rt, 3)
    report = run_job(rt, "incremental")
    assert report.routed == Counter({"japan": 3, "us": 3, "fallback": 6})
    assert rt.state.route_counts("japan") == {AIKO: (0, 3), REN: (3, 3)}
    assert rt.state.owner_loads([SAM, manager]) == {SAM: 3, manager: 6}
    with sb.data.lock:
        reasons = Counter(c.get("leadsync_routed_by") for c in sb.data.hs_contacts.values())
    assert reasons == Counter({"rule japan (pool japan)": 3, "rule us (owner)": 3,
                               "fallback owner": 6, None: 4})
    # a lost Redis: the next full run counts everyone again, exactly
    rt.state.clear()
    assert rt.state.owner_loads([AIKO, REN]) == {AIKO: 0, REN: 0}
    sb.clock.advance(600)
    dry = run_job(rt, "full", dry_run=True)  # a dry run counts nobody
    assert (dry.people, rt.state.open_owners()) == (16, {})
    full = run_job(rt, "full")
    assert full.routed == Counter()
    assert rt.state.owner_loads([AIKO, REN, SAM, manager]) == {
        AIKO: 3, REN: 3, SAM: 3, manager: 6}
    # Aiko's hand-assigned lead is deleted in both CRMs: the next full run no longer sees it
    (lead, cid), = cases.people["owned"]
    with sb.data.lock:
        del sb.data.sf["Lead"][str(lead)], sb.data.hs_contacts[cid]
    sb.clock.advance(600)
    run_job(rt, "full")
    assert rt.state.owner_loads([AIKO, REN, SAM, manager]) == {
        AIKO: 2, REN: 3, SAM: 3, manager: 6}
    assert len(rt.state.open_owners()) == 14


def test_without_a_fallback_owner_the_unmatched_person_is_reported(
        sandbox: tuple[Sandbox, RoutingCases, Runtime, str]) -> None:
    sb, cases, rt, _ = sandbox
    settings = rt.settings.model_copy(update={"sla": SlaSettings()})
    report = run_job(replace(rt, settings=settings), "incremental")
    assert report.routed == Counter({"japan": 10, "us": 3})
    assert len(report.routing_unrouted) == 1
    assert report.to_dict()["routing_unrouted"] == report.routing_unrouted
    (_, cid), = cases.people["no-territory"]
    with sb.data.lock:
        contact = sb.data.hs_contacts[cid]
        assert (contact.get("hubspot_owner_id"), contact.get("leadsync_routed_by")) == (None, None)


def rules_file(tmp_path: Path) -> Path:
    text = resources.files("leadsync.config").joinpath("default_rules.yaml").read_text("utf-8")
    path = tmp_path / "rules.yaml"
    path.write_text(text + "\n" + yaml.safe_dump({"routing": EXAMPLE_ROUTING},
                                                allow_unicode=True), encoding="utf-8")
    return path


def test_explain_names_the_rule_that_routes(
        sandbox: tuple[Sandbox, RoutingCases, Runtime, str], tmp_path: Path) -> None:
    sb, _cases, _rt, _ = sandbox
    runner = CliRunner()
    with environ({"LEADSYNC_RULES_FILE": str(rules_file(tmp_path))}):
        queue = runner.invoke(cli, ["explain", "routing.queue0@example-buyer.co.jp"])
        worked = runner.invoke(cli, ["explain", "routing.worked0@example-buyer.co.jp"])
        lost = runner.invoke(cli, ["explain", "routing.no-territory0@example-buyer.co.jp"])
    assert queue.exit_code == worked.exit_code == lost.exit_code == 0, queue.output
    assert ("Routing: owner queue: rule japan (Japan territory) routes to pool japan "
            "(weighted round-robin, capacity 50).") in " ".join(queue.output.split())
    assert "Routing: not routed (already worked (sales status working))." in worked.output
    assert "no routing rule matched and no fallback owner is configured" in " ".join(
        lost.output.split())


def test_check_wants_the_routed_by_field_until_provisioned(tmp_path: Path) -> None:
    with Sandbox(contacts=0, seed=3, provision_hubspot=False) as sb, \
            environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        runner = CliRunner()
        before = runner.invoke(cli, ["check"])
        assert before.exit_code == 1 and "leadsync_routed_by" in before.output
        provision = runner.invoke(cli, ["provision", "--out", str(tmp_path / "meta")])
        assert provision.exit_code == 0
        assert len(list((tmp_path / "meta").rglob("LeadSync_Routed_By__c.field-meta.xml"))) == 2
        after = runner.invoke(cli, ["check"])
        assert after.exit_code == 0, after.output


def test_salesforce_refuses_a_task_for_a_queue_that_does_not_own_tasks(
        sandbox: tuple[Sandbox, RoutingCases, Runtime, str]) -> None:
    """As Salesforce answers (fflib-apex-common#293, ActionPlansV4#51): a Task's OwnerId
    ("Assigned To ID") may be a queue only when the queue's supported objects include Task;
    the seed's queue is a Lead queue. Through simple-salesforce."""
    sb, cases, _rt, _ = sandbox
    sf = salesforce(sb)
    lead = cases.people["worked"][0][0]
    task = {"attributes": {"type": "Task"}, "WhoId": lead, "OwnerId": cases.queue,
            "Subject": "[LeadSync] MQL follow-up", "Description": "leadsync-key: q-1"}
    refused = sf.restful("composite/sobjects", method="POST",
                         json={"allOrNone": False, "records": [task]})
    assert refused == [{"success": False, "errors": [{
        "statusCode": "FIELD_INTEGRITY_EXCEPTION",
        "message": f"Assigned To ID: id value of incorrect type: {cases.queue}",
        "fields": ["OwnerId"]}]}]
    assert sf.Lead.update(lead, {"OwnerId": cases.queue}) == 204  # a Lead queue owns Leads
    with sb.data.lock:  # the admin adds Task to the queue's supported objects
        sb.data.sf["QueueSobject"]["03g5g0000000099AAA"] = {
            "Id": "03g5g0000000099AAA", "QueueId": cases.queue, "SobjectType": "Task"}
    taken = sf.restful("composite/sobjects", method="POST",
                       json={"allOrNone": False, "records": [task]})
    assert [r["success"] for r in taken] == [True]


def test_without_a_fallback_owner_a_queue_owned_task_is_reported_never_sent(
        sandbox: tuple[Sandbox, RoutingCases, Runtime, str]) -> None:
    """The worked queue-owned Lead's task: reported as having no owner every cycle it is owed
    (like the unowned DE person's), never sent (no failing create), and created for the
    fallback owner once one is set."""
    sb, cases, rt, manager = sandbox
    no_fallback = replace(rt, settings=rt.settings.model_copy(update={"sla": SlaSettings()}))
    run_job(no_fallback, "incremental")
    lead = cases.people["worked"][0][0]
    sb.clock.advance(21 * 3600)
    for _cycle in range(2):
        sb.reset_stats()
        report = run_job(no_fallback, "incremental")
        assert report.task_failures == []
        assert sorted(report.primary[p] for p in report.tasks_unassigned) == [
            f"hubspot:contact:{cases.people['no-territory'][0][1]}",  # no owner at all
            f"salesforce:Lead:{lead}"]  # the queue's
        assert sb.stats()["salesforce"]["requests"].get("POST /composite/sobjects", 0) == (
            1 if _cycle == 0 else 0)  # the first cycle creates the other 10 tasks
        sb.clock.advance(600)
    with sb.data.lock:
        assert [t for t in sb.data.sf["Task"].values() if t.get("WhoId") == lead] == []
        manager_sf = next(u["Id"] for u in sb.data.sf["User"].values() if u["Email"] == manager)
    fixed = run_job(rt, "incremental")  # a fallback owner is configured now
    assert fixed.task_failures == []  # the queue's task, and the DE person's HubSpot task
    assert fixed.tasks_created == Counter({"salesforce": 1, "hubspot": 1})
    with sb.data.lock:
        owners = [t["OwnerId"] for t in sb.data.sf["Task"].values() if t.get("WhoId") == lead]
    assert owners == [manager_sf]
