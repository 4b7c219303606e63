"""Engagement streams with their own cursors, and events held until their email has a record:
the real pipeline over an in-memory CRM that serves its engagement as streams."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from leadsync import pipeline
from leadsync.config.rules import load_default_rules
from leadsync.config.settings import Settings
from leadsync.connectors.base import EngagementEvent, RecordRef, UnresolvedEvent
from leadsync.identity import email_hash
from leadsync.pipeline import run_job
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


class StreamedCrm(FakeConnector):
    """Engagement as two streams, `views` and `forms`; forms name people by email only."""

    engagement_streams = ("views", "forms")

    def __init__(self, clock: Clock) -> None:
        super().__init__("hubspot", clock)
        self.views: list[EngagementEvent] = []
        self.forms: list[tuple[str, Event, str, datetime]] = []  # email, event, id, seen_at
        self.asked: dict[str, list[datetime]] = {"views": [], "forms": []}

    def view(self, ref: RecordRef, at: datetime) -> None:
        event = Event("page_view", at, MappingProxyType({"url": "/pricing"}))
        self.views.append(EngagementEvent(ref, event, f"v{len(self.views)}", at))

    def form(self, email: str, at: datetime) -> None:
        event = Event("form_submit", at, MappingProxyType({"form": "newsletter"}))
        self.forms.append((email, event, f"f{len(self.forms)}", at))

    def iter_engagement_stream(self, stream: str, since: datetime
                               ) -> Iterator[EngagementEvent | UnresolvedEvent]:
        self.calls += 1
        self.asked[stream].append(since)
        if stream == "views":
            yield from (e for e in self.views if e.seen_at >= since)
            return
        by_email = {(r.profile.email or "").lower(): r.ref for r in self.records.values()}
        for email, event, eid, seen in self.forms:
            if seen < since:
                continue
            ref = by_email.get(email)
            if ref is None:
                yield UnresolvedEvent(email_hash(email), event, eid, seen)
            else:
                yield EngagementEvent(ref, event, eid, seen)


def make(clock: Clock, state: InMemoryStateStore) -> tuple[StreamedCrm, Runtime]:
    crm = StreamedCrm(clock)
    rt = Runtime(settings=Settings(), model=load_default_rules(), connectors={"hubspot": crm},
                 state=state, clock=clock)
    return crm, rt


def stored(state: InMemoryStateStore, key: str, kind: str) -> list[datetime]:
    return [e.at for e in state.get_events([key])[key] if e.type == kind]


def test_each_stream_has_its_own_cursor_so_a_late_view_is_read() -> None:
    clock, state = Clock(), InMemoryStateStore()
    crm, rt = make(clock, state)
    ref = crm.add("contact", "1", email="a@corp.example")
    state.set_cursor("hubspot:engagement", T0 - timedelta(hours=1))  # an older version's cursor
    crm.view(ref, T0 - timedelta(minutes=50))
    run_job(rt, "incremental")
    assert crm.asked == {"views": [T0 - timedelta(hours=1)], "forms": [T0 - timedelta(hours=1)]}
    clock.now = T0 + timedelta(hours=1)
    crm.form("a@corp.example", clock.now - timedelta(minutes=1))
    run_job(rt, "incremental")
    late = T0 + timedelta(minutes=30)  # before the newest form, after the newest view
    crm.view(ref, late)
    clock.now = T0 + timedelta(hours=1, minutes=5)
    run_job(rt, "incremental")
    assert stored(state, ref.key, "page_view") == [T0 - timedelta(minutes=50), late]
    assert state.get_cursor("hubspot:engagement:views") == late - pipeline.CURSOR_OVERLAP
    assert state.get_cursor("hubspot:engagement:forms") == (
        T0 + timedelta(minutes=59) - pipeline.CURSOR_OVERLAP)


def test_held_events_attach_once_the_email_has_a_record_and_expire_after_30_days() -> None:
    clock, state = Clock(), InMemoryStateStore()
    crm, rt = make(clock, state)
    crm.add("contact", "1", email="known@corp.example")
    crm.form("new@corp.example", T0 - timedelta(minutes=1))  # re-read by the next overlap
    crm.form("gone@corp.example", T0 - timedelta(minutes=1))
    run_job(rt, "incremental")
    held = state.get_held_events()
    assert len(held) == 2 and "new@corp.example" not in repr(held)
    clock.now = T0 + timedelta(seconds=30)
    run_job(rt, "incremental")  # the overlap re-reads both: still two, first held time kept
    assert state.get_held_events() == held

    clock.now = T0 + timedelta(days=2)
    ref = crm.add("contact", "2", email="new@corp.example")  # the contact is created
    run_job(rt, "incremental")
    assert stored(state, ref.key, "form_submit") == [T0 - timedelta(minutes=1)]
    assert len(state.get_held_events()) == 1

    clock.now = T0 + timedelta(days=30, minutes=1)  # past the age limit: forgotten
    run_job(rt, "incremental")
    assert state.get_held_events() == {}
    clock.now += timedelta(days=1)
    run_job(rt, "incremental")
    assert stored(state, ref.key, "form_submit") == [T0 - timedelta(minutes=1)]  # counted once


def test_held_events_are_bounded_keeping_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "HELD_EVENTS_MAX", 3)
    clock, state = Clock(), InMemoryStateStore()
    crm, rt = make(clock, state)
    for i in range(2):
        crm.form(f"old{i}@corp.example", T0 - timedelta(minutes=1))
    run_job(rt, "incremental")
    clock.now = T0 + timedelta(hours=1)
    for i in range(3):
        crm.form(f"new{i}@corp.example", clock.now - timedelta(minutes=1))
    run_job(rt, "incremental")
    held = state.get_held_events()
    assert sorted(held) == ["f2", "f3", "f4"]  # the two held first were dropped


def test_records_whose_events_were_saved_are_on_the_to_do_list_before_the_run_settles(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The engagement read saves its events in batches (EVENTS_FLUSH) and puts their records on
    the durable to-do list with them: a run killed after the read, before its cursors move,
    leaves them there, and the next run evaluates them although the overlap re-read finds
    their events known (they were lost before: known events are no news)."""
    monkeypatch.setattr(pipeline, "EVENTS_FLUSH", 1)
    clock, state = Clock(), InMemoryStateStore()
    crm, rt = make(clock, state)
    refs = [crm.add("contact", str(i), email=f"p{i}@corp.example") for i in range(3)]
    run_job(rt, "incremental")  # the first sync: cursors set, everyone evaluated
    clock.now = T0 + timedelta(hours=1)
    for ref in refs[:2]:
        crm.view(ref, clock.now - timedelta(minutes=2))

    def killed(self: object, sales_keys: set[str]) -> set[str]:
        raise RuntimeError("killed after the engagement read")

    with monkeypatch.context() as patch:
        patch.setattr(pipeline._Cycle, "settle_activity", killed)
        with pytest.raises(RuntimeError):
            run_job(rt, "incremental")
    assert state.get_pending("hubspot") == {refs[0].key, refs[1].key}
    assert len(stored(state, refs[0].key, "page_view")) == 1

    clock.now += timedelta(minutes=1)
    report = run_job(rt, "incremental")
    assert report.people == 2  # exactly the two with new events
    assert state.get_pending("hubspot") == set()


def test_the_forced_records_live_in_the_store_and_leave_it_as_pages_take_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9, memory flat: the run's forced records (a first sync: everyone with engagement)
    are a set in the state store, asked a page at a time; each page takes its records off it,
    the last page reads what is left (a record no read returned), and the run drops the set."""
    clock, state = Clock(), InMemoryStateStore()
    crm, rt = make(clock, state)
    refs = [crm.add("contact", str(i), email=f"p{i}@corp.example") for i in range(4)]
    for ref in refs[:3]:
        crm.view(ref, T0 - timedelta(minutes=5))
    state.add_pending("hubspot", ["hubspot:contact:404"])  # deleted since it was put there
    seen: list[set[str]] = []
    run_page = pipeline._Cycle.run_page

    def spy(self: pipeline._Cycle, records: dict[str, object], job: str, *, last: bool) -> None:
        seen.append(state.get_pending(pipeline.FORCED))
        run_page(self, records, job, last=last)  # type: ignore[arg-type]
        seen.append(state.get_pending(pipeline.FORCED))

    monkeypatch.setattr(pipeline._Cycle, "run_page", spy)
    read_ids: list[list[str]] = []
    read_people = crm.read_people

    def reads(refs: list[RecordRef]) -> object:
        read_ids.append([r.id for r in refs])
        return read_people(refs)

    monkeypatch.setattr(crm, "read_people", reads)
    report = run_job(rt, "incremental")
    forced = {ref.key for ref in refs[:3]} | {"hubspot:contact:404"}
    assert seen == [forced, {"hubspot:contact:404"}]  # one page: the 4 people, then the rest
    assert report.people == 4
    assert state.get_pending(pipeline.FORCED) == set()  # dropped with the run
    assert read_ids == [["404"]]  # the one forced record no page had, read once by id


def test_the_overlap_dedupe_reads_the_stored_events_a_batch_of_records_at_a_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9: each batch of new events is checked against what is stored (the overlap
    re-read), FRESH_BATCH records at a time (it read every stored event of every record of the
    batch at once: the pull's peak). Known events are dropped, new ones saved, exactly once."""
    monkeypatch.setattr(pipeline, "FRESH_BATCH", 2)
    clock, state = Clock(), InMemoryStateStore()
    crm, rt = make(clock, state)
    refs = [crm.add("contact", str(i), email=f"p{i}@corp.example") for i in range(5)]
    for ref in refs:
        crm.view(ref, T0 - timedelta(minutes=1))  # re-read by the next run's overlap
    run_job(rt, "incremental")
    clock.now = T0 + timedelta(minutes=1)
    crm.view(refs[3], T0 + timedelta(seconds=30))  # one new view among the re-read ones
    asked: list[list[str]] = []
    real = state.get_events

    def get_events(record_keys: list[str]) -> dict[str, list[Event]]:
        asked.append(list(record_keys))
        return real(record_keys)

    monkeypatch.setattr(state, "get_events", get_events)
    report = run_job(rt, "incremental")
    keys = [r.key for r in refs]
    # the dedupe, 2 records at a time, then the evaluation of the one person with news
    assert asked == [keys[0:2], keys[2:4], keys[4:5], [keys[3]]]
    assert report.people == 1  # exactly the one with a new view
    for i, ref in enumerate(refs):
        assert len(stored(state, ref.key, "page_view")) == (2 if i == 3 else 1)
