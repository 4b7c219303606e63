"""Stored account members and the account phase's budget stop (docs/accounts.md): a full run
drops the members it no longer finds in either CRM, but keeps those another run noted after it
started; an account phase stopped by a budget is counted and shown in the summary."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console

from leadsync.accounts.phase import MEMBER_KIND, MEMBERS_KIND, decode_member, noted_at
from leadsync.accounts.resolve import domain_key
from leadsync.commands.render import print_summary
from leadsync.connectors.base import BudgetExhausted
from leadsync.pipeline import run_job
from leadsync.state import InMemoryStateStore
from tests.unit.test_accounts_phase import engage, seeded
from tests.unit.test_pipeline import make_runtime

ACCOUNT = domain_key("example.co.jp")


def members(state: InMemoryStateStore) -> list[str]:
    return state.get_fingerprints(MEMBERS_KIND, [ACCOUNT])[ACCOUNT].split()


def test_a_person_deleted_from_both_crms_is_pruned_by_the_full_run() -> None:
    clock, hs, sf, people = seeded()
    for ref in people[:3]:
        engage(sf, ref, clock)
    state = InMemoryStateStore()
    first = run_job(make_runtime((hs, sf), clock, state), "full")
    assert first.accounts_mqa == 1 and first.account_members_pruned == 0
    before = members(state)
    assert len(before) == 4
    entries = state.get_fingerprints(MEMBER_KIND, before)
    assert all(noted_at(v) == clock.now for v in entries.values())
    # the engaged director is deleted in the CRM (and never was in HubSpot)
    director = next(p for p, v in entries.items() if "salesforce:Contact:00301" in v)
    del sf.records[people[0].key]

    clock.advance(minutes=10)
    incremental = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert incremental.account_members_pruned == 0  # an incremental run cannot tell
    clock.advance(minutes=10)
    full = run_job(make_runtime((hs, sf), clock, state), "full")
    assert full.account_members_pruned == 1
    assert sorted(members(state)) == sorted(set(before) - {director})
    assert state.get_fingerprints(MEMBER_KIND, [director]) == {director: ""}
    assert decode_member(director, "") is None
    # three members left, two of them engaged, no director: 20 + fit ...
    assert sf.accounts["0011"].current["engaged_people"] == 2
    again = run_job(make_runtime((hs, sf), clock, state), "full")
    assert again.account_members_pruned == 0 and len(members(state)) == 3


def test_a_member_noted_after_the_full_run_began_is_kept() -> None:
    """A resumed full run's killed part, or an incremental run meanwhile, noted members this
    process did not see: entries noted at or after the run's start stay; older ones go."""
    from leadsync.accounts.phase import AccountPhase, encode_member
    from leadsync.report import CycleReport
    from leadsync.scoring.accounts import Member

    clock, hs, sf, people = seeded()
    state = InMemoryStateStore()
    runtime = make_runtime((hs, sf), clock, state)
    started = clock.now - timedelta(hours=1)
    ghost = Member("p-ghost", 10, 30, "director", clock.now - timedelta(days=1))
    late = Member("p-late", 10, 30, "manager", clock.now - timedelta(days=1))
    state.set_fingerprints(MEMBERS_KIND, {ACCOUNT: "p-ghost p-late p-missing"})
    state.set_fingerprints(MEMBER_KIND, {
        "p-ghost": encode_member(ACCOUNT, ghost, ["hubspot:contact:9"],
                                 noted=started - timedelta(seconds=1)),
        "p-late": encode_member(ACCOUNT, late, ["hubspot:contact:8"], noted=started)})
    report = CycleReport(job="full", dry_run=False, now=clock.now)
    phase = AccountPhase(connectors=runtime.connectors, state=state, model=runtime.model,
                         report=report, now=clock.now, dry_run=False,
                         crm_work=lambda _s: _null(), confirm=lambda: None, stopped=set(),
                         run_started=started)
    phase.finish(full=True)
    assert report.account_members_pruned == 2  # the ghost and the one without an entry
    assert members(state) == ["p-late"]
    assert report.accounts_evaluated == 1


def _null() -> object:
    from contextlib import nullcontext

    return nullcontext()


def test_an_account_phase_stopped_by_a_budget_is_counted_and_shown() -> None:
    clock, hs, sf, people = seeded()
    engage(sf, people[0], clock)

    def spent() -> object:
        raise BudgetExhausted("salesforce: daily share spent")

    sf.iter_accounts = spent  # type: ignore[method-assign, assignment]
    state = InMemoryStateStore()
    report = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert report.accounts_not_evaluated == 1 and report.accounts_evaluated == 0
    assert report.to_dict()["accounts_not_evaluated"] == 1
    assert state.get_pending("salesforce") == {r.key for r in people}  # retried next cycle
    console = Console(record=True, width=200)
    print_summary(console, report.to_dict())
    assert ("Accounts not evaluated in 1 cycle(s): a CRM's API budget stopped the account "
            "reads (the people are retried next cycle)") in console.export_text()
