"""One sync cycle: pull -> resolve -> evaluate -> diff -> write -> follow-ups -> commit.

Jobs:
- `incremental`: people changed since each CRM's cursor, people with new engagement, people
  whose sales outcome changed (an opportunity closed: `pull_sales`), records whose last write
  failed, and people whose SLA clock is running.
- `full`: everyone (applies score decay to people who did not change).
- `sla`: only people whose SLA clock is running.
- `chunk`: the given record keys (kept for chunk messages queued by earlier versions, which
  fanned the nightly run out; the nightly run is now one `full` job, docs/operations.md).

The read phases and the field writes work on HubSpot and Salesforce at the same time, one
thread per CRM (`each_crm`): the work is bound by each CRM's own rate limit, so a phase takes
as long as the slower CRM, not the sum of both. A CRM thread uses its own connector only (each
connector, its HTTP client and its session are used by one thread at a time) and the
thread-safe shared pieces (rate limiters, the Salesforce budget, call counters, the lease and
its heartbeat flag, the state store's reads); what it finds or writes is kept in its own
`CrmReads` or result slot and merged by the main thread once both are done.

People are settled page by page (docs/resume.md): a paged CRM's people (HubSpot,
`PagedPeople`) `page_people` records at a time, each page resolved, evaluated, written, given
its follow-ups and committed before the next is read; the people of the other CRM are read
whole first into the run's staging area in the state store (`leadsync.staging`; Salesforce
with a resume point per query page, `ResumablePeople`) and each page takes its people's
records from there; then the staged records no page took, a page at a time.

Promises kept here (RELIABILITY.md): cursors are saved only after the writes that depend on them
or once what they cover is on the durable to-do list (§4, the pending sets: docs/resume.md);
our own writes do not come back as work (§5, input fingerprints); a newer evaluation is never
overwritten by an older one (§5); failed records are retried next cycle, successes are not
rewritten (§7); follow-up tasks are created at most once per key (§3, see `followups`); a lost
lock stops writing (§1); a spent API budget stops that CRM cleanly, what it had not settled on
the to-do list (§6).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from leadsync import memory
from leadsync import person as persons
from leadsync.accounts.inherit import with_account_facts
from leadsync.accounts.phase import AccountPhase
from leadsync.connectors.base import (
    BudgetExhausted,
    Connector,
    CrmPerson,
    EngagementEvent,
    FieldUpdate,
    RecordRef,
    UnresolvedEvent,
    WriteResult,
    writes_done,
)
from leadsync.drift import OwnFields
from leadsync.followups import OwedTask, TaskOutcome, TaskPlan
from leadsync.identity import (
    Person,
    email_hash,
    event_signature,
    group_records,
    merge_profile,
    normalise_email,
)
from leadsync.lease import Heartbeat, LockLost
from leadsync.owner_routing import Router, sweep_open_owners
from leadsync.report import CycleReport
from leadsync.runtime import Runtime
from leadsync.scoring import Evaluation, Event, evaluate, render_reasons
from leadsync.staging import decode_person, lookup_tokens, stage_page
from leadsync.state import (
    InMemoryStateStore,
    Lock,
    StateStore,
    decode_event,
    encode_event,
    format_utc,
    parse_utc,
)

log = logging.getLogger("leadsync.pipeline")

Job = Literal["incremental", "full", "sla", "chunk"]
JOBS: tuple[str, ...] = ("incremental", "full", "sla", "chunk")
# Search indexes lag writes and events arrive late: re-read a little before the newest
# timestamp seen (deduped by fingerprints and event signatures)
CURSOR_OVERLAP = timedelta(minutes=2)
PROGRESS_EVERY = 500  # records between progress lines
TOP_N = 10
# engagement events a CRM thread holds before saving them (not in a dry run): the pull's memory
# does not grow with the engagement
EVENTS_FLUSH = 5_000
FRESH_BATCH = 500  # records whose stored events `fresh_events` reads at once
# the run's forced records (to evaluate even if their inputs look unchanged), a pending-style set
# in the state store asked a page at a time: a first sync forces everyone with engagement, too
# many to hold (docs/resume.md, "Memory")
FORCED = "run:forced"
# engagement events whose email no record has yet: kept and retried each cycle, within bounds
HELD_EVENTS_MAX = 20_000
HELD_EVENTS_MAX_AGE = timedelta(days=30)

__all__ = ["JOBS", "Job", "LockLost", "run_job", "written_values"]


@runtime_checkable
class StreamedEngagement(Protocol):
    """A connector whose engagement comes as several streams with their own delays (HubSpot):
    each gets its own cursor `<system>:engagement:<stream>`."""

    engagement_streams: tuple[str, ...]

    def iter_engagement_stream(self, stream: str, since: datetime
                               ) -> Iterator[EngagementEvent | UnresolvedEvent]: ...


@runtime_checkable
class PagedPeople(Protocol):
    """A connector that reads its people a page at a time with a resume point (HubSpot): the
    pipeline settles them page by page instead of holding the whole read."""

    def iter_people_pages(self, since: datetime | None, after: str | None = None
                          ) -> Iterator[tuple[list[CrmPerson], str | None]]: ...


@runtime_checkable
class ResumablePeople(Protocol):
    """A connector whose whole people read (since=None) comes in pages, each with the point
    a read resumes after it (Salesforce: Leads then Contacts by SystemModstamp, Id): the pull
    stages each page and saves the point, so a killed run's restart reads only the rest. What
    the read must hold across its pages (Salesforce: sales facts) it may keep in `scratch`,
    the state store, under kinds of its own."""

    def iter_people_resumable(self, since: datetime | None, after: str | None = None,
                              scratch: StateStore | None = None
                              ) -> Iterator[tuple[list[CrmPerson], str | None]]: ...


@dataclass
class _Stream:
    """Where one paged CRM's people read is (saved after each settled page)."""

    system: str
    since: datetime | None  # the cursor it started from (None: a full read by id)
    started: datetime  # the first attempt's clock: the cursor is never later than it
    after: str | None = None  # full read: the next page's token
    newest: datetime | None = None  # newest modification time read so far
    resumed: bool = False  # after a killed run's last committed page

    @property
    def name(self) -> str:
        return f"{self.system}:people"

    def encode(self) -> str:
        return json.dumps({"after": self.after, "started": format_utc(self.started),
                           "newest": format_utc(self.newest) if self.newest else None},
                          separators=(",", ":"))


def written_values(ev: Evaluation) -> dict[str, object]:
    """The logical written fields of DESIGN.md §6 for one evaluation."""
    return {"score": ev.score, "fit_grade": ev.grade, "engagement": ev.engagement,
            "stage": ev.stage, "reasons": ev.reasons, "mql_at": ev.mql_at, "sql_at": ev.sql_at,
            "sla_due": ev.sla_due, "sla_status": ev.sla_status, "model": ev.model}


def run_job(runtime: Runtime, job: Job, *, dry_run: bool = False, lock: Lock | None = None,
            record_keys: Sequence[str] | None = None,
            progress: Callable[[str], None] | None = None,
            keep_people: bool = True) -> CycleReport:
    """Run one job to the end (or to a clean stop) and say what it did. `progress`, when
    given, hears a short line at each phase and every few hundred records (no ids);
    `keep_people`: the report lists everyone evaluated (`CycleReport.outcomes`, `primary`)."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; expected one of {', '.join(JOBS)}")
    started = time.monotonic()
    calls_before = runtime.api_calls()
    beat = Heartbeat(lock)
    cycle = _Cycle(runtime, CycleReport(job=job, dry_run=dry_run, now=runtime.clock(),
                                        keep_people=keep_people),
                   lock=beat, dry_run=dry_run, progress=progress)
    try:
        with beat:
            cycle.run(job, record_keys or ())
    except BudgetExhausted as exc:
        cycle.report.stopped_reason = "budget"
        log.warning("API budget spent: run stopped, cursors kept", extra={"detail": str(exc)})
    except LockLost:
        cycle.report.stopped_reason = "lock_lost"
        log.warning("job lock lost to another process: stopped writing", extra={"job": job})
    after = runtime.api_calls()
    cycle.report.api_calls = {s: after[s] - calls_before.get(s, 0) for s in after}
    cycle.report.duration_s = time.monotonic() - started
    log.info("cycle finished", extra={"job": job, "people": cycle.report.people,
                                      "stopped": cycle.report.stopped_reason})
    return cycle.report


@dataclass
class CrmReads:
    """What one CRM's read thread found, kept apart until the main thread merges it."""

    records: dict[str, CrmPerson] = field(default_factory=dict)
    events: dict[str, dict[str, Event]] = field(default_factory=dict)  # record key -> id -> event
    held: dict[str, str] = field(default_factory=dict)  # events of emails without a record
    cursors: dict[str, datetime] = field(default_factory=dict)
    sales: dict[str, tuple[str, str]] = field(default_factory=dict)  # fp -> (record key, seen)


class _SiblingFailed(Exception):
    """The other CRM's read thread failed: this one stops at its next page (the run fails)."""


class _Cycle:
    def __init__(self, runtime: Runtime, report: CycleReport, *, lock: Heartbeat | None,
                 dry_run: bool, progress: Callable[[str], None] | None = None) -> None:
        self.say: Callable[[str], None] = progress or (lambda _line: None)
        self.rt = runtime
        self.state = runtime.state
        self.report = report
        self.now: datetime = report.now
        self.lease = lock if lock is not None else Heartbeat(None)
        self.dry_run = dry_run
        self.cursors: dict[str, datetime] = {}
        self.new_events: dict[str, dict[str, Event]] = {}
        self.failed_keys: set[str] = set()
        self.sales_seen: dict[str, str] = {}  # "<system>:<changed record id>" -> seen_at
        self.stale_ids: set[str] = set()  # people a newer evaluation already wrote
        # per-CRM budget stops: a spent budget stops that CRM's work only
        self.budget_stopped: set[str] = set()
        self.unread: set[str] = set()  # record keys a stopped CRM could not read
        # events whose email no record has yet: id -> stored payload; and those resolved now
        self.held_new: dict[str, str] = {}
        self.held_done: set[str] = set()
        self._budget_guard = threading.Lock()  # CRM threads record their budget stops
        self._read_failed = threading.Event()  # one CRM thread failed: the other stops too
        # stored person records by person key (None: none yet) and this cycle's task outcome
        self.records: dict[str, persons.PersonRecord | None] = {}
        self.tasks = TaskOutcome()
        self.own = OwnFields(self.state)  # what leadsync last wrote to its own fields (drift)
        self.routed_values: dict[str, dict[str, object]] = {}  # record key -> owner, reason
        # page by page: the staging area of the people read whole (a dry run's is its own,
        # in the process), the CRMs staged there, where the forced records are (`FORCED`: the
        # state store; a dry run's and a chunk's in the process), the record keys a dry run's
        # pages had, this page's keys, the paged reads
        self.staging: StateStore = InMemoryStateStore() if dry_run else self.state
        self.staged_systems: list[str] = []
        self.forced_in: StateStore = self.staging
        self.seen: set[str] = set()
        self.page_keys: list[str] = []
        self.streams: list[_Stream] = []  # the paged CRMs' people reads, in order
        self.done_streams: list[_Stream] = []
        self.account_phase: AccountPhase | None = None  # the run's, across its pages
        # a full run with routing: the people counted against a rep that no page evaluated
        # yet (what `sweep_open_owners` drops at the end), instead of everyone evaluated
        self.open_unseen: set[str] | None = None

    # -- phases -------------------------------------------------------------------------
    def run(self, job: str, record_keys: Iterable[str]) -> None:
        """pull (engagement, sales, the people of CRMs read whole, staged) -> settle that
        activity -> then page by page (a paged CRM's people; then the staged records no page
        took; last, the forced records nobody read): resolve -> evaluate -> write ->
        follow-ups -> commit."""
        # chunks run side by side: theirs stay in the process
        self.forced_in = InMemoryStateStore() if job == "chunk" else self.staging
        self.forced_in.drop_pending(FORCED)  # what a killed run left
        paged: list[str] = []
        if job in ("incremental", "full"):
            paged = [s for s, c in self.rt.connectors.items() if isinstance(c, PagedPeople)]
            self.staged_systems = [s for s in self.rt.connectors if s not in paged]
            starts = self.open_staging(full=job == "full")
            sales_keys = self.pull(full=job == "full", paged=paged, starts=starts)
            self.resolve_held_events({})  # by the identity index; staged records per page
            self.checkpoint()
            self.force(self.settle_activity(sales_keys))
            for system in self.rt.connectors:
                self.force_pending(system)
            self.streams = [self.open_stream(system, full=job == "full") for system in paged]
        # a resumed run: people the killed run evaluated need no second look for their clock
        resumed = [s.started for s in self.streams if s.resumed]
        settled = min(resumed) if resumed else None
        if job in ("incremental", "sla"):
            self.force(memory.open_sla_records(self.state, self.now, settled_since=settled))
            # not created yet: retried each cycle
            self.force(memory.owed_task_records(self.state, settled_since=settled))
        if job == "chunk":
            self.force(record_keys)
        sweep = job == "full" and settled is None and not self.dry_run \
            and self.rt.model.routing.enabled
        if sweep:
            self.open_unseen = set(self.state.open_owners())
        for records, last in self.people_pages():
            self.run_page(records, job, last=last)
        if sweep and not self.budget_stopped:  # docs/routing.md, "Capacity"
            unseen = self.open_unseen or set()
            sweep_open_owners(self.state, {p for p in self.state.open_owners()
                                           if p not in unseen})
        if not self.dry_run:
            self.forced_in.drop_pending(FORCED)

    def force(self, record_keys: Iterable[str]) -> None:
        """Records to evaluate this run even if their inputs look unchanged."""
        self.forced_in.add_pending(FORCED, sorted(record_keys))

    def force_pending(self, system: str) -> None:
        """Every record on a CRM's durable to-do list is forced: a union inside the store
        (a dry run's or a chunk's forced set is in the process: read it)."""
        if self.forced_in is self.state:
            self.state.copy_pending(system, FORCED)
        else:
            self.force(self.state.get_pending(system))

    def run_page(self, records: dict[str, CrmPerson], job: str, *, last: bool) -> None:
        """One page of people from their records to the commit. A page takes its people's
        other records from the staging area (by link, email or key) before reading them by
        id; the last page also takes the forced records no page had."""
        self.resolve_held_events(records)
        spare: dict[str, CrmPerson] = {}
        if job != "full":
            records, spare = self.drop_unchanged(records)
        if last:  # the forced records no page had (the pages took theirs off the set)
            wanted = self.forced_in.get_pending(FORCED) - self.seen
            spare.update(self.staged(wanted - set(records) - set(spare)))
            records.update(self.read_missing(wanted, records, spare))
            self.checkpoint()
        related = self.related_keys(records)
        spare.update(self.staged(related - set(records) - set(spare)))
        records.update(self.read_missing(related, records, spare))
        self.checkpoint()
        # what a later page must not take again: the forced ones leave the set; the staging
        # area forgets a page's records at its commit (a dry run commits nothing: it keeps
        # every key)
        self.forced_in.remove_pending(FORCED, sorted(records))
        if self.dry_run:
            self.seen.update(records)
        self.page_keys = sorted(records)
        candidates = self.defer_incomplete(self.resolve(records.values()))
        people, evaluations = self.evaluate(candidates)
        people = self.route(people, evaluations)
        self.checkpoint()
        self.write(people, evaluations)
        people, evaluations = self.drop_stale(people, evaluations)
        self.follow_ups(people, evaluations)
        self.checkpoint()
        self.accounts(job, people, evaluations, last=last)
        self.checkpoint()
        self.commit(people, evaluations, last=last)

    def people_pages(self) -> Iterator[tuple[dict[str, CrmPerson], bool]]:
        """Each paged CRM's people, `page_people` records a page (a setting), read in the main
        thread (one CRM after the other); then `last`: the final page, with what is left of
        the paged reads (a whole run smaller than a page is one page, as before), then the
        staged records no page took, `page_people` a page, the last one `last`. Resumed here
        once a page is committed, it saves where the read stands: a full read's next page
        token (`resume` fingerprint), a search's cursor."""
        rest: dict[str, CrmPerson] = {}
        for stream in self.streams:
            system = stream.system
            conn = self.rt.connectors[system]
            assert isinstance(conn, PagedPeople)
            batch: dict[str, CrmPerson] = {}
            self.say(f"reading {system} people")
            with self.crm_work(system):
                for recs, after in conn.iter_people_pages(stream.since, stream.after):
                    self.checkpoint()
                    for rec in recs:
                        batch[rec.ref.key] = rec
                        if stream.newest is None or rec.modified_at > stream.newest:
                            stream.newest = rec.modified_at
                    self.report.records_read[system] += len(recs)
                    stream.after = after
                    more = after is not None or stream.since is not None  # a search: no token
                    if len(batch) >= self.rt.settings.page_people and more:
                        self.say(f"reading {system} people: "
                                 f"{self.report.records_read[system]:,}")
                        yield batch, False
                        self.save_stream(stream)
                        batch = {}
            rest.update(batch)
            if system not in self.budget_stopped and stream.newest is not None:
                self.cursors[stream.name] = min(stream.newest, stream.started) - CURSOR_OVERLAP
            self.done_streams.append(stream)
        size, cursor = self.rt.settings.page_people, ""
        while self.staged_systems:  # what no page took (a record may come twice: skipped)
            cursor, found = self.staging.scan_staged(cursor, size)
            for key, payload in found.items():
                if key not in self.seen and key not in rest:
                    rest[key] = decode_person(payload)
            if not cursor:
                break
            if len(rest) >= size:
                yield rest, False
                rest = {}
        yield rest, True

    def staged(self, keys: set[str]) -> dict[str, CrmPerson]:
        """These records from the staging area, those staged and not yet taken by a page."""
        keys = keys - self.seen
        if not keys or not self.staged_systems:  # the sla and chunk jobs stage nothing
            return {}
        found = self.staging.get_staged(sorted(keys))
        return {key: decode_person(payload) for key, payload in found.items()}

    def open_staging(self, *, full: bool) -> dict[str, dict[str, object]]:
        """Where each staged CRM's people read starts: a full read (or a first sync) after
        the resume point a killed run saved (its staged records are still there); else from
        the start, after clearing what a killed run left staged and its resume point (an
        incremental run between a killed full run and the next one clears them: that one
        reads Salesforce whole again)."""
        starts: dict[str, dict[str, object]] = {}
        if not self.dry_run:
            for system in self.staged_systems:
                name = f"{system}:people"
                if not full and self.state.get_cursor(name) is not None:
                    continue
                saved = self.state.get_fingerprints("resume", [name]).get(name)
                if saved:
                    starts[system] = json.loads(saved)
        if starts:
            self.report.resumed = True
            log.info("people read resumed after the last staged page",
                     extra={"systems": sorted(starts)})
        elif not self.dry_run:
            self.staging.clear_staged()
            self.state.set_fingerprints("resume", {f"{s}:people": "" for s in self.staged_systems})
        return starts

    def open_stream(self, system: str, *, full: bool) -> _Stream:
        """Where a paged CRM's people read starts: its cursor (incremental), or a full read
        by id, resumed after the last committed page when a killed run left one."""
        name = f"{system}:people"
        since = None if full else self.state.get_cursor(name)
        stream = _Stream(system=system, since=since, started=self.now)
        if since is not None:
            return stream
        saved = self.state.get_fingerprints("resume", [name]).get(name)
        if saved:
            doc = json.loads(saved)
            stream.after = doc.get("after")
            stream.started = parse_utc(str(doc["started"]))
            stream.newest = parse_utc(str(doc["newest"])) if doc.get("newest") else None
            stream.resumed = self.report.resumed = True
            log.info("people read resumed after the last committed page",
                     extra={"system": system})
        return stream

    def save_stream(self, stream: _Stream) -> None:
        """After a page is committed: the read resumes after it (a search: its cursor)."""
        if self.dry_run or stream.system in self.budget_stopped:
            return
        if stream.since is not None:
            if stream.newest is not None:
                self.state.set_cursor(stream.name, max(
                    stream.since, min(stream.newest, self.now) - CURSOR_OVERLAP))
        elif stream.after:
            self.state.set_fingerprints("resume", {stream.name: stream.encode()})

    def settle_activity(self, sales_keys: set[str]) -> set[str]:
        """Engagement, held events and sales changes read by the pull are saved now, the
        records they concern put on the durable to-do list (the pending sets), and their
        cursors moved: a run killed later does not read them again. Returns those records."""
        keys = set(self.new_events) | sales_keys
        if self.dry_run:
            return keys
        self.commit_engagement()
        self.commit_held_events()
        self.new_events, self.held_new, self.held_done = {}, {}, set()
        self.add_to_do(keys)
        for name in [n for n in self.cursors if not n.endswith(":people")]:
            value = self.cursors.pop(name)
            if name.split(":", 1)[0] not in self.budget_stopped:
                self.state.set_cursor(name, value)
        sales_seen = {fp: seen for fp, seen in self.sales_seen.items()
                      if fp.split(":", 1)[0] not in self.budget_stopped}
        if sales_seen:
            self.state.set_fingerprints("sales", sales_seen)
        self.sales_seen = {}
        return keys

    # -- per-CRM budget stops -------------------------------------------------------------
    @contextmanager
    def crm_work(self, system: str) -> Iterator[None]:
        """A spent budget stops this CRM's work only: the other CRM's reads, writes and tasks
        go on, this CRM's cursors stay where they are (saved next time the window allows)."""
        try:
            yield
        except BudgetExhausted as exc:
            with self._budget_guard:
                self.budget_stopped.add(system)
                self.report.stopped_reason = "budget"
                self.report.budget_stopped = sorted(self.budget_stopped)
            log.warning("API budget spent: this CRM's work stopped, its cursors kept",
                        extra={"system": system, "detail": str(exc)})

    # -- read phases: one thread per CRM --------------------------------------------------
    def each_crm(self, work: Callable[[str, Connector], None],
                 systems: Iterable[str] | None = None) -> None:
        """Run `work(system, connector)` for every CRM (or those in `systems`) at the same
        time, one thread each, under that CRM's budget stop, and return once all are done. A
        failure in one stops the other's reads at its next page and is raised here (the first
        in connector order). `work` keeps what it finds apart per CRM (a `CrmReads`, a dict
        slot of its own); the caller merges it."""
        wanted = None if systems is None else set(systems)
        chosen = [s for s in self.rt.connectors if wanted is None or s in wanted]

        def one(system: str) -> None:
            try:
                with self.crm_work(system):
                    work(system, self.rt.connectors[system])
            except _SiblingFailed:
                return
            except BaseException:
                self._read_failed.set()
                raise

        if len(chosen) <= 1:
            for system in chosen:
                one(system)
            return
        pool = ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="leadsync-crm")
        try:
            futures = [pool.submit(one, system) for system in chosen]
            wait(futures)
        except BaseException:  # this thread was interrupted (the task's soft time limit)
            self._read_failed.set()  # the CRM threads stop at their next page, not at the end
            raise
        finally:
            pool.shutdown(wait=True)
        for future in futures:
            future.result()

    def read_each_crm(self, read: Callable[[str, Connector, CrmReads], None],
                      systems: Iterable[str] | None = None) -> dict[str, CrmReads]:
        """`each_crm` for reads: what each CRM found (also when its budget stopped it midway),
        in connector order."""
        wanted = None if systems is None else set(systems)
        found = {s: CrmReads() for s in self.rt.connectors if wanted is None or s in wanted}
        self.each_crm(lambda system, conn: read(system, conn, found[system]), found)
        return found

    def page(self) -> None:
        """Between pages of a CRM thread's reads: stop if the lease is gone or the other CRM's
        thread failed."""
        self.lease.check()
        if self._read_failed.is_set():
            raise _SiblingFailed

    def pull(self, *, full: bool, paged: Sequence[str] = (),
             starts: dict[str, dict[str, object]] | None = None) -> set[str]:
        """The first read phase: each CRM, in its own thread, reads its changed people (all of
        them in a full run; not a paged CRM's, read page by page later) into the staging
        area, its engagement and its sales changes in turn. Returns the record keys whose
        sales outcome changed."""

        def read(system: str, conn: Connector, found: CrmReads) -> None:
            if system not in paged:
                self.pull_people(system, conn, found, full=full,
                                 start=(starts or {}).get(system))
            else:  # its pages map owner ids: the owners are read first, as a whole read does
                conn.list_owners()
            self.pull_engagement(system, conn, found)
            self.pull_sales(system, conn, found, full=full)

        sales: dict[str, tuple[str, str]] = {}
        for system, found in self.read_each_crm(read).items():
            self.cursors.update(found.cursors)
            for key, events in found.events.items():
                self.new_events.setdefault(key, {}).update(events)
            self.held_new.update(found.held)
            if system not in self.budget_stopped:
                sales.update(found.sales)
        self.drop_known_events()
        return self.sales_news(sales)

    def pull_people(self, system: str, conn: Connector, found: CrmReads, *, full: bool,
                    start: dict[str, object] | None = None) -> None:
        """The people of a CRM read whole, staged a page at a time (their cursor moves after
        the run). A full read by a `ResumablePeople` connector saves its resume point after
        each staged page (`resume` fingerprint `<system>:people`: the connector's point, the
        first attempt's start, the newest stamp read) and, once read, `done`; a restart
        continues after it, or reads none when the killed run had read them all."""
        name = f"{system}:people"
        since = None if full else self.state.get_cursor(name)
        start = start or {}
        started = parse_utc(str(start["started"])) if start.get("started") else self.now
        newest = parse_utc(str(start["newest"])) if start.get("newest") else since
        resumable = isinstance(conn, ResumablePeople) and since is None and not self.dry_run

        def save(after: object, done: bool = False) -> None:
            point = {"after": after, "started": format_utc(started),
                     "newest": format_utc(newest) if newest else None, "done": done}
            self.state.set_fingerprints("resume", {name: json.dumps(point,
                                                                    separators=(",", ":"))})

        if not start.get("done"):
            self.say(f"reading {system} people")
            for recs, after in self.people_of(conn, since, start.get("after"), self.staging):
                self.page()
                stage_page(self.staging, recs)
                self.report.records_read[system] += len(recs)  # one key per thread
                for rec in recs:
                    if newest is None or rec.modified_at > newest:
                        newest = rec.modified_at
                if resumable and after is not None:
                    save(after)
                self.say(f"reading {system} people: {self.report.records_read[system]:,}")
            if resumable:
                save(None, done=True)
        if newest is not None:
            found.cursors[name] = min(newest, started) - CURSOR_OVERLAP

    @staticmethod
    def people_of(conn: Connector, since: datetime | None, after: object,
                  scratch: StateStore | None = None
                  ) -> Iterator[tuple[list[CrmPerson], str | None]]:
        """A CRM's changed people in pages with their resume points (None: it has none)."""
        if isinstance(conn, ResumablePeople):
            yield from conn.iter_people_resumable(since, str(after) if after else None,
                                                  scratch)
            return
        batch: list[CrmPerson] = []
        for rec in conn.iter_changed_people(since):
            batch.append(rec)
            if len(batch) == PROGRESS_EVERY:  # a staged write (and a progress line) each
                yield batch, None
                batch = []
        if batch:
            yield batch, None

    def pull_engagement(self, system: str, conn: Connector, found: CrmReads) -> None:
        """Each engagement stream from its own cursor (HubSpot: v3 events, email events and
        form submissions arrive with different delays), re-reading the overlap. With no cursor,
        from the rules' horizon (DESIGN.md §3a); without one, all the engagement the CRM has."""
        self.page()
        oldest = self.rt.model.events_since(self.now)
        legacy = f"{system}:engagement"  # the one cursor of earlier versions
        self.say(f"reading {system} engagement")
        if isinstance(conn, StreamedEngagement):
            for stream in conn.engagement_streams:
                name = f"{legacy}:{stream}"
                since = (self.state.get_cursor(name) or self.state.get_cursor(legacy)
                         or oldest)
                self.read_stream(system, name, since,
                                 conn.iter_engagement_stream(stream, since), found)
        else:
            since = self.state.get_cursor(legacy) or oldest
            self.read_stream(system, legacy, since, conn.iter_engagement(since), found)

    def pull_sales(self, system: str, conn: Connector, found: CrmReads, *, full: bool) -> None:
        """Records whose sales outcome changed although the record did not (an opportunity
        closed or was edited, a contact role added), from the CRM's "<system>:sales" cursor.
        A full run, or a cycle with no cursor at all, reads everyone anyway: the cursor
        starts there. Which changes are news is decided by `sales_news`."""
        self.page()
        name = f"{system}:sales"
        since = None if full else (self.state.get_cursor(name)
                                   or self.state.get_cursor(f"{system}:people"))
        if since is None:
            found.cursors[name] = self.now - CURSOR_OVERLAP
            return
        self.say(f"reading {system} sales changes")
        newest = since
        for change in conn.iter_sales_changes(since):
            found.sales[f"{system}:{change.id}"] = (change.person.key,
                                                    change.seen_at.isoformat())
            newest = max(newest, change.seen_at)
        if newest > since:
            found.cursors[name] = max(since, min(newest, self.now) - CURSOR_OVERLAP)

    def sales_news(self, found: dict[str, tuple[str, str]]) -> set[str]:
        """Record keys of sales changes not handled before: a change already handled at the
        same stamp (the overlap re-read) is not news."""
        keys: set[str] = set()
        known = self.state.get_fingerprints("sales", list(found)) if found else {}
        for fp, (key, seen) in found.items():
            if known.get(fp) != seen:
                keys.add(key)
                self.sales_seen[fp] = seen
        return keys

    def read_stream(self, system: str, name: str, since: datetime,
                    items: Iterable[EngagementEvent | UnresolvedEvent], found: CrmReads
                    ) -> None:
        newest = since
        holding = 0
        for count, item in enumerate(items, 1):
            if isinstance(item, UnresolvedEvent):
                found.held[item.id] = encode_held(item, self.now)
            else:
                found.events.setdefault(item.person.key, {})[item.id] = item.event
                holding += 1
                if holding >= EVENTS_FLUSH and not self.dry_run:
                    self.save_events(found)
                    holding = 0
            newest = max(newest, item.seen_at)
            if count % (PROGRESS_EVERY * 4) == 0:
                self.page()
                self.say(f"reading {system} engagement: {count:,} events")
        # late-arriving events: re-read the overlap too; `drop_known_events` dedupes it
        found.cursors[name] = min(newest, self.now) - CURSOR_OVERLAP

    def resolve_held_events(self, records: dict[str, CrmPerson]) -> None:
        """Events whose email had no record when read: attach them once a record has that
        email (a record read now, or one the identity index knows); drop them past the age
        limit. Emails are matched by hash; the store never holds them in clear."""
        stored = self.state.get_held_events()
        # an event held before keeps its first held time (the overlap re-reads it)
        self.held_new = {eid: p for eid, p in self.held_new.items() if eid not in stored}
        held = {**stored, **self.held_new}
        if not held:
            return
        by_hash: dict[str, list[str]] = {}
        for key, rec in records.items():
            email = normalise_email(rec.profile.email)
            if email:
                by_hash.setdefault(email_hash(email), []).append(key)
        parsed = {eid: decode_held(payload) for eid, payload in held.items()}
        missing = sorted({h for h, *_ in parsed.values() if h not in by_hash})
        for h, blob in self.state.get_fingerprints("email", missing).items():
            by_hash[h] = blob.split()
        oldest = self.now - HELD_EVENTS_MAX_AGE
        resolved = expired = 0
        for eid, (h, event, held_at) in parsed.items():
            keys = sorted(by_hash.get(h, ()), key=lambda k: (not k.startswith("hubspot:"), k))
            if keys:
                self.new_events.setdefault(keys[0], {})[eid] = event
                resolved += 1
            elif held_at >= oldest:
                continue
            else:
                expired += 1
            self.held_done.add(eid)
            self.held_new.pop(eid, None)
        if resolved or expired or self.held_new:
            log.info("engagement of emails without a record", extra={
                "resolved": resolved, "expired": expired, "held_new": len(self.held_new)})

    def drop_known_events(self) -> None:
        """The cursor boundary is re-read (`>=`): events already stored are not news."""
        self.new_events = self.fresh_events(self.new_events)

    def fresh_events(self, events: dict[str, dict[str, Event]]) -> dict[str, dict[str, Event]]:
        """The events not stored yet (by signature), by record key."""
        if not events:
            return events
        out: dict[str, dict[str, Event]] = {}
        keys = list(events)
        # the stored events of FRESH_BATCH records at a time: a batch of new events spans
        # thousands of people, each with every event stored so far (issue 9: the pull's peak)
        for start in range(0, len(keys), FRESH_BATCH):
            for key, known in self.state.get_events(keys[start:start + FRESH_BATCH]).items():
                sigs = {event_signature(ev) for ev in known}
                fresh = {i: ev for i, ev in events[key].items()
                         if event_signature(ev) not in sigs}
                if fresh:
                    out[key] = fresh
        return out

    def save_events(self, found: CrmReads) -> None:
        """In a CRM thread's engagement read: save the events read so far that are news and
        forget them, so the pull holds at most EVENTS_FLUSH events a CRM. Their records go on
        the CRM's durable to-do list at once (evaluated this run, or the next one if this one
        is killed: the overlap re-read finds their events known); the stream's cursor still
        moves only in `settle_activity`, after the whole read."""
        fresh = self.fresh_events(found.events)
        if fresh:
            self.state.add_events_many(fresh)
            self.add_to_do(fresh)
        found.events = {}

    def add_to_do(self, record_keys: Iterable[str]) -> None:
        """Put records on their CRM's durable to-do list (its pending set; keys of a CRM not
        connected are left out)."""
        keys = sorted(record_keys)
        for system in self.rt.connectors:
            prefix = system + ":"
            self.state.add_pending(system, [k for k in keys if k.startswith(prefix)])

    def drop_unchanged(self, records: dict[str, CrmPerson]
                       ) -> tuple[dict[str, CrmPerson], dict[str, CrmPerson]]:
        """Split off records whose inputs are what we last evaluated: typically the echo of
        our own writes, which bumps the CRM's modification time. They cost nothing more unless
        a changed record of the same person needs them."""
        if not records:
            return records, {}
        seen = self.state.get_fingerprints("input", list(records))
        force = self.forced_in.pending_among(FORCED, sorted(records))
        force |= self.own.unsettled(records)  # hand edits of our fields: drift
        kept: dict[str, CrmPerson] = {}
        spare: dict[str, CrmPerson] = {}
        for key, rec in records.items():
            if key in force or seen.get(key) != memory.input_fingerprint(rec):
                kept[key] = rec
            else:
                spare[key] = rec
        self.report.skipped_unchanged += len(spare)
        return kept, spare

    def related_keys(self, records: dict[str, CrmPerson]) -> set[str]:
        """Other records of the same people: linked ids, same email, grouped last time, or
        staged under the same email or a link to one of them."""
        keys: set[str] = (self.staging.staged_keys(lookup_tokens(records.values()))
                          if self.staged_systems else set())
        hashes = {}
        for key, rec in records.items():
            keys.update(link.key for link in rec.links)
            email = normalise_email(rec.profile.email)
            if email:
                hashes[email_hash(email)] = key
        for blob in self.state.get_fingerprints("email", list(hashes)).values():
            keys.update(blob.split())
        for blob in self.state.get_fingerprints("group", list(records)).values():
            keys.update(blob.split())
        return keys

    def read_missing(self, keys: set[str], have: dict[str, CrmPerson],
                     spare: dict[str, CrmPerson]) -> dict[str, CrmPerson]:
        """Records among `keys` not in `have`: from `spare` when already read, else batch-read
        (both CRMs at once)."""
        out: dict[str, CrmPerson] = {}
        by_system: dict[str, list[RecordRef]] = {}
        for key in keys - set(have):
            if key in spare:
                out[key] = spare[key]
                continue
            try:
                ref = RecordRef.parse(key)
            except ValueError:
                continue
            if ref.system in self.rt.connectors:
                by_system.setdefault(ref.system, []).append(ref)
        for system in [s for s in by_system if s in self.budget_stopped]:
            self.unread.update(r.key for r in by_system.pop(system))

        def read(system: str, conn: Connector, found: CrmReads) -> None:
            for rec in conn.read_people(sorted(by_system[system])):
                found.records[rec.ref.key] = rec
                self.report.records_read[system] += 1  # one key per thread

        for system, found in self.read_each_crm(read, by_system).items():
            out.update(found.records)
            if system in self.budget_stopped:
                self.unread.update(r.key for r in by_system[system] if r.key not in out)
        return out

    def defer_incomplete(self, people: list[Person]) -> list[Person]:
        """A person with a record a stopped CRM could not read is not evaluated now (its
        other records would be written from half the facts): retried next cycle."""
        if not self.unread:
            return people
        keys = [r.ref.key for p in people for r in p.records]
        groups = self.state.get_fingerprints("group", keys) if keys else {}
        kept: list[Person] = []
        for person in people:
            related = {link.key for r in person.records for link in r.links}
            for rec in person.records:
                related.update(groups.get(rec.ref.key, "").split())
            if related & self.unread:
                for rec in person.records:
                    if rec.ref.system not in self.budget_stopped:
                        self.failed_keys.add(rec.ref.key)
                self.report.deferred += 1
                continue
            kept.append(person)
        return kept

    def resolve(self, records: Iterable[CrmPerson]) -> list[Person]:
        """Group the records into people, each under its durable key with its stored record
        (`leadsync.person`): the previous stage is leadsync's own last decision, or on a cold
        start the CRMs' written fields by their dated facts."""
        groups = group_records(records)
        resolved = persons.resolve(self.state, groups)
        # engagement stored under any record the person has had (a converted Lead's, too)
        keys = sorted({k for found in resolved for k in found.aliases})
        stored = self.state.get_events(keys) if keys else {}
        self.own.load(keys)
        people = []
        for found, group in zip(resolved, groups, strict=True):
            self.records[found.key] = found.record
            events: list[Event] = []
            for key in found.aliases:
                events.extend(stored.get(key, ()))
                events.extend(self.new_events.get(key, {}).values())
            trusted = self.own.trusted(group)  # hand edits of our fields are no facts
            profile = merge_profile(found.key, trusted, events, {})
            life = persons.previous_decision(found.record, trusted)
            profile = persons.with_previous(profile, life, found.legacy)
            profile = self.own.adopt(profile, group, self.now, self.report)
            if life.source == "crm-newer":
                log.info("a CRM's stage is newer than our record: taken",
                         extra={"person": found.key, "record": group[0].ref.key})
            people.append(Person(id=found.key, records=tuple(group), profile=profile,
                                 aliases=found.aliases))
        return people

    def evaluate(self, candidates: Sequence[Person]) -> tuple[list[Person], list[Evaluation]]:
        """Evaluate everyone; a person the core cannot evaluate is reported and skipped, the
        rest of the cycle goes on (RELIABILITY.md §9)."""
        model, now, report = self.rt.model, self.now, self.report
        self.say(f"evaluating {len(candidates):,} people")
        # members inherit from their account's stored state (docs/accounts.md, inherit)
        candidates = with_account_facts(self.state, model, candidates)
        people: list[Person] = []
        evaluations: list[Evaluation] = []
        for person in candidates:
            try:
                evaluations.append(evaluate(person.profile, model, now))
            except Exception as exc:  # hostile data must not stop the cycle
                log.error("person could not be evaluated: skipped",
                          extra={"person": person.id, "error": type(exc).__name__})
                for rec in person.records:
                    report.add_failure(rec.ref.key, f"evaluation failed: {type(exc).__name__}")
                continue
            people.append(person)
        report.people += len(people)
        for person, ev in zip(people, evaluations, strict=True):
            report.stages[ev.stage] += 1
            report.sla[ev.sla_status] += 1
            if report.keep_people:
                report.outcomes[person.id] = (ev.stage, ev.sla_status, ev.score)
                report.primary[person.id] = person.records[0].ref.key
            if self.open_unseen is not None:
                self.open_unseen.discard(person.id)
            if ev.stage_changed:
                report.transitions[f"{person.profile.stage or 'new'}->{ev.stage}"] += 1
        ranked = sorted(zip(people, evaluations, strict=True), key=lambda pe: -pe[1].score)
        top = [{"person": p.records[0].ref.key, "key": p.id, "score": e.score,
                "grade": e.grade, "stage": e.stage,
                "reasons": render_reasons(e.reasons, 120)} for p, e in ranked[:TOP_N]]
        # earlier pages' top first: equal scores keep the order they were read in
        report.top = sorted([*report.top, *top], key=lambda row: -float(row["score"]))[:TOP_N]
        return people, evaluations

    def route(self, people: list[Person], evaluations: Sequence[Evaluation]) -> list[Person]:
        """The routing step (`owner_routing`, docs/routing.md): people entering MQL or SQL
        whom no rep works get an owner; returned with it on their records, so their task goes
        to them, and `write` sends it (`routed_values`). Off without a `routing:` section."""
        if not self.rt.model.routing.enabled:
            return people
        live = {s: c for s, c in self.rt.connectors.items() if s not in self.budget_stopped}
        step = Router(self.rt.model, self.state, live, report=self.report, now=self.now,
                      fallback_owner=self.rt.settings.sla.fallback_owner,
                      dry_run=self.dry_run).route(people, evaluations)
        self.routed_values = step.values
        return step.people

    def checkpoint(self) -> None:
        """A phase boundary: stop if the heartbeat saw the lease go (no I/O)."""
        self.lease.check()

    def write(self, people: Sequence[Person], evaluations: Sequence[Evaluation]) -> None:
        newer = self.state.get_fingerprints("evaluated_at", [p.id for p in people])
        now_iso = self.now.isoformat()
        by_system: dict[str, list[FieldUpdate]] = {}
        for person, ev in zip(people, evaluations, strict=True):
            if newer.get(person.id, "") > now_iso:
                self.report.stale_skipped += 1
                self.stale_ids.add(person.id)
                continue
            values = written_values(ev)
            for rec in person.records:
                self.own.note(rec, values)
                routed = self.routed_values.get(rec.ref.key, {})
                by_system.setdefault(rec.ref.system, []).append(
                    FieldUpdate(ref=rec.ref, values={**values, **routed}, previous=rec.current))
        for system in [s for s in by_system if s in self.budget_stopped]:
            self.failed_keys.update(u.ref.key for u in by_system.pop(system))
        results: dict[str, WriteResult] = {}

        def write_one(system: str, conn: Connector) -> None:  # both CRMs at once
            updates = by_system[system]
            verb = "comparing" if self.dry_run else "writing"
            self.say(f"{verb} {len(updates):,} {system} records")
            if not self.dry_run:
                self.lease.confirm()
            try:
                results[system] = conn.write_updates(updates, dry_run=self.dry_run)
            except BudgetExhausted as exc:  # what the CRM took before the stop is reported
                results[system] = writes_done(exc)
                raise

        try:
            self.each_crm(write_one, by_system)
        finally:  # a CRM thread failed (the lease was lost): what the other wrote is reported
            self.settle_writes(by_system, results)

    def settle_writes(self, by_system: dict[str, list[FieldUpdate]],
                      results: dict[str, WriteResult]) -> None:
        """Count what each CRM took; what it did not take is retried next cycle."""
        for system, updates in by_system.items():
            result = results.get(system, WriteResult())
            settled = {ref.key for ref in (*result.written, *result.unchanged)}
            # not taken (a budget stop before or during the write): retried when it allows
            self.failed_keys.update(u.ref.key for u in updates if u.ref.key not in settled)
            self.own.count_written(system, result.written, self.report)
            if result.written:
                self.report.records_written[system] += len(result.written)
            if result.unchanged:
                self.report.records_unchanged[system] += len(result.unchanged)
            for err in result.failed:
                self.failed_keys.add(err.ref.key)
                self.report.add_failure(err.ref.key, err.reason)
                log.warning("record write failed", extra={"record": err.ref.key,
                                                          "retryable": err.retryable})

    def follow_ups(self, people: Sequence[Person], evaluations: Sequence[Evaluation]) -> None:
        """Owed tasks: searched for in every record of the person in both CRMs, then created
        on the task target, one CRM at a time (budgets are per CRM). What is not created stays
        owed in the person record (`self.tasks`) and the next cycle retries it."""
        owed = [OwedTask(p, e, e.follow_up, self.records.get(p.id))
                for p, e in zip(people, evaluations, strict=True) if e.follow_up is not None]
        if not owed:
            return
        self.say(f"follow-up tasks owed: {len(owed):,}")
        plan = TaskPlan(owed, self.state, self.report, dry_run=self.dry_run)
        calendar = self.rt.model.sla.calendar  # business hours: their zone is the SLA's
        zone = calendar.zone if calendar is not None else self.rt.settings.zone
        live = {s: c for s, c in self.rt.connectors.items() if s not in self.budget_stopped}
        for system, conn in live.items():
            with self.crm_work(system):
                plan.check(system, conn)
        for system, conn in self.rt.connectors.items():
            if system not in self.budget_stopped:
                if not self.dry_run:
                    self.lease.confirm()
                with self.crm_work(system):
                    plan.create(system, conn, self.rt.settings.sla, tz=zone,
                                calendar=calendar, stopped=self.budget_stopped)
            if system in self.budget_stopped:  # before or during the creates: owed next cycle
                targets = (o.person.task_target().ref for o in owed)
                self.failed_keys.update(ref.key for ref in targets if ref.system == system)
        self.tasks = plan.outcome()

    def accounts(self, job: str, people: Sequence[Person], evaluations: Sequence[Evaluation],
                 *, last: bool) -> None:
        """The account phase (`leadsync.accounts.phase`, docs/accounts.md) of the incremental
        and full jobs: each page notes its people's accounts; the last page re-evaluates the
        accounts the run's people touched (all accounts in the full run), writes the changed
        account fields and hands each MQA to its owner once per episode."""
        if self.rt.model.accounts is None or job not in ("incremental", "full"):
            return
        if self.account_phase is None:
            self.account_phase = AccountPhase(
                connectors=self.rt.connectors, state=self.state, model=self.rt.model,
                report=self.report, now=self.now, dry_run=self.dry_run, crm_work=self.crm_work,
                confirm=self.lease.confirm, stopped=self.budget_stopped,
                retry=self.failed_keys.update,
                run_started=min([s.started for s in self.streams], default=self.now),
                full=job == "full")
        self.account_phase.note(people, evaluations)
        if last:
            self.say("evaluating accounts")
            self.account_phase.retry = self.failed_keys.update  # this page's (commit resets it)
            self.account_phase.finish(full=job == "full")

    def drop_stale(self, people: Sequence[Person], evaluations: Sequence[Evaluation]
                   ) -> tuple[list[Person], list[Evaluation]]:
        """People whose write was skipped as stale (a newer evaluation already wrote them) get
        no task and no commit from this run: their memory is the newer run's."""
        kept = [(p, e) for p, e in zip(people, evaluations, strict=True)
                if p.id not in self.stale_ids]
        return [p for p, _ in kept], [e for _, e in kept]

    # -- commit ---------------------------------------------------------------------------
    def commit_engagement(self) -> None:
        self.state.add_events_many(self.new_events)

    def commit_held_events(self) -> None:
        """Keep events whose email has no record yet (bounded: the newest HELD_EVENTS_MAX);
        forget those attached to a record now or past the age limit."""
        if self.held_done:
            self.state.drop_held_events(sorted(self.held_done))
        if not self.held_new:
            return
        self.state.hold_events(self.held_new)
        held = self.state.get_held_events()
        if len(held) > HELD_EVENTS_MAX:
            by_age = sorted(held, key=lambda eid: decode_held(held[eid])[2])
            dropped = by_age[:len(held) - HELD_EVENTS_MAX]
            self.state.drop_held_events(dropped)
            log.warning("held engagement over its bound: oldest dropped",
                        extra={"dropped": len(dropped), "bound": HELD_EVENTS_MAX})

    def commit(self, people: Sequence[Person], evaluations: Sequence[Evaluation], *,
               last: bool = True) -> None:
        """Save what this page of people learned; after the last page, move the cursors:
        only after the writes. Then forget the page."""
        if not self.dry_run:
            self.commit_page(people, evaluations)
            if self.staged_systems:  # settled: a restart does not take them again
                self.staging.unstage(self.page_keys)
            if last:
                self.commit_run()
        self.records, self.tasks, self.stale_ids, self.failed_keys = {}, TaskOutcome(), set(), set()
        logged, self.own = self.own.logged, OwnFields(self.state)
        self.own.logged = logged
        if not self.dry_run:  # a dry run keeps its engagement: nothing was saved
            self.new_events, self.held_new, self.held_done = {}, {}, set()

    def commit_page(self, people: Sequence[Person], evaluations: Sequence[Evaluation]) -> None:
        self.commit_engagement()
        self.commit_held_events()
        processed = memory.save_indexes(self.state, people, self.failed_keys)
        self.own.save(self.failed_keys)
        memory.save_people(self.state, people, evaluations, self.records, self.tasks,
                           sla=self.rt.model.sla, now=self.now)
        for system in self.rt.connectors:
            prefix = system + ":"
            self.state.remove_pending(system, [k for k in processed if k.startswith(prefix)])
        self.add_to_do(self.failed_keys)

    def commit_run(self) -> None:
        """Every page is settled: the cursors move, a finished paged read leaves no resume
        point, old engagement is pruned."""
        done = {s.name: "" for s in self.done_streams if s.system not in self.budget_stopped}
        # every staged record is settled: a staged read starts afresh next time (a spent
        # budget kept its cursor, from which it reads again)
        if self.staged_systems:  # not the sla or chunk jobs: a killed full run's stays
            done.update({f"{system}:people": "" for system in self.staged_systems})
            self.staging.clear_staged()
        if done:
            self.state.set_fingerprints("resume", done)
        for name, value in self.cursors.items():
            if name.split(":", 1)[0] not in self.budget_stopped:
                self.state.set_cursor(name, value)
        sales_seen = {fp: seen for fp, seen in self.sales_seen.items()
                      if fp.split(":", 1)[0] not in self.budget_stopped}
        if sales_seen:
            self.state.set_fingerprints("sales", sales_seen)
        self.state.prune_events(self.rt.model.events_since(self.now))  # older ones never count


# -- held events: compact JSON {"h": email hash, "e": encoded event, "at": held since} -----------
def encode_held(item: UnresolvedEvent, now: datetime) -> str:
    return json.dumps({"h": item.email_hash, "e": encode_event(item.event),
                       "at": format_utc(now)}, separators=(",", ":"))


def decode_held(payload: str) -> tuple[str, Event, datetime]:
    doc = json.loads(payload)
    return str(doc["h"]), decode_event(str(doc["e"])), parse_utc(str(doc["at"]))
