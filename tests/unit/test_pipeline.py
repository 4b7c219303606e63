"""The sync cycle against in-memory CRMs: what reaches the CRMs, and what must not."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from leadsync import pipeline
from leadsync.config.rules import load_default_rules
from leadsync.config.settings import Settings, SlaSettings
from leadsync.connectors.base import BudgetExhausted, CrmPerson, RecordRef, TransientError
from leadsync.person import person_key
from leadsync.pipeline import PROGRESS_EVERY, run_job
from leadsync.runtime import Runtime
from leadsync.scoring import Event
from leadsync.state import InMemoryStateStore
from tests.fakes import FakeConnector

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def crms(clock: Clock) -> tuple[FakeConnector, FakeConnector]:
    return FakeConnector("hubspot", clock), FakeConnector("salesforce", clock)


def make_runtime(crms: tuple[FakeConnector, FakeConnector], clock: Clock,
                 state: InMemoryStateStore | None = None, sla: SlaSettings | None = None
                 ) -> Runtime:
    hs, sf = crms
    settings = Settings(sla=sla or SlaSettings())
    return Runtime(settings=settings, model=load_default_rules(),
                   connectors={"hubspot": hs, "salesforce": sf},
                   state=state or InMemoryStateStore(), clock=clock)


def demo_request(at: datetime) -> Event:
    return Event("form_submit", at, MappingProxyType({"form": "demo_request"}))


@pytest.fixture
def mql_person(crms: tuple[FakeConnector, FakeConnector], clock: Clock
               ) -> Iterator[tuple[RecordRef, RecordRef]]:
    hs, sf = crms
    hs_ref = hs.add("contact", "101", email="Taro.Yamada@example.co.jp", title="営業部長",
                    employees=150)
    sf_ref = sf.add("Lead", "00Q1", email="taro.yamada@example.co.jp", title="営業部長",
                    company="Example KK")
    hs.add_event(hs_ref, demo_request(T0 - timedelta(hours=1)))
    yield hs_ref, sf_ref


def test_one_person_across_crms_gets_the_same_fields_in_both(crms, clock, mql_person) -> None:
    hs, sf = crms
    report = run_job(make_runtime(crms, clock), "incremental")
    hs_ref, sf_ref = mql_person
    assert report.people == 1
    assert report.records_written == {"hubspot": 1, "salesforce": 1}
    written_hs, written_sf = hs.records[hs_ref.key].written, sf.records[sf_ref.key].written
    assert written_hs.pop("lifecyclestage") == "marketingqualifiedlead"  # HubSpot's own field
    assert written_hs == written_sf
    assert written_hs["stage"] == "mql"
    assert written_hs["mql_at"] == clock.now.isoformat()
    assert "デモをリクエスト" in str(written_hs["reasons"])
    assert report.transitions == {"new->mql": 1}


def test_second_cycle_writes_nothing_and_skips_our_own_echoes(crms, clock, mql_person) -> None:
    hs, sf = crms
    runtime = make_runtime(crms, clock)
    run_job(runtime, "incremental")
    clock.advance(minutes=5)
    second = run_job(runtime, "incremental")
    assert sum(second.records_written.values()) == 0
    assert second.skipped_unchanged >= 1
    assert hs.writes == 1 and sf.writes == 1


def test_cold_state_second_run_writes_nothing_and_creates_nothing(crms, clock, mql_person) -> None:
    """`sync --once` twice without Redis: every run starts cold."""
    hs, sf = crms
    run_job(make_runtime(crms, clock), "incremental")  # becomes an MQL: mql_at is in the CRMs
    clock.advance(hours=21)  # inside the 4 h warning window of the 24 h MQL SLA
    first = run_job(make_runtime(crms, clock), "incremental")
    assert sum(first.tasks_created.values()) == 1
    second = run_job(make_runtime(crms, clock), "incremental")
    assert sum(second.records_written.values()) == 0
    assert sum(second.tasks_created.values()) == 0
    assert second.tasks_existing == 1
    assert len(sf.tasks) == 1 and not hs.tasks  # the task goes where sales works


def test_follow_up_task_is_created_once_even_after_state_is_wiped(crms, clock, mql_person) -> None:
    hs, sf = crms
    state = InMemoryStateStore()
    runtime = make_runtime(crms, clock, state)
    run_job(runtime, "incremental")
    clock.advance(hours=21)
    assert sum(run_job(runtime, "sla").tasks_created.values()) == 1
    task = sf.tasks[0]
    assert task.priority == "normal" and "leadsync-key: " + task.key in task.body
    assert task.subject.startswith("[LeadSync]") and "MQL" in task.subject
    clock.advance(minutes=30)
    assert sum(run_job(runtime, "incremental").tasks_created.values()) == 0
    state.clear()
    assert sum(run_job(runtime, "incremental").tasks_created.values()) == 0
    assert len(sf.tasks) == 1


def test_breach_escalates_to_the_escalation_owner(crms, clock, mql_person) -> None:
    hs, sf = crms
    runtime = make_runtime(crms, clock, sla=SlaSettings(escalation_owner="Boss@example.com"))
    run_job(runtime, "incremental")
    clock.advance(hours=25)
    report = run_job(runtime, "sla")
    assert report.sla.get("breached") == 1
    breach = [t for t in sf.tasks if t.priority == "high"]
    assert len(breach) == 1 and breach[0].owner_id == "owner-2"


def test_no_owner_and_no_fallback_is_reported_not_skipped_silently(crms, clock) -> None:
    hs, _ = crms
    ref = hs.add("contact", "7", email="a@corp.example", owner_id=None)
    hs.add_event(ref, demo_request(T0 - timedelta(hours=1)))
    runtime = make_runtime(crms, clock)
    run_job(runtime, "incremental")
    clock.advance(hours=21)
    report = run_job(runtime, "sla")
    assert report.tasks_unassigned == [person_key("a@corp.example", ref.key)]  # person key
    assert not hs.tasks


def test_failed_record_is_retried_next_cycle_and_successes_are_not_rewritten(
        crms, clock, mql_person) -> None:
    hs, sf = crms
    hs_ref, sf_ref = mql_person
    sf.reject.add(sf_ref.key)
    runtime = make_runtime(crms, clock)
    first = run_job(runtime, "incremental")
    assert first.failed == {"salesforce": 1}
    assert first.failures[0]["record"] == sf_ref.key
    sf.reject.clear()
    clock.advance(minutes=5)
    second = run_job(runtime, "incremental")
    assert second.records_written == {"salesforce": 1}
    assert hs.writes == 1 and sf.writes == 1


def test_dry_run_writes_nothing_and_keeps_no_state(crms, clock, mql_person) -> None:
    hs, sf = crms
    state = InMemoryStateStore()
    report = run_job(make_runtime(crms, clock, state), "incremental", dry_run=True)
    assert report.records_written == {"hubspot": 1, "salesforce": 1}  # what would be written
    assert hs.writes == sf.writes == 0
    assert state.get_cursor("hubspot:people") is None


def test_lost_lock_stops_before_writing(crms, clock, mql_person) -> None:
    hs, sf = crms

    class LostLock:
        def acquire(self, blocking: bool = False) -> bool:
            return True

        def extend(self) -> bool:
            return False

        def owned(self) -> bool:
            return False

        def release(self) -> None:
            pass

    state = InMemoryStateStore()
    report = run_job(make_runtime(crms, clock, state), "incremental", lock=LostLock())
    assert report.stopped_reason == "lock_lost"
    assert hs.writes == sf.writes == 0
    assert state.get_cursor("hubspot:people") is None


def test_spent_budget_stops_that_crm_only_with_its_cursors_intact(crms, clock, mql_person
                                                                  ) -> None:
    hs, sf = crms

    def spent(_updates: object, *, dry_run: bool = False) -> object:
        raise BudgetExhausted("salesforce daily share spent")

    sf.write_updates = spent  # type: ignore[method-assign]
    state = InMemoryStateStore()
    report = run_job(make_runtime(crms, clock, state), "incremental")
    assert report.stopped_reason == "budget"
    assert report.budget_stopped == ["salesforce"]
    assert report.records_written == {"hubspot": 1}
    assert hs.writes == 1 and sf.writes == 0
    assert state.get_cursor("hubspot:people") is not None
    assert state.get_cursor("salesforce:people") is None
    assert state.get_pending("salesforce") == {mql_person[1].key}  # retried when allowed


def test_an_older_evaluation_never_overwrites_a_newer_one(crms, clock, mql_person) -> None:
    hs, sf = crms
    state = InMemoryStateStore()
    runtime = make_runtime(crms, clock, state)
    run_job(runtime, "incremental")
    person = person_key("taro.yamada@example.co.jp", "")  # evaluations are kept by person key
    state.set_fingerprints("evaluated_at", {person: (clock.now + timedelta(hours=1)).isoformat()})
    hs.touch(mql_person[0], title="CEO")
    clock.advance(minutes=1)
    report = run_job(runtime, "incremental")
    assert report.stale_skipped == 1
    assert hs.writes == 1


def test_people_without_email_stay_separate(crms, clock) -> None:
    hs, sf = crms
    hs.add("contact", "1", title="CEO")
    sf.add("Lead", "00Q9", title="CEO")
    report = run_job(make_runtime(crms, clock), "incremental")
    assert report.people == 2


def test_cross_system_link_joins_records_without_matching_email(crms, clock) -> None:
    hs, sf = crms
    sf_ref = sf.add("Contact", "003A", email="new@corp.example")
    hs.add("contact", "5", email="old@corp.example", links=(sf_ref,))
    report = run_job(make_runtime(crms, clock), "incremental")
    assert report.people == 1


def test_new_engagement_on_an_unchanged_record_is_scored(crms, clock, mql_person) -> None:
    hs, sf = crms
    runtime = make_runtime(crms, clock)
    run_job(runtime, "incremental")
    before = hs.records[mql_person[0].key].written["score"]
    clock.advance(hours=1)
    hs.add_event(mql_person[0], Event("page_view", clock.now - timedelta(minutes=5),
                                      MappingProxyType({"url": "https://x.example/pricing"})))
    report = run_job(runtime, "incremental")
    assert hs.records[mql_person[0].key].written["score"] == int(before) + 15  # type: ignore[call-overload]
    assert report.records_written == {"hubspot": 1, "salesforce": 1}


def test_a_person_the_core_cannot_evaluate_is_reported_and_the_rest_continue(
        crms, clock, mql_person, monkeypatch) -> None:
    from leadsync import pipeline

    hs, sf = crms
    bad = hs.add("contact", "666", email="bad@corp.example")
    real = pipeline.evaluate

    def flaky(profile, model, now):  # type: ignore[no-untyped-def]
        if profile.id == person_key("bad@corp.example", bad.key):
            raise OverflowError("hostile value")
        return real(profile, model, now)

    monkeypatch.setattr(pipeline, "evaluate", flaky)
    report = run_job(make_runtime(crms, clock), "incremental")
    assert report.people == 1
    assert report.failures == [{"record": bad.key, "reason": "evaluation failed: OverflowError"}]
    assert report.records_written == {"hubspot": 1, "salesforce": 1}
    assert hs.records[bad.key].written == {}


def test_progress_hears_each_phase_without_ids_or_emails(crms, clock, mql_person) -> None:
    hs, _ = crms
    for i in range(1200):
        hs.add("contact", str(1000 + i), email=f"p{i}@corp.example")
    lines: list[str] = []
    run_job(make_runtime(crms, clock), "incremental", progress=lines.append)
    assert lines[0] == "reading hubspot people"
    assert "reading hubspot people: 500" in lines and "reading hubspot people: 1,000" in lines
    assert "reading salesforce engagement" in lines
    phases = [next(i for i, line in enumerate(lines) if line.startswith(p))
              for p in ("reading hubspot people", "evaluating", "writing", "follow-up")
              if any(line.startswith(p) for line in lines)]
    assert phases == sorted(phases) and len(phases) >= 3
    # the fakes' people are read whole (staged), then settled a page (1,000 records) at a
    # time: 1,201 people in two pages. The person with two records (HubSpot's and
    # Salesforce's) splits them by the order the two CRM threads staged their records: the
    # Lead staged first takes a page slot of its own (999 + 202 people); staged after the
    # HubSpot records, it joins its person's page by link (1,000 + 201: seen on a loaded box)
    counts = [int(line.split()[1].replace(",", "")) for line in lines
              if line.endswith(" people") and line.startswith("evaluating")]
    assert len(counts) == 2 and sum(counts) == 1_201 and counts[0] in (999, 1_000)
    assert not [line for line in lines if "@" in line or ":contact:" in line or ":Lead:" in line]


def test_a_sale_that_does_not_touch_the_record_is_picked_up_once(crms, clock, mql_person) -> None:
    """An opportunity won in Salesforce leaves the person record untouched: only the sales
    read (its own cursor) brings the person in; its overlap re-read is not news again."""
    hs, sf = crms
    state = InMemoryStateStore()
    runtime = make_runtime(crms, clock, state)
    run_job(runtime, "incremental")
    assert state.get_cursor("salesforce:sales") == T0 - timedelta(minutes=2)
    clock.advance(hours=1)
    run_job(runtime, "incremental")  # the people cursor moves past our own writes
    clock.advance(hours=1)
    hs_ref, sf_ref = mql_person
    before = sf.records[sf_ref.key].modified_at
    sf.sell(sf_ref, "won", clock.now - timedelta(minutes=30))
    assert sf.records[sf_ref.key].modified_at == before
    clock.advance(minutes=5)
    report = run_job(runtime, "incremental")
    assert report.transitions == {"mql->customer": 1}
    assert report.records_written == {"hubspot": 1, "salesforce": 1}
    assert hs.records[hs_ref.key].written["stage"] == "customer"
    assert state.get_cursor("salesforce:sales") == clock.now - timedelta(minutes=7)
    clock.advance(minutes=1)  # the change is inside the overlap: read again, not news
    again = run_job(runtime, "incremental")
    assert again.people == 0 and sum(again.records_written.values()) == 0


def test_a_stopped_run_keeps_the_sales_change_for_the_next(crms, clock, mql_person) -> None:
    hs, sf = crms
    state = InMemoryStateStore()
    runtime = make_runtime(crms, clock, state)
    run_job(runtime, "incremental")
    clock.advance(hours=1)
    run_job(runtime, "incremental")
    clock.advance(hours=1)
    cursor = state.get_cursor("salesforce:sales")
    sf.sell(mql_person[1], "won", clock.now - timedelta(minutes=30))
    clock.advance(minutes=5)
    real_write = sf.write_updates

    def spent(*_args: object, **_kw: object) -> object:
        raise BudgetExhausted("spent")

    sf.write_updates = spent  # type: ignore[method-assign]
    stopped = run_job(runtime, "incremental")
    assert stopped.stopped_reason == "budget" and stopped.budget_stopped == ["salesforce"]
    # a spent Salesforce budget stops Salesforce only: HubSpot already hears of the sale
    assert stopped.transitions == {"mql->customer": 1}
    assert stopped.records_written == {"hubspot": 1}
    # the sale was put on the durable to-do list before any write, so its cursor moved:
    # the Lead whose write the budget stopped is retried from there
    assert state.get_cursor("salesforce:sales") > cursor
    assert state.get_pending("salesforce") == {mql_person[1].key}
    sf.write_updates = real_write  # type: ignore[method-assign]
    report = run_job(runtime, "incremental")
    assert report.transitions == {}
    assert report.records_written == {"salesforce": 1}


# -- read phases: one thread per CRM -------------------------------------------------------------


class FailingPeopleRead(FakeConnector):
    """Fails its people read after `after` records (the HTTP layer gave up)."""

    def __init__(self, *args: object, after: int, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.after = after
        self.started = threading.Event()

    def iter_changed_people(self, since: datetime | None) -> Iterator[CrmPerson]:
        for n, rec in enumerate(super().iter_changed_people(since)):
            if n == self.after:
                raise TransientError("HubSpot list contacts: gave up after 6 attempts (HTTP 503)")
            self.started.set()
            yield rec


class PacedPeopleRead(FakeConnector):
    """Reads its people one at a time, each after the other CRM's read has started."""

    def __init__(self, *args: object, other: FailingPeopleRead | None, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.other = other
        self.yielded = 0

    def iter_changed_people(self, since: datetime | None) -> Iterator[CrmPerson]:
        if self.other is not None:
            assert self.other.started.wait(5), "the two CRMs were not read at the same time"
        for rec in super().iter_changed_people(since):
            time.sleep(0.002)
            self.yielded += 1
            yield rec


def test_a_failed_read_of_one_crm_stops_the_other_at_its_next_page(clock) -> None:
    hs = FailingPeopleRead("hubspot", clock, after=3)
    sf = PacedPeopleRead("salesforce", clock, other=hs)
    for i in range(5):
        hs.add("contact", str(i), email=f"h{i}@corp.example")
    for i in range(3000):
        sf.add("Lead", f"00Q{i}", email=f"s{i}@corp.example")
    state = InMemoryStateStore()
    with pytest.raises(TransientError, match="HTTP 503"):
        run_job(make_runtime((hs, sf), clock, state), "full")
    # Salesforce stopped at its first page boundary after the failure (every PROGRESS_EVERY)
    assert sf.yielded == PROGRESS_EVERY
    assert sf.writes == 0 and hs.writes == 0
    assert state.get_cursor("hubspot:people") is None
    assert state.get_cursor("salesforce:people") is None


def test_a_spent_budget_in_one_read_thread_keeps_the_other_crms_reads(crms, clock) -> None:
    hs, sf = crms
    hs_ref = hs.add("contact", "1", email="a@corp.example", title="営業部長", employees=150)
    sf.add("Lead", "00Q1", email="b@corp.example", title="営業部長", company="Corp KK")

    def spent(_since: datetime | None) -> Iterator[CrmPerson]:
        raise BudgetExhausted("spent")

    sf.iter_changed_people = spent  # type: ignore[method-assign]
    state = InMemoryStateStore()
    report = run_job(make_runtime(crms, clock, state), "full")
    assert report.stopped_reason == "budget" and report.budget_stopped == ["salesforce"]
    assert report.records_read == {"hubspot": 1}
    assert report.records_written == {"hubspot": 1}
    assert hs.records[hs_ref.key].written["stage"] is not None
    assert state.get_cursor("salesforce:people") is None
    assert state.get_cursor("hubspot:people") is not None


class TimeLimit(Exception):
    """What Celery's soft time limit raises in the task's (main) thread."""


def test_a_run_interrupted_while_reading_stops_both_crm_threads(crms, clock) -> None:
    hs, sf = PacedPeopleRead("hubspot", clock, other=None), PacedPeopleRead(
        "salesforce", clock, other=None)
    for i in range(3000):
        hs.add("contact", str(i), email=f"h{i}@corp.example")
        sf.add("Lead", f"00Q{i}", email=f"s{i}@corp.example")

    def interrupt(_signum: int, _frame: object) -> None:
        raise TimeLimit

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)  # 3000 records at 2 ms take 6 s per CRM
    try:
        with pytest.raises(TimeLimit):
            run_job(make_runtime((hs, sf), clock), "full")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not [t for t in threading.enumerate() if t.name.startswith("leadsync-crm")]
    # each CRM thread stopped at its first page boundary after the interruption
    assert hs.yielded == sf.yielded == PROGRESS_EVERY
    assert hs.writes == sf.writes == 0


def test_a_sale_closed_while_the_full_run_works_is_decided_by_the_next_incremental(
        crms, clock, mql_person) -> None:
    """The full run reads once and decides from that read; what a rep changes meanwhile is
    newer than the cursors it saves, so the next incremental cycle reads it and decides."""
    hs, sf = crms
    hs_ref, sf_ref = mql_person
    state = InMemoryStateStore()
    runtime = make_runtime(crms, clock, state)
    real_write = hs.write_updates

    def write_while_the_sale_closes(*args: object, **kw: object) -> object:
        sf.sell(sf_ref, "won", clock.now)  # after the full run read Salesforce
        return real_write(*args, **kw)  # type: ignore[arg-type]

    hs.write_updates = write_while_the_sale_closes  # type: ignore[method-assign]
    full = run_job(runtime, "full")
    hs.write_updates = real_write  # type: ignore[method-assign]
    assert full.transitions == {"new->mql": 1}
    assert hs.records[hs_ref.key].written["stage"] == "mql"
    clock.advance(minutes=5)
    report = run_job(runtime, "incremental")
    assert report.transitions == {"mql->customer": 1}
    assert report.records_written == {"hubspot": 1, "salesforce": 1}
    assert hs.records[hs_ref.key].written["stage"] == "customer"
    assert sf.records[sf_ref.key].written["stage"] == "customer"


def test_engagement_saved_during_the_read_counts_once_and_forces_its_people(
        crms, clock, mql_person, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pull saves engagement every EVENTS_FLUSH events (memory): saved early, the events
    still score their people this run, once each, and are not news for the next run."""
    hs, sf = crms
    hs_ref, _ = mql_person
    other = hs.add("contact", "102", email="hanako@example.co.jp", title="営業部長",
                   employees=150)
    hs.add_event(other, demo_request(T0 - timedelta(hours=2)))
    monkeypatch.setattr(pipeline, "EVENTS_FLUSH", 1)
    state = InMemoryStateStore()
    runtime = make_runtime(crms, clock, state)
    report = run_job(runtime, "incremental")
    assert report.people == 2 and report.stages == {"mql": 2}
    assert report.records_written == {"hubspot": 2, "salesforce": 1}
    stored = state.get_events([hs_ref.key, other.key])
    assert [len(v) for v in stored.values()] == [1, 1]
    assert state.get_pending("hubspot") == set()  # settled: off the to-do list
    clock.advance(minutes=5)
    again = run_job(runtime, "incremental")  # the overlap re-read is not news
    assert again.people == 0 and sum(again.records_written.values()) == 0


def test_a_run_that_does_not_resume_a_staged_read_clears_it_and_its_point(
        crms, clock, mql_person) -> None:
    """A killed full run left Salesforce records staged and a resume point; an incremental
    run (the cursors are set) does not resume them: it clears both, and a later full run
    reads Salesforce whole, not after a point whose staged records are gone."""
    state = InMemoryStateStore()
    rt = make_runtime(crms, clock, state)
    run_job(rt, "incremental")  # the first sync: the cursors are set
    ghost = RecordRef("salesforce", "Lead", "00Qghost").key
    state.stage({ghost: "{}"}, {"email:x": [ghost]})
    state.set_fingerprints("resume", {"salesforce:people": '{"after":"{}","done":false}'})
    report = run_job(rt, "incremental")
    assert not report.resumed
    assert state.get_fingerprints("resume", ["salesforce:people"]) == {"salesforce:people": ""}
    assert state.scan_staged("", 10) == ("", {})
    full = run_job(rt, "full")
    assert not full.resumed and full.records_read["salesforce"] == 1


def test_the_sla_and_chunk_jobs_leave_a_killed_full_runs_staged_read_alone(
        crms, clock, mql_person) -> None:
    state = InMemoryStateStore()
    rt = make_runtime(crms, clock, state)
    run_job(rt, "incremental")
    hs_ref, sf_ref = mql_person
    staged = RecordRef("salesforce", "Lead", "00Qstaged").key
    point = '{"after":"{}","done":false}'
    state.stage({staged: "not decoded by these jobs", sf_ref.key: "{}"}, {"email:x": [staged]})
    state.set_fingerprints("resume", {"salesforce:people": point})
    sla = run_job(rt, "sla")
    chunk = run_job(rt, "chunk", record_keys=[sf_ref.key])
    assert sla.stopped_reason is None and chunk.stopped_reason is None and chunk.people == 1
    assert state.get_fingerprints("resume", ["salesforce:people"]) == {"salesforce:people": point}
    assert state.get_staged([staged, sf_ref.key]) == {staged: "not decoded by these jobs",
                                                      sf_ref.key: "{}"}
