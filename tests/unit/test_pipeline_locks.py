"""One lock for every job that writes for the people, kept by a heartbeat; the stale-write guard;
a spent budget stopping one CRM only. Real pipeline, real Celery task shells, real in-memory
store and budget; in-memory CRMs (tests/fakes.py) slowed or budgeted where it matters."""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from celery import Celery
from click.testing import CliRunner

from leadsync.config.rules import load_default_rules
from leadsync.config.settings import Settings
from leadsync.connectors.base import (
    CrmPerson,
    EngagementEvent,
    FieldUpdate,
    FollowUpTask,
    RecordRef,
    TaskResult,
    WriteResult,
)
from leadsync.connectors.ratelimit import DailyBudget
from leadsync.lease import PEOPLE_LOCK
from leadsync.person import person_key
from leadsync.pipeline import _Cycle, run_job
from leadsync.runtime import Runtime
from leadsync.scoring import Event
from leadsync.state import InMemoryStateStore, Lock, StateStore
from leadsync.tasks.celery_app import TASK_INCREMENTAL, TASK_SLA, create_app
from leadsync.tasks.jobs import ContextHolder, register_tasks
from tests.fakes import FakeConnector

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def demo_request(at: datetime) -> Event:
    return Event("form_submit", at, MappingProxyType({"form": "demo_request"}))


class SlowReads(FakeConnector):
    """Reads each changed record `delay` seconds apart, like a rate-limited first sync."""

    def __init__(self, *args: Any, delay: float = 0.0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.delay = delay

    def iter_changed_people(self, since: datetime | None) -> Iterator[CrmPerson]:
        for rec in super().iter_changed_people(since):
            time.sleep(self.delay)
            yield rec


def runtime(hs: FakeConnector, sf: FakeConnector, clock: Clock, state: StateStore
            ) -> Runtime:
    return Runtime(settings=Settings(), model=load_default_rules(),
                   connectors={"hubspot": hs, "salesforce": sf}, state=state, clock=clock)


def seed_people(hs: FakeConnector, n: int) -> None:
    for i in range(n):
        hs.add("contact", str(i), email=f"p{i}@corp.example", title="営業部長", employees=150)


# -- heartbeat: a read phase three times longer than the lease -----------------------------------


def test_a_read_three_times_longer_than_the_lease_completes_and_others_are_refused() -> None:
    clock, state = Clock(), InMemoryStateStore()
    hs, sf = SlowReads("hubspot", clock, delay=0.05), FakeConnector("salesforce", clock)
    seed_people(hs, 18)  # 18 x 0.05 s = 0.9 s of reading against a 0.3 s lease
    lock = state.lock(PEOPLE_LOCK, 0.3)
    assert lock.acquire()
    refused: list[bool] = []

    def second_runner() -> None:
        time.sleep(0.6)  # two leases into the read
        refused.append(not state.lock(PEOPLE_LOCK, 0.3).acquire())

    other = threading.Thread(target=second_runner)
    other.start()
    started = time.monotonic()
    report = run_job(runtime(hs, sf, clock, state), "incremental", lock=lock)
    other.join()
    assert time.monotonic() - started >= 0.9
    assert report.stopped_reason is None
    assert report.records_read == {"hubspot": 18}
    assert report.records_written == {"hubspot": 18}
    assert hs.writes == 18
    assert refused == [True]
    assert lock.owned()  # still ours at the end: the caller releases it
    assert state.get_cursor("hubspot:people") is not None


def test_a_lease_lost_during_the_read_stops_before_any_write() -> None:
    clock, state = Clock(), InMemoryStateStore()
    hs, sf = SlowReads("hubspot", clock, delay=0.05), FakeConnector("salesforce", clock)
    seed_people(hs, 18)
    lock = state.lock(PEOPLE_LOCK, 0.3)
    assert lock.acquire()
    thief = state.lock(PEOPLE_LOCK, 30)

    def wipe_and_take() -> None:
        time.sleep(0.4)
        state.clear()  # Redis wiped: the lease is gone and another runner takes it
        assert thief.acquire()

    other = threading.Thread(target=wipe_and_take)
    other.start()
    report = run_job(runtime(hs, sf, clock, state), "incremental", lock=lock)
    other.join()
    assert report.stopped_reason == "lock_lost"
    assert hs.writes == 0 and not hs.tasks
    assert state.get_cursor("hubspot:people") is None
    assert thief.owned()


# -- one lock: two Celery jobs and a manual `leadsync sync` at once ------------------------------


class PipelineContext:
    """The production JobContext's shape over the real pipeline and the in-memory store."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.state = rt.state
        self.lock_seconds = 0.3
        self.max_countdown = 0.01

    def run_job(self, job: str, *, lock: Lock, record_keys: Sequence[str] | None = None
                ) -> Mapping[str, Any]:
        return run_job(self.rt, job, lock=lock, record_keys=record_keys).to_dict()  # type: ignore[arg-type]

    def plan_full(self) -> list[list[str]]:
        return []

    def count_delivery(self, delivery_id: str) -> int:
        return 1

    def record_report(self, report: Mapping[str, Any]) -> None:
        pass


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def shared_state(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The state every runner shares: in memory (threads of one process) or Redis."""
    if request.param == "memory":
        yield InMemoryStateStore()
        return
    redis = pytest.importorskip("redis")
    from leadsync.state import RedisStateStore

    client = redis.Redis.from_url(os.environ.get("LEADSYNC_TEST_REDIS_URL",
                                                 "redis://127.0.0.1:6379/13"),
                                  decode_responses=True, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable: {type(exc).__name__}")
    store = RedisStateStore(client, namespace="leadsync-locks-test")
    store.clear()
    yield store
    store.clear()


def test_incremental_sla_and_manual_sync_never_run_at_once(
        monkeypatch: pytest.MonkeyPatch, shared_state: Any) -> None:
    clock, state = Clock(), shared_state
    hs, sf = SlowReads("hubspot", clock, delay=0.04), FakeConnector("salesforce", clock)
    seed_people(hs, 10)
    rt = runtime(hs, sf, clock, state)
    windows: list[tuple[float, float, str]] = []
    original = _Cycle.run

    def recorded(self: _Cycle, job: str, keys: Any) -> None:
        start = time.monotonic()
        if job == "sla":
            time.sleep(0.5)  # the sweep has little to read: hold the lock as long as the others
        try:
            original(self, job, keys)
        finally:
            windows.append((start, time.monotonic(), job))

    monkeypatch.setattr(_Cycle, "run", recorded)
    app: Celery = create_app(Settings(redis_url="redis://127.0.0.1:6379/7"))
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    register_tasks(app, ContextHolder(lambda: PipelineContext(rt)))  # type: ignore[arg-type,return-value]
    monkeypatch.setattr("leadsync.runtime.build_runtime", lambda *_a, **_k: rt)
    sync_module = importlib.import_module("leadsync.commands.sync")
    monkeypatch.setattr(sync_module, "checked_settings", lambda: Settings(job_lock_seconds=5))
    sync = sync_module.sync

    rounds = 3
    outcomes: list[str] = []
    guard = threading.Lock()

    def celery(name: str, gate: threading.Barrier) -> None:
        gate.wait()
        result = app.tasks[name].apply().get()
        with guard:
            outcomes.append("skipped" if result.get("skipped") == "locked" else "ran")

    def manual(gate: threading.Barrier) -> None:
        gate.wait()
        out = CliRunner().invoke(sync, ["--once", "--json"], catch_exceptions=False)
        with guard:
            outcomes.append("skipped" if "holds the lock" in out.output else "ran")

    for _ in range(rounds):
        hs.touch(next(iter(hs.records.values())).ref, title="CEO")  # work for every round
        clock.advance(minutes=5)
        gate = threading.Barrier(3)
        threads = [threading.Thread(target=celery, args=(TASK_INCREMENTAL, gate)),
                   threading.Thread(target=celery, args=(TASK_SLA, gate)),
                   threading.Thread(target=manual, args=(gate,))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    overlaps = [(a, b) for i, a in enumerate(windows) for b in windows[i + 1:]
                if a[0] < b[1] and b[0] < a[1]]
    assert overlaps == []
    assert len(windows) == rounds  # one runner per round; the two others were refused
    assert sorted(outcomes) == ["ran"] * rounds + ["skipped"] * (2 * rounds)


# -- the stale-write guard: a skipped person's memory is not committed ---------------------------


def test_a_stale_run_skips_the_write_and_commits_nothing_for_that_person() -> None:
    clock, state = Clock(), InMemoryStateStore()
    hs, sf = FakeConnector("hubspot", clock), FakeConnector("salesforce", clock)
    ref = hs.add("contact", "1", email="a@corp.example", title="営業部長", employees=150)
    other = hs.add("contact", "2", email="b@corp.example", title="Engineer", employees=150)
    rt = runtime(hs, sf, clock, state)
    run_job(rt, "incremental")
    newer = (clock.now + timedelta(hours=1)).isoformat()  # a newer run already evaluated ref
    pid, other_pid = person_key("a@corp.example", ""), person_key("b@corp.example", "")
    state.set_fingerprints("evaluated_at", {pid: newer})  # evaluations are kept by person key
    remembered = state.get_person_state([pid])
    assert remembered[pid]["stage"] == "lead"
    fingerprint = state.get_fingerprints("input", [ref.key])
    hs.add_event(ref, demo_request(clock.now))  # would make an MQL: memory would change
    hs.touch(ref, title="CEO")
    hs.touch(other, title="CTO")
    clock.advance(minutes=1)
    writes_before = hs.writes
    report = run_job(rt, "incremental")
    assert report.stale_skipped == 1
    assert hs.writes - writes_before == 1  # the other person only
    assert state.get_fingerprints("evaluated_at", [pid]) == {pid: newer}
    assert state.get_person_state([pid]) == remembered
    assert state.get_fingerprints("input", [ref.key]) == fingerprint
    assert not hs.tasks
    assert state.get_fingerprints("evaluated_at", [other_pid]) == {
        other_pid: clock.now.isoformat()}


# -- budgets per CRM ------------------------------------------------------------------------------


class BudgetedCrm(FakeConnector):
    """A CRM whose every request goes through a real `DailyBudget`; `sent` counts requests that
    were sent (the budget refuses before sending)."""

    def __init__(self, system: Any, clock: Clock, budget: DailyBudget) -> None:
        super().__init__(system, clock)
        self.budget = budget
        self.sent = 0

    def _send(self) -> None:
        self.budget.spend()
        self.sent += 1

    def iter_changed_people(self, since: datetime | None) -> Iterator[CrmPerson]:
        self._send()
        yield from super().iter_changed_people(since)

    def read_people(self, refs: Sequence[RecordRef]) -> list[CrmPerson]:
        self._send()
        return super().read_people(refs)

    def iter_engagement(self, since: datetime) -> Iterator[EngagementEvent]:
        self._send()
        yield from super().iter_engagement(since)

    def write_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                      ) -> WriteResult:
        self._send()
        return super().write_updates(updates, dry_run=dry_run)

    def find_task_keys(self, refs: Sequence[RecordRef]) -> set[str]:
        self._send()
        return super().find_task_keys(refs)

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> TaskResult:
        self._send()
        return super().create_tasks(tasks)

    def list_owners(self) -> dict[str, str]:
        self._send()
        return super().list_owners()


def test_a_spent_salesforce_budget_stops_salesforce_only_and_resumes_when_the_window_rolls(
) -> None:
    clock, state = Clock(), InMemoryStateStore()
    budget = DailyBudget(1.0, clock=clock)
    budget.observe("api-usage=0/2")  # two Salesforce calls per rolling 24 h
    hs, sf = FakeConnector("hubspot", clock), BudgetedCrm("salesforce", clock, budget)
    h1 = hs.add("contact", "1", email="h1@corp.example", title="営業部長", employees=150)
    h2 = hs.add("contact", "2", email="h2@corp.example", title="営業部長", employees=150)
    s1 = sf.add("Lead", "00Q1", email="s1@corp.example", title="営業部長", company="S KK")
    for ref in (h1, h2):
        hs.add_event(ref, demo_request(T0 - timedelta(hours=1)))
    sf.add_event(s1, demo_request(T0 - timedelta(hours=1)))
    rt = runtime(hs, sf, clock, state)

    # run 1: Salesforce people + engagement reads spend the two calls; its write is refused
    first = run_job(rt, "incremental")
    assert first.budget_stopped == ["salesforce"] and first.stopped_reason == "budget"
    assert first.records_written == {"hubspot": 2}
    assert hs.writes == 2 and sf.writes == 0 and sf.sent == 2
    assert state.get_cursor("hubspot:people") is not None
    assert state.get_cursor("hubspot:engagement") is not None
    assert state.get_cursor("salesforce:people") is None
    # its engagement was read before the stop: saved, its record on the to-do list, its
    # cursor moved (the people cursor waits for the writes)
    assert state.get_cursor("salesforce:engagement") is not None
    assert state.get_pending("salesforce") == {s1.key}

    # run 2, 21 h later: both HubSpot MQLs are due soon and get their tasks; Salesforce sends
    # nothing (the budget refuses before the first request)
    clock.advance(hours=21)
    second = run_job(rt, "incremental")
    assert second.budget_stopped == ["salesforce"]
    assert dict(second.tasks_created) == {"hubspot": 2}
    assert len(hs.tasks) == 2 and not sf.tasks
    assert sf.sent == 2
    third = run_job(rt, "sla")  # and again: still no Salesforce call, nothing new for HubSpot
    assert third.budget_stopped == ["salesforce"] and sum(third.tasks_created.values()) == 0
    assert sf.sent == 2 and len(hs.tasks) == 2

    # 25 h after the first calls the window has rolled: Salesforce resumes from its cursors
    clock.advance(hours=4)
    budget.observe("api-usage=0/100")  # a bigger allowance, as after the org's limit was raised
    fourth = run_job(rt, "incremental")
    assert fourth.budget_stopped == [] and fourth.stopped_reason is None
    assert fourth.records_written.get("salesforce") == 1 and sf.writes == 1
    assert state.get_cursor("salesforce:people") is not None
    assert state.get_pending("salesforce") == set()
    # HubSpot's clocks went on meanwhile: past the 24 h deadline each MQL gets its breach task
    # (one per clock step and person: 2 due-soon + 2 breach, no duplicate)
    # The Salesforce Lead was decided MQL at T0 in run 1 (its person record keeps that decision
    # although the write was refused), so its clock ran too: 25 h later it is breached and gets
    # the escalation (the due-soon step passed while Salesforce could not be reached).
    assert dict(fourth.tasks_created) == {"hubspot": 2, "salesforce": 1}
    assert sorted(t.priority for t in hs.tasks) == ["high", "high", "normal", "normal"]
    assert len({t.key for t in hs.tasks}) == 4
    assert [t.priority for t in sf.tasks] == ["high"]
    # people, engagement, write, then the task check, the owners and the create: nothing
    # replayed for the lost runs
    assert sf.sent == 2 + 3 + 3
