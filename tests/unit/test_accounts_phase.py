"""The account phase of the cycle with the fake connectors (docs/accounts.md): members not
evaluated this cycle come from what the phase stored, so an incremental cycle that evaluates
one person re-scores their whole account; writes are diffed; dry runs write nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import MappingProxyType

from leadsync.pipeline import run_job
from leadsync.scoring import Event
from leadsync.state import InMemoryStateStore
from tests.fakes import FakeConnector
from tests.unit.test_pipeline import Clock, make_runtime

TITLES = ("営業部長", "主任", "担当", "担当")


def pricing(at: datetime) -> Event:
    return Event("page_view", at, MappingProxyType({"url": "https://example.co.jp/pricing"}))


def seeded() -> tuple[Clock, FakeConnector, FakeConnector, list]:
    clock = Clock()
    hs, sf = FakeConnector("hubspot", clock), FakeConnector("salesforce", clock)
    sf.add_account("0011", "サンプル株式会社", "https://www.example.co.jp/", owner_id="owner-2")
    people = []
    for i, title in enumerate(TITLES, start=1):
        ref = sf.add("Contact", f"0030{i}", email=f"p{i}@example.co.jp", title=title,
                     last_name=f"山田{i}")
        sf.link(ref, "0011")
        people.append(ref)
    return clock, hs, sf, people


def engage(sf: FakeConnector, ref: object, clock: Clock) -> None:
    for minutes in (30, 20):
        sf.add_event(ref, pricing(clock.now - timedelta(minutes=minutes)))  # type: ignore[arg-type]


def test_one_new_engaged_person_makes_the_account_an_mqa_from_stored_members() -> None:
    clock, hs, sf, people = seeded()
    state = InMemoryStateStore()
    engage(sf, people[0], clock)
    engage(sf, people[1], clock)
    first = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert first.people == 4 and first.accounts_evaluated == 1 and first.accounts_mqa == 0
    assert dict(first.account_records_written) == {"salesforce": 1}
    # two engaged, a director among them: 20 + 20 (fit of a director is not 40)
    assert sf.accounts["0011"].current["account_score"] == 40
    assert sf.accounts["0011"].current["engaged_people"] == 2
    assert sf.tasks == []

    clock.advance(minutes=10)
    engage(sf, people[2], clock)
    second = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert second.people == 1  # only the newly engaged person was evaluated ...
    assert second.accounts_evaluated == 1 and second.accounts_mqa == 1  # ... the account: all
    assert sf.accounts["0011"].current["engaged_people"] == 3
    assert sf.accounts["0011"].current["account_score"] == 95  # 40+20+20, top-3 engagement 105: +15
    assert dict(second.account_records_written) == {"salesforce": 1}
    assert dict(second.mqa_tasks_created) == {"salesforce": 1}
    assert len(sf.tasks) == 1
    task = sf.tasks[0]
    assert task.subject.startswith("[LeadSync] MQA: サンプル株式会社 — 3 people engaged: ")
    assert task.owner_id == "owner-2"

    clock.advance(minutes=10)
    engage(sf, people[3], clock)  # a fourth: a new score, the same episode: no second task
    third = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert third.accounts_mqa == 1 and dict(third.mqa_tasks_created) == {}
    assert third.mqa_tasks_existing == 1
    assert sf.accounts["0011"].current["engaged_people"] == 4
    assert len(sf.tasks) == 1 and sf.account_writes == 3


def test_a_dry_run_writes_no_account_and_creates_no_task() -> None:
    clock, hs, sf, people = seeded()
    for ref in people[:3]:
        engage(sf, ref, clock)
    report = run_job(make_runtime((hs, sf), clock), "full", dry_run=True)
    assert report.accounts_evaluated == 1 and report.accounts_mqa == 1
    assert dict(report.account_records_written) == {"salesforce": 1}  # would be written
    assert dict(report.mqa_tasks_created) == {"salesforce": 1}  # would be created
    assert sf.account_writes == 0 and sf.tasks == []


def test_without_an_accounts_section_no_account_is_read() -> None:
    from dataclasses import replace

    clock, hs, sf, people = seeded()
    engage(sf, people[0], clock)
    runtime = make_runtime((hs, sf), clock)
    runtime = replace(runtime, model=replace(runtime.model, accounts=None))
    calls = sf.calls
    report = run_job(runtime, "full")
    assert report.accounts_evaluated == 0 and sf.account_writes == 0
    assert sf.calls - calls == 3  # people, engagement, sales: no account reads


def test_a_budget_stop_in_the_account_write_is_retried_next_cycle() -> None:
    """The account's people are handed back as failed records: the next incremental cycle
    evaluates them again, writes the account and creates its one task."""
    from leadsync.connectors.base import BudgetExhausted

    clock, hs, sf, people = seeded()
    for ref in people[:3]:
        engage(sf, ref, clock)
    real = sf.write_account_updates
    stops = []

    def spent(*args: object, **kw: object) -> object:
        stops.append(1)
        raise BudgetExhausted("salesforce: daily share spent")

    sf.write_account_updates = spent  # type: ignore[method-assign]
    state = InMemoryStateStore()
    first = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert first.budget_stopped == ["salesforce"] and first.accounts_mqa == 1
    assert stops == [1] and sf.account_writes == 0 and sf.tasks == []
    assert state.get_pending("salesforce") == {r.key for r in people}

    sf.write_account_updates = real  # type: ignore[method-assign]
    clock.advance(minutes=10)
    second = run_job(make_runtime((hs, sf), clock, state), "incremental")
    assert second.people == 4 and second.accounts_mqa == 1
    assert dict(second.account_records_written) == {"salesforce": 1}
    assert dict(second.mqa_tasks_created) == {"salesforce": 1} and len(sf.tasks) == 1
    assert state.get_pending("salesforce") == set()


def test_an_account_no_crm_holds_is_named_by_its_peoples_business_domain() -> None:
    """Leads at a company no CRM has as an account resolve to its email domain; the top
    accounts name that domain (was `domain: None`, an anonymous row)."""
    clock, hs, sf, people = seeded()
    for i, title in enumerate(TITLES[:3], start=1):
        ref = sf.add("Lead", f"00Q0{i}", email=f"b{i}@buyer.example.com", title=title,
                     last_name=f"佐藤{i}")
        engage(sf, ref, clock)
    report = run_job(make_runtime((hs, sf), clock), "full")
    assert report.accounts_evaluated == 2
    rows = {row["domain"]: row for row in report.top_accounts}
    assert sorted(rows, key=str) == ["buyer.example.com", "example.co.jp"]
    assert rows["buyer.example.com"]["name"] is None
    assert rows["buyer.example.com"]["members"] == 3
    assert rows["example.co.jp"]["name"] == "サンプル株式会社"
