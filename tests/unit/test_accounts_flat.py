"""The account phase's memory is flat in the number of accounts (issue 9): `score` works a
chunk of accounts at a time end to end (evaluate, queue the writes, forget), reads a chunk's
CRM records back from the store, keeps the best five rows only, and sends the account writes in
the connectors' batches: whatever the chunk size, the same records get the same values in the
same number of write calls, the same MQA tasks are created and the report is the same."""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

import pytest

from leadsync.accounts import phase as phase_module
from leadsync.connectors.base import CrmAccount, FieldUpdate, WriteResult
from leadsync.pipeline import run_job
from leadsync.report import CycleReport
from leadsync.scoring.accounts import AccountEvaluation
from leadsync.state import InMemoryStateStore
from tests.fakes import FakeConnector
from tests.unit.test_accounts_phase import engage
from tests.unit.test_pipeline import Clock, make_runtime

TITLES = ("営業部長", "主任", "担当", "担当")
BATCH = {"salesforce": 4, "hubspot": 3}  # small batches: several per run, one left over
SF_ACCOUNTS, HS_COMPANIES = 23, 17  # 11 more companies share a Salesforce Account's domain
# the phase's own, wrapped anew by each run (not a previous run's wrapper)
EVALUATE = phase_module.evaluate_account
CHUNK_ACCOUNTS = phase_module.AccountPhase.chunk_accounts
FINISH = phase_module.AccountPhase.finish


class Run:
    """One full run over the same seeded CRMs with a given chunk size."""

    def __init__(self, chunk: int, monkeypatch: pytest.MonkeyPatch, *,
                 dry_run: bool = False, store_batch: int = 2_000) -> None:
        monkeypatch.setattr(phase_module, "CHUNK_ACCOUNTS", chunk)
        monkeypatch.setattr(phase_module, "STORE_BATCH", store_batch)
        monkeypatch.setattr(phase_module, "WRITE_BATCH", BATCH)
        self.evaluated: list[AccountEvaluation] = []
        self.chunks: list[int] = []  # CRM records read back per chunk
        self.phases: list[phase_module.AccountPhase] = []
        real_evaluate, real_chunk, real_finish = EVALUATE, CHUNK_ACCOUNTS, FINISH

        def evaluate(*args: Any, **kw: Any) -> AccountEvaluation:
            ev = real_evaluate(*args, **kw)
            self.evaluated.append(ev)
            return ev

        def chunk_accounts(phase: phase_module.AccountPhase, chunk: Sequence[str]
                           ) -> dict[str, list[CrmAccount]]:
            found = real_chunk(phase, chunk)
            self.chunks.append(sum(len(v) for v in found.values()))
            return found

        def finish(phase: phase_module.AccountPhase, *, full: bool) -> None:
            self.phases.append(phase)
            real_finish(phase, full=full)

        monkeypatch.setattr(phase_module, "evaluate_account", evaluate)
        monkeypatch.setattr(phase_module.AccountPhase, "chunk_accounts", chunk_accounts)
        monkeypatch.setattr(phase_module.AccountPhase, "finish", finish)
        clock = Clock()
        self.hs, self.sf = FakeConnector("hubspot", clock), FakeConnector("salesforce", clock)
        self.sends: dict[str, list[int]] = {"hubspot": [], "salesforce": []}
        for conn in (self.hs, self.sf):
            self._count_sends(conn)
        for n in range(SF_ACCOUNTS):
            domain = f"d{n:02}.co.jp"
            self.sf.add_account(f"001{n:02}", f"会社{n:02}株式会社", f"https://www.{domain}/",
                                owner_id=f"owner-{n % 3}")
            if n < 11:  # the same company in HubSpot
                self.hs.add_account(f"9{n:02}", f"会社{n:02}", domain)
            for i, title in enumerate(TITLES[: 1 + n % 4], start=1):
                ref = self.sf.add("Contact", f"003{n:02}{i}", email=f"p{i}@{domain}",
                                  title=title, last_name=f"山田{n:02}{i}")
                self.sf.link(ref, f"001{n:02}")
                if i <= n % 4:  # 0 to 3 engaged people: ties and a few MQAs
                    engage(self.sf, ref, clock)
        for n in range(11, HS_COMPANIES + 11):
            domain = f"h{n:02}.example.jp"
            self.hs.add_account(f"9{n:02}", f"HubSpot社{n:02}", domain)
            ref = self.hs.add("contact", f"7{n:02}", email=f"q@{domain}", title="部長",
                              last_name=f"佐藤{n:02}")
            self.hs.link(ref, f"9{n:02}", primary=f"9{n:02}")
        self.state = InMemoryStateStore()
        self.clock, self.dry_run = clock, dry_run
        self.report = self.again()

    def again(self) -> CycleReport:
        """One more full run (with the account cursor the last one left: a cursor read)."""
        return run_job(make_runtime((self.hs, self.sf), self.clock, self.state), "full",
                       dry_run=self.dry_run)

    def _count_sends(self, conn: FakeConnector) -> None:
        real = conn.write_account_updates

        def write(updates: Sequence[FieldUpdate], *, dry_run: bool = False) -> WriteResult:
            if not dry_run:
                self.sends[conn.system].append(len(updates))
            return real(updates, dry_run=dry_run)

        conn.write_account_updates = write  # type: ignore[method-assign]

    def calls(self) -> dict[str, int]:
        """The write calls a connector batching `BATCH` records a call makes."""
        return {s: sum(math.ceil(n / BATCH[s]) for n in sizes) for s, sizes in self.sends.items()}

    def written(self) -> dict[str, dict[str, object]]:
        return {acc.ref.key: dict(acc.current) for conn in (self.hs, self.sf)
                for acc in conn.accounts.values()}

    def tasks(self) -> list[tuple[str, str, str, str | None]]:
        return sorted((t.key, t.person.key, t.subject, t.owner_id)
                      for conn in (self.hs, self.sf) for t in conn.tasks)


def test_chunks_write_the_same_records_in_the_same_number_of_calls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    one = Run(500, monkeypatch)
    many = Run(3, monkeypatch)
    assert len(one.chunks) == 1 and len(many.chunks) == math.ceil(len(many.evaluated) / 3)
    assert many.written() == one.written()
    written = dict(one.report.account_records_written)
    assert written == {"salesforce": SF_ACCOUNTS, "hubspot": 11 + HS_COMPANIES}
    assert dict(many.report.account_records_written) == written
    # whole batches while the chunks are scored, the rest at the end: the calls of one write
    # of every changed record per CRM
    assert many.calls() == one.calls() == {s: math.ceil(n / BATCH[s])
                                           for s, n in written.items()}
    for system, sizes in many.sends.items():
        assert sum(sizes) == written[system] and len(sizes) > 1
        assert all(n % BATCH[system] == 0 for n in sizes[:-1])
    assert many.tasks() == one.tasks() and len(one.tasks()) >= 2
    # every other call (reads, links, the task-key look-up, task creates) is the same: the
    # fakes count one call a write, whatever its size
    for system, conn_many, conn_one in (("hubspot", many.hs, one.hs),
                                        ("salesforce", many.sf, one.sf)):
        assert conn_many.calls - len(many.sends[system]) \
            == conn_one.calls - len(one.sends[system]) > 0, system
    for name in ("accounts_evaluated", "accounts_mqa", "mqa_tasks_created", "tasks_created",
                 "mqa_tasks_existing", "top_accounts", "failures"):
        assert getattr(many.report, name) == getattr(one.report, name), name


def test_the_top_accounts_are_the_best_five_of_every_evaluation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(2, monkeypatch)
    brute = sorted(run.evaluated, key=lambda e: (-e.score, e.key))[:phase_module.TOP_ACCOUNTS]
    rows = run.report.top_accounts
    assert [(r["account"], r["score"], r["mqa"], r["engaged"], r["members"]) for r in rows] == [
        (e.key, e.score, e.mqa, len(e.engaged), e.members) for e in brute]
    assert len({e.score for e in run.evaluated}) > 1  # ties and differences both
    assert all(r["name"] and r["domain"] for r in rows)
    assert rows == Run(500, monkeypatch).report.top_accounts


def test_the_phase_holds_one_chunk_of_crm_records_at_most(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No CRM account is kept by the phase once it finished (was: every account's records for
    the whole run); each chunk reads back only its own accounts' records."""
    run = Run(4, monkeypatch)
    assert len(run.phases) == 1 and len(run.chunks) > 2
    assert sum(run.chunks) == SF_ACCOUNTS + HS_COMPANIES + 11  # every record read back once
    assert max(run.chunks) <= 4 * 2  # a chunk's accounts' records (two CRMs at most)
    skip = {"connectors", "state", "model", "report", "crm_work", "confirm", "retry"}
    held = [v for k, v in vars(run.phases[0]).items() if k not in skip]
    assert _crm_accounts(held) == 0
    assert not run.phases[0]._outbox or not any(run.phases[0]._outbox.values())


def test_a_dry_run_keeps_its_accounts_in_the_process_and_counts_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run stores nothing (docs/resume.md): its CRM records stay in the process; it
    counts the records a real run would write and makes no write call."""
    run = Run(3, monkeypatch, dry_run=True)
    real = Run(500, monkeypatch)
    assert run.sends == {"hubspot": [], "salesforce": []}
    assert dict(run.report.account_records_written) == dict(real.report.account_records_written)
    assert run.report.accounts_evaluated == real.report.accounts_evaluated
    assert [r["account"] for r in run.report.top_accounts] == [
        r["account"] for r in real.report.top_accounts]


class _Watched(CrmAccount):
    """A CrmAccount a weak reference can watch (CrmAccount has slots)."""


class AccountReads:
    """What the account read (`read_accounts`) holds and stores, per CRM: each account a CRM
    yields is a fresh copy (the fakes yield the objects they keep), watched by a weak
    reference, so `held` is the most read accounts the process still held at any one yield;
    the store's account-entry writes and reads made by the read are counted by size."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.alive: list[weakref.ref[CrmAccount]] = []
        self.held = 0
        self.system: str | None = None  # the CRM whose accounts are being read
        self.stored: dict[str, list[int]] = {}  # entries per write of ACCOUNT_KIND
        self.read_back: dict[str, list[int]] = {}  # keys per read of ACCOUNT_KIND
        real_set = InMemoryStateStore.set_fingerprints
        real_get = InMemoryStateStore.get_fingerprints
        real_iter = FakeConnector.iter_accounts
        real_read = phase_module.AccountPhase.read_accounts

        def set_fingerprints(state: InMemoryStateStore, kind: str,
                             items: Mapping[str, str]) -> None:
            if kind == phase_module.ACCOUNT_KIND and self.system:
                self.stored.setdefault(self.system, []).append(len(items))
            real_set(state, kind, items)

        def get_fingerprints(state: InMemoryStateStore, kind: str,
                             keys: Sequence[str]) -> dict[str, str]:
            if kind == phase_module.ACCOUNT_KIND and self.system:
                self.read_back.setdefault(self.system, []).append(len(keys))
            return real_get(state, kind, keys)

        def iter_accounts(conn: FakeConnector, since: datetime | None = None
                          ) -> Iterator[CrmAccount]:
            for acc in real_iter(conn, since):
                self.alive = [r for r in self.alive if r() is not None]
                self.held = max(self.held, len(self.alive))
                copy = _Watched(*(getattr(acc, f.name) for f in fields(CrmAccount)))
                self.alive.append(weakref.ref(copy))
                yield copy

        def read_accounts(phase: phase_module.AccountPhase, system: str,
                          conn: FakeConnector, add: Any) -> Any:
            self.system = system
            try:
                return real_read(phase, system, conn, add)
            finally:
                self.system = None

        monkeypatch.setattr(InMemoryStateStore, "set_fingerprints", set_fingerprints)
        monkeypatch.setattr(InMemoryStateStore, "get_fingerprints", get_fingerprints)
        monkeypatch.setattr(FakeConnector, "iter_accounts", iter_accounts)
        monkeypatch.setattr(phase_module.AccountPhase, "read_accounts", read_accounts)

    def clear(self) -> None:
        self.held, self.stored, self.read_back = 0, {}, {}


def test_the_account_read_streams_a_store_batch_at_a_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The account read holds no CRM account once it is stored (was: every account of a CRM
    at once, then their JSON in one dict): it stores `STORE_BATCH` entries at a time and
    reads the stored ones back as many at a time; what the runs evaluate and write is the
    same as with one batch."""
    one = Run(500, monkeypatch)
    reads = AccountReads(monkeypatch)
    small = Run(500, monkeypatch, store_batch=5)
    assert small.written() == one.written()
    assert small.evaluated == one.evaluated
    assert small.report.top_accounts == one.report.top_accounts
    # the cold read: every account read, stored 5 at a time (23 Accounts, 28 companies)
    assert reads.stored == {"salesforce": [5, 5, 5, 5, 3], "hubspot": [5, 5, 5, 5, 5, 3]}
    assert reads.read_back == {}
    assert reads.held == 1  # the account just stored, not yet released: never two
    # the next run reads by cursor: 2 Accounts changed, stored; the rest read back as the
    # listing is walked 5 at a time (the listing's batches less the changed ones)
    for run in (one, small):
        run.clock.advance(hours=1)
        run.sf.accounts_changed = {"00101", "00102"}  # (our writes are a cursor read's)
        run.hs.accounts_changed = set()
        run.sf.accounts["00101"] = replace(run.sf.accounts["00101"], name="改名株式会社")
    again_one = one.again()
    reads.clear()
    again_small = small.again()
    assert reads.stored == {"salesforce": [2]}
    assert reads.read_back == {"salesforce": [3, 5, 5, 5, 3], "hubspot": [5, 5, 5, 5, 5, 3]}
    assert reads.held == 1
    for name in ("accounts_evaluated", "account_records_written", "top_accounts", "failures"):
        assert getattr(again_small, name) == getattr(again_one, name), name
    assert again_small.accounts_evaluated == SF_ACCOUNTS + HS_COMPANIES
    assert small.written() == one.written()
    assert "改名" in small.state.get_fingerprints(
        phase_module.ACCOUNT_KIND, ["salesforce:Account:00101"])["salesforce:Account:00101"]
    assert small.state.get_fingerprints(phase_module.ACCOUNT_KIND, ["salesforce:Account:00101"]
                                        ) == one.state.get_fingerprints(
        phase_module.ACCOUNT_KIND, ["salesforce:Account:00101"])


def _crm_accounts(value: object, seen: set[int] | None = None) -> int:
    """How many CrmAccount objects `value` holds (deep)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, CrmAccount):
        return 1
    if isinstance(value, dict):
        return sum(_crm_accounts(k, seen) + _crm_accounts(v, seen) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return sum(_crm_accounts(v, seen) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return _crm_accounts(vars(value), seen)
    return 0


def test_an_account_read_stopped_midway_stores_only_whole_batches_and_the_next_run_reads_all(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget stop in the middle of a cold account read (after 7 Salesforce Accounts, with
    batches of 5): the first batch is stored (the CRM's values as read), the record list and
    the cursor are not, nothing is evaluated; the next run reads every account again and
    writes what one clean run writes."""
    from leadsync.connectors.base import BudgetExhausted

    clean = Run(500, monkeypatch)
    real = FakeConnector.iter_accounts
    reads: list[int] = []

    def iter_accounts(conn: FakeConnector, since: datetime | None = None
                      ) -> Iterator[CrmAccount]:
        if conn.system != "salesforce" or reads:
            yield from real(conn, since)
            return
        reads.append(1)
        for n, acc in enumerate(real(conn, since)):
            if n == 7:
                raise BudgetExhausted("salesforce: daily share spent")
            yield acc

    monkeypatch.setattr(FakeConnector, "iter_accounts", iter_accounts)
    run = Run(500, monkeypatch, store_batch=5)
    assert run.report.accounts_not_evaluated == 1 and run.report.accounts_evaluated == 0
    keys = [f"salesforce:Account:001{n:02}" for n in range(SF_ACCOUNTS)]
    stored = run.state.get_fingerprints(phase_module.ACCOUNT_KIND, keys)
    assert len(stored) == 5  # the first whole batch; the two read after it are not
    assert phase_module.listed_refs(run.state, "salesforce") == set()
    assert run.state.get_cursor("salesforce:accounts") is None
    again = run.again()  # at the same moment: the MQA episodes start when the clean run's did
    assert reads == [1] and again.accounts_evaluated == clean.report.accounts_evaluated
    assert dict(again.account_records_written) == dict(clean.report.account_records_written)
    assert run.written() == clean.written()
    assert len(run.state.get_fingerprints(phase_module.ACCOUNT_KIND, keys)) == SF_ACCOUNTS


def _strings(obj: object, skip: set[int], out: set[str]) -> None:
    """Every string reachable from `obj` through containers and attributes."""
    if id(obj) in skip:
        return
    skip.add(id(obj))
    if isinstance(obj, str):
        out.add(obj)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _strings(k, skip, out)
            _strings(v, skip, out)
    elif isinstance(obj, list | tuple | set | frozenset):
        for v in obj:
            _strings(v, skip, out)
    elif hasattr(obj, "__dict__") or hasattr(obj, "__slots__"):
        names = list(getattr(obj, "__dict__", {})) + list(getattr(obj, "__slots__", ()))
        for name in names:
            if hasattr(obj, name):
                _strings(getattr(obj, name), skip, out)


def test_between_pages_the_phase_holds_no_account_and_no_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9: what the phase held per account until `finish` (the account index, the touched
    account keys, the bare domains, the engaged people's labels) is in the run's working area
    in the store: when `finish` starts, after every page was noted, the phase object reaches
    no account key, no CRM account record key and no person's label (was: all of them)."""
    seen: dict[str, set[str]] = {}
    real_score = phase_module.AccountPhase.score

    def score(phase: phase_module.AccountPhase, rules: Any, *, full: bool) -> None:
        reached: set[str] = set()
        keep_out = {id(phase.state), id(getattr(phase, "scratch", phase.state)),
                    id(phase.model), id(phase.report), id(phase.connectors)}
        _strings(phase, keep_out, reached)
        seen["start"] = reached
        real_score(phase, rules, full=full)

    monkeypatch.setattr(phase_module.AccountPhase, "score", score)
    run = Run(4, monkeypatch)
    assert run.report.accounts_evaluated == SF_ACCOUNTS + HS_COMPANIES
    reached = seen["start"]
    assert not [s for s in reached if s.startswith("a-")]
    assert not [s for s in reached if s.startswith(("salesforce:Account:", "hubspot:company:"))]
    assert not [s for s in reached if "山田" in s or "佐藤" in s]
    labels = run.tasks()
    assert labels  # the MQA tasks still name their engaged people (read back per chunk)


def test_the_working_area_is_dropped_at_the_end_and_a_killed_runs_at_the_next_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from leadsync.accounts import stored

    run = Run(4, monkeypatch)
    kinds = (*stored.KINDS, phase_module.RUN_TOUCHED_KIND, phase_module.RUN_LABELS_KIND)
    for kind in kinds:
        assert run.state.scan_fingerprints(kind, "", 100) == ("", {}), kind
    tasks = run.tasks()
    # what a run killed before its finish leaves: a touched account and a label of its own
    run.state.set_fingerprints(phase_module.RUN_TOUCHED_KIND, {"a-killed": "killed.example"})
    run.state.set_fingerprints(phase_module.RUN_LABELS_KIND,
                               {p: "残骸" for p in _member_keys(run.state)})
    run.state.set_fingerprints(stored.MEMBERS, {"a-killed": "salesforce:Account:0019"})
    run.evaluated.clear()
    report = run.again()
    assert report.accounts_evaluated == SF_ACCOUNTS + HS_COMPANIES
    assert "a-killed" not in {ev.key for ev in run.evaluated}
    assert not any("残骸" in str(t) for t in run.tasks()) and run.tasks() == tasks
    for kind in kinds:
        assert run.state.scan_fingerprints(kind, "", 100) == ("", {}), kind


def _member_keys(state: InMemoryStateStore) -> list[str]:
    found = state.scan_fingerprints(phase_module.MEMBER_KIND, "", 10_000)[1]
    return sorted(k for k, v in found.items() if v)


def test_a_walk_that_repeats_accounts_scores_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store's scan may return an entry twice (Redis SCAN): every account is still scored,
    written and counted once."""
    from leadsync.accounts.stored import StoredAccountIndex

    plain = Run(4, monkeypatch)
    real_walk = StoredAccountIndex.walk
    real_scan = InMemoryStateStore.scan_fingerprints

    def walk(index: StoredAccountIndex, count: int) -> Iterator[list[str]]:
        for keys in real_walk(index, count):
            yield keys
            yield keys  # again, as a scan may

    def scan(state: InMemoryStateStore, kind: str, cursor: str, count: int
             ) -> tuple[str, dict[str, str]]:
        nxt, found = real_scan(state, kind, cursor, count)
        if kind == phase_module.RUN_TOUCHED_KIND and not cursor and nxt:
            return cursor + "\x00", found  # the first step comes again
        return nxt, found

    monkeypatch.setattr(StoredAccountIndex, "walk", walk)
    monkeypatch.setattr(InMemoryStateStore, "scan_fingerprints", scan)
    twice = Run(4, monkeypatch)
    keys = [ev.key for ev in twice.evaluated]
    assert len(keys) == len(set(keys)) == SF_ACCOUNTS + HS_COMPANIES
    assert sorted(keys) == sorted(ev.key for ev in plain.evaluated)
    assert twice.written() == plain.written() and twice.calls() == plain.calls()
    assert twice.tasks() == plain.tasks()
    assert twice.report.accounts_evaluated == plain.report.accounts_evaluated


def test_mqa_hand_offs_made_in_batches_create_the_same_tasks_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9 (memory): the MQA accounts' hand-offs are made `HANDOFF_BATCH` at a time as
    the chunks are scored, not held to the end; in batches of one, the same tasks, each once,
    and a second run creates none."""
    one = Run(500, monkeypatch)
    sizes: list[int] = []
    real = phase_module.AccountPhase.hand_off

    def hand_off(phase: phase_module.AccountPhase, handoffs: Sequence[Any]) -> None:
        sizes.append(len(handoffs))
        real(phase, handoffs)

    monkeypatch.setattr(phase_module.AccountPhase, "hand_off", hand_off)
    monkeypatch.setattr(phase_module, "HANDOFF_BATCH", 1)
    many = Run(3, monkeypatch)
    created = sum(many.report.mqa_tasks_created.values())
    assert many.tasks() == one.tasks()
    assert dict(many.report.mqa_tasks_created) == dict(one.report.mqa_tasks_created)
    assert created >= 2 and sum(sizes) == created
    assert sizes[-1] == 0 and all(1 <= n <= 3 for n in sizes[:-1])  # a chunk's, then the rest
    again = many.again()
    assert sum(again.mqa_tasks_created.values()) == 0 and many.tasks() == one.tasks()
