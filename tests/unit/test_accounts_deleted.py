"""Deleted accounts and the account cursor (docs/accounts.md): the full run reads accounts by
cursor too; an account deleted in its CRM (HubSpot's archived list, Salesforce's recycle bin:
`deleted_accounts`) leaves the store, its members are retried so they re-resolve, and its MQA
episode ends; a full account read happens on a cold start and when the cursor or the last full
read is older than the CRM keeps deleted records."""

from __future__ import annotations

from datetime import datetime, timedelta

from leadsync.accounts.inherit import STATE_KIND
from leadsync.accounts.phase import (
    ACCOUNT_KIND,
    LISTED_KIND,
    MEMBER_KIND,
    MEMBERS_KIND,
    listed_refs,
)
from leadsync.accounts.resolve import domain_key
from leadsync.pipeline import run_job
from leadsync.state import InMemoryStateStore
from tests.fakes import FakeConnector
from tests.unit.test_accounts_phase import TITLES, engage, seeded
from tests.unit.test_pipeline import Clock, make_runtime

ACME = domain_key("acme.example")
SAMPLE = domain_key("example.co.jp")


def watch(conn: FakeConnector) -> list[tuple[str, datetime | None]]:
    """Record each account read of a fake: ("all", None), ("since", t) or ("deleted", t)."""
    seen: list[tuple[str, datetime | None]] = []
    iter_accounts, deleted = conn.iter_accounts, conn.deleted_accounts

    def reading(since: datetime | None = None):  # type: ignore[no-untyped-def]
        seen.append(("all", None) if since is None else ("since", since))
        return iter_accounts(since)

    def deleting(since: datetime):  # type: ignore[no-untyped-def]
        seen.append(("deleted", since))
        return deleted(since)

    conn.iter_accounts = reading  # type: ignore[method-assign]
    conn.deleted_accounts = deleting  # type: ignore[method-assign]
    return seen


def with_acme() -> tuple[Clock, FakeConnector, FakeConnector, list, list]:
    """The phase tests' seed plus Acme: three people with free-mail addresses, linked to it
    only by their Contact's AccountId (so nothing but that link puts them in an account);
    and a HubSpot company nobody belongs to."""
    clock, hs, sf, people = seeded()
    hs.add_account("901", "Other", "other.example")
    sf.add_account("0022", "Acme", "https://acme.example/", owner_id="owner-2")
    acme = []
    for i, title in enumerate(TITLES[:3], start=1):
        ref = sf.add("Contact", f"0031{i}", email=f"acme{i}@gmail.com", title=title,
                     last_name=f"佐藤{i}")
        sf.link(ref, "0022")
        acme.append(ref)
    return clock, hs, sf, people, acme


def test_the_full_run_reads_accounts_by_cursor_once_it_has_one() -> None:
    clock, hs, sf, _, _ = with_acme()
    seen_hs, seen_sf = watch(hs), watch(sf)
    state = InMemoryStateStore()
    cold = run_job(make_runtime((hs, sf), clock, state), "full")
    assert cold.accounts_evaluated == 3 and cold.accounts_deleted == 0
    assert seen_sf == [("all", None)] and seen_hs == [("all", None)]  # cold: a full read
    started = clock.now
    clock.advance(hours=24)
    again = run_job(make_runtime((hs, sf), clock, state), "full")
    cursor = started - timedelta(minutes=5)
    assert seen_sf[1:] == [("since", cursor), ("deleted", cursor)]
    assert seen_hs[1:] == [("since", cursor), ("deleted", cursor)]
    assert again.accounts_evaluated == 3 and sum(again.account_records_written.values()) == 0


def test_a_deleted_account_leaves_and_its_members_re_resolve() -> None:
    clock, hs, sf, people, acme = with_acme()
    for ref in acme:
        engage(sf, ref, clock)
    state = InMemoryStateStore()
    first = run_job(make_runtime((hs, sf), clock, state), "full")
    assert first.accounts_mqa == 1 and dict(first.mqa_tasks_created) == {"salesforce": 1}
    assert len(state.get_fingerprints(MEMBERS_KIND, [ACME])[ACME].split()) == 3
    assert state.get_fingerprints(STATE_KIND, [ACME]) == {}  # the bundled rules: no inherit
    state.set_fingerprints(STATE_KIND, {ACME: '{"s":95,"m":true}'})  # as `inherit` stores it

    sf.delete_account("0022")  # the links go too, as the Contacts' AccountId would
    clock.advance(minutes=10)
    sf.touch(people[3], title="担当者")  # someone else changed: the phase runs
    second = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert second.people == 1 and second.accounts_deleted == 1
    assert second.accounts_evaluated == 1 and second.accounts_mqa == 0  # Sample only
    assert state.get_fingerprints(MEMBERS_KIND, [ACME]) == {ACME: ""}
    assert state.get_fingerprints(STATE_KIND, [ACME]) == {ACME: ""}  # the episode ended
    assert state.get_fingerprints(ACCOUNT_KIND, ["salesforce:Account:0022"]) == {
        "salesforce:Account:0022": ""}
    assert listed_refs(state, "salesforce") == {"salesforce:Account:0011"}
    entries = state.get_fingerprints(MEMBER_KIND, sorted(state.get_fingerprints(
        MEMBERS_KIND, [SAMPLE])[SAMPLE].split()))
    assert len(entries) == 4
    # Acme's three members were retried: the next cycle evaluates exactly them, and they
    # resolve to no account (free-mail addresses, no link): nothing written, no task
    clock.advance(minutes=10)
    third = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert third.people == 3 and third.accounts_deleted == 0
    assert third.accounts_evaluated == 0 and sum(third.account_records_written.values()) == 0
    assert len(sf.tasks) == 1
    clock.advance(minutes=10)
    fourth = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert fourth.people == 0


def test_a_deleted_record_of_an_account_with_another_keeps_the_account() -> None:
    """The HubSpot company goes, the Salesforce Account of the same domain stays: the account
    stays (re-evaluated, with its members) and only the company leaves the store."""
    clock, hs, sf, people = seeded()
    hs.add_account("901", "サンプル", "example.co.jp")
    for ref in people[:3]:
        engage(sf, ref, clock)
    state = InMemoryStateStore()
    first = run_job(make_runtime((hs, sf), clock, state), "full")
    assert first.accounts_evaluated == 1 and first.accounts_mqa == 1
    assert dict(first.account_records_written) == {"salesforce": 1, "hubspot": 1}
    hs.delete_account("901")
    clock.advance(hours=24)
    second = run_job(make_runtime((hs, sf), clock, state), "full")
    assert second.accounts_deleted == 0 and second.accounts_evaluated == 1
    assert second.accounts_mqa == 1 and sum(second.account_records_written.values()) == 0
    assert len(state.get_fingerprints(MEMBERS_KIND, [SAMPLE])[SAMPLE].split()) == 4
    assert listed_refs(state, "hubspot") == set()
    assert len(sf.tasks) == 1


def test_a_full_read_when_the_cursor_or_last_full_read_outlives_the_retention() -> None:
    clock, hs, sf, _, _ = with_acme()
    seen_hs, seen_sf = watch(hs), watch(sf)
    state = InMemoryStateStore()
    run_job(make_runtime((hs, sf), clock, state), "full")
    assert seen_sf == [("all", None)] and seen_hs == [("all", None)]
    # 14 days and a minute later: past Salesforce's 15-day recycle bin less a day's margin,
    # well within HubSpot's 90 days
    clock.advance(days=14, minutes=1)
    run_job(make_runtime((hs, sf), clock, state), "full")
    assert seen_sf[1:] == [("all", None)]
    assert [kind for kind, _ in seen_hs[1:]] == ["since", "deleted"]
    # nightly full runs keep the cursor fresh, but the last full read ages: every 14 days a
    # full Salesforce read (and every 89 days a HubSpot one)
    for _ in range(13):
        clock.advance(days=1)
        run_job(make_runtime((hs, sf), clock, state), "full")
    assert [kind for kind, _ in seen_sf[2:]] == ["since", "deleted"] * 13
    clock.advance(days=1, minutes=1)
    run_job(make_runtime((hs, sf), clock, state), "full")
    assert seen_sf[-1] == ("all", None)
    # a wiped store (no stored accounts): a full read
    state.drop_fingerprints(LISTED_KIND.format(system="hubspot"))
    clock.advance(hours=1)
    run_job(make_runtime((hs, sf), clock, state), "full")
    assert seen_hs[-1] == ("all", None) and seen_sf[-2:] == [
        ("since", clock.now - timedelta(hours=1, minutes=5)),
        ("deleted", clock.now - timedelta(hours=1, minutes=5))]


def test_a_deleted_account_a_person_still_resolves_to_by_domain_stays() -> None:
    """Acme's Account is deleted, but a Lead of this run has an @acme.example address: the
    domain key is the Account's, so the account stays (evaluated, not left); the same deletion
    without that Lead in the run leaves."""
    for with_lead in (True, False):
        clock, hs, sf, _, _ = with_acme()
        lead = sf.add("Lead", "00Q9", email="new@acme.example", title="部長",
                      last_name="田中")
        state = InMemoryStateStore()
        first = run_job(make_runtime((hs, sf), clock, state), "full")
        assert first.accounts_deleted == 0
        sf.delete_account("0022")
        clock.advance(minutes=10)
        sf.touch(lead if with_lead else next(iter(sf.records.values())).ref,
                 title="部長代理")
        second = run_job(make_runtime((hs, sf), clock, state), "incremental")
        members = state.get_fingerprints(MEMBERS_KIND, [ACME]).get(ACME, "").split()
        assert second.people == 1 and second.accounts_evaluated == 1
        if with_lead:  # the three Contacts are retried (they re-resolve next cycle)
            assert second.accounts_deleted == 0 and len(members) == 4
            entries = state.get_fingerprints(MEMBER_KIND, members)
            assert sum('"r":["salesforce:Lead:00Q9"]' in e and f'"a":"{ACME}"' in e
                       for e in entries.values()) == 1
        else:
            assert second.accounts_deleted == 1 and members == []
