"""The Celery task shells, run eagerly against a fake job context with the in-memory store.

The fake stands where the pipeline stands (fakes over mocks): it records what each job was
asked to do, holds the real in-memory lock, and raises the error kinds on demand, so the
error mapping, locking and fan-out are exercised through Celery's own task machinery.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import redis
from celery import Celery
from celery.exceptions import Retry

from leadsync.config.settings import Settings
from leadsync.connectors.base import AuthError, BudgetExhausted, TransientError
from leadsync.lease import PEOPLE_LOCK
from leadsync.state import InMemoryStateStore, Lock, StateError
from leadsync.tasks.celery_app import TASK_CHUNK, TASK_FULL, TASK_INCREMENTAL, TASK_SLA, create_app
from leadsync.tasks.jobs import MAX_RETRIES, ContextHolder, chunk_lock_name, register_tasks


class FakeContext:
    """A JobContext that runs no pipeline: it records calls and raises what it is told to."""

    def __init__(self) -> None:
        self.state = InMemoryStateStore()
        self.lock_seconds = 30.0
        self.max_countdown = 0.01
        self.calls: list[tuple[str, bool, tuple[str, ...] | None]] = []
        self.errors: list[Exception] = []
        self.deliveries: Counter[str] = Counter()
        self.reports: list[Mapping[str, Any]] = []

    def run_job(
        self, job: str, *, lock: Lock, record_keys: Sequence[str] | None = None
    ) -> Mapping[str, Any]:
        self.calls.append((job, lock.owned(), tuple(record_keys) if record_keys else None))
        if self.errors:
            raise self.errors.pop(0)
        return {
            "job": job,
            "people": len(record_keys or ()) or 3,
            "records_written": {"hubspot": 2, "salesforce": 1},
            "tasks_created": {"salesforce": 1},
            "stopped_reason": None,
            "top": [{"email": "taro@example.co.jp"}],  # record data: must not be returned
        }

    def count_delivery(self, delivery_id: str) -> int:
        self.deliveries[delivery_id] += 1
        return self.deliveries[delivery_id]

    def record_report(self, report: Mapping[str, Any]) -> None:
        self.reports.append(report)


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext()


@pytest.fixture
def app(ctx: FakeContext) -> Celery:
    celery_app = create_app(Settings(redis_url="redis://127.0.0.1:6379/13"))
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    register_tasks(celery_app, ContextHolder(lambda: ctx))
    return celery_app


def run(app: Celery, name: str, *args: Any) -> dict[str, Any]:
    result: dict[str, Any] = app.tasks[name].apply_async(args=args).get()
    return result


@pytest.mark.parametrize(("task", "job"), [(TASK_INCREMENTAL, "incremental"), (TASK_SLA, "sla")])
def test_job_runs_under_its_lock_and_returns_counts_only(
    app: Celery, ctx: FakeContext, task: str, job: str
) -> None:
    result = run(app, task)
    assert ctx.calls == [(job, True, None)]
    assert result["job"] == job
    assert result["records_written"] == {"hubspot": 2, "salesforce": 1}
    assert "top" not in result
    assert "example.co.jp" not in repr(ctx.reports)
    assert ctx.reports[0]["task"] == task
    assert ctx.state.lock(PEOPLE_LOCK, 5).acquire()  # released after the run


def test_held_lock_skips_every_job_that_writes_for_the_people(app: Celery, ctx: FakeContext
                                                               ) -> None:
    other_run = ctx.state.lock(PEOPLE_LOCK, 30)  # e.g. a manual `leadsync sync`
    assert other_run.acquire()
    assert run(app, TASK_INCREMENTAL)["skipped"] == "locked"
    assert run(app, TASK_SLA)["skipped"] == "locked"  # one lock for both jobs
    assert ctx.calls == []
    assert other_run.owned()
    other_run.release()
    assert run(app, TASK_SLA)["job"] == "sla"
    assert ctx.calls == [("sla", True, None)]


def test_transient_error_retries_the_whole_job_with_backoff(app: Celery, ctx: FakeContext) -> None:
    ctx.max_countdown = 600.0
    ctx.errors = [TransientError("503 after retries")]
    with pytest.raises(Retry) as first:
        app.tasks[TASK_INCREMENTAL].apply(retries=0, throw=True)
    ctx.errors = [TransientError("503 after retries")]
    with pytest.raises(Retry) as third:
        app.tasks[TASK_INCREMENTAL].apply(retries=2, throw=True)
    assert 15 <= float(first.value.when) <= 20  # type: ignore[arg-type]
    assert 60 <= float(third.value.when) <= 65  # type: ignore[arg-type]
    assert isinstance(first.value.exc, TransientError)
    assert len(ctx.calls) == 2
    assert ctx.state.lock(PEOPLE_LOCK, 5).acquire()  # the retry does not keep the lock


def test_retry_countdown_stays_under_the_cap(app: Celery, ctx: FakeContext) -> None:
    ctx.max_countdown = 40.0
    ctx.errors = [TransientError("timeout")]
    with pytest.raises(Retry) as late:
        app.tasks[TASK_SLA].apply(retries=3, throw=True)
    assert float(late.value.when) == 40.0  # type: ignore[arg-type]


def test_transient_error_retries_are_bounded(app: Celery, ctx: FakeContext) -> None:
    ctx.errors = [TransientError("503 for good")]
    with pytest.raises(TransientError):
        app.tasks[TASK_INCREMENTAL].apply(retries=MAX_RETRIES, throw=True)
    assert len(ctx.calls) == 1
    assert ctx.state.lock(PEOPLE_LOCK, 5).acquire()


def test_auth_error_fails_without_retry(app: Celery, ctx: FakeContext) -> None:
    ctx.errors = [AuthError("401 INVALID_SESSION_ID after re-login")]
    with pytest.raises(AuthError):
        run(app, TASK_SLA)
    assert len(ctx.calls) == 1
    assert ctx.state.lock(PEOPLE_LOCK, 5).acquire()


def test_budget_exhausted_returns_cleanly(app: Celery, ctx: FakeContext) -> None:
    ctx.errors = [BudgetExhausted("REQUEST_LIMIT_EXCEEDED")]
    result = run(app, TASK_INCREMENTAL)
    assert result["stopped_reason"] == "budget"
    assert len(ctx.calls) == 1


def test_poison_message_is_dropped_after_repeated_deliveries(app: Celery, ctx: FakeContext) -> None:
    task_id = "poison-1"
    ctx.deliveries[f"{task_id}:0"] = 3  # three earlier deliveries died with their worker
    result = app.tasks[TASK_INCREMENTAL].apply_async(task_id=task_id).get()
    assert result["skipped"] == "poison"
    assert ctx.calls == []


def test_full_reevaluation_is_one_job_under_the_people_lock(app: Celery, ctx: FakeContext) -> None:
    result = run(app, TASK_FULL)
    assert ctx.calls == [("full", True, None)]  # one job, no fan-out, the people lock held
    assert result["job"] == "full" and result["people"] == 3
    assert [r["task"] for r in ctx.reports] == [TASK_FULL]
    assert ctx.state.lock(PEOPLE_LOCK, 5).acquire()  # released at the end


def test_full_reevaluation_waits_for_a_running_sync_instead_of_skipping_the_night(
    app: Celery, ctx: FakeContext
) -> None:
    incremental = ctx.state.lock(PEOPLE_LOCK, 30)
    assert incremental.acquire()
    with pytest.raises(Retry):
        run(app, TASK_FULL)  # retried later, not dropped
    chunk = ctx.state.lock(PEOPLE_LOCK, 30, shared=True)  # an old version's chunk
    incremental.release()
    assert chunk.acquire()
    with pytest.raises(Retry):
        run(app, TASK_FULL)  # never beside a chunk either
    assert ctx.calls == []
    chunk.release()
    assert run(app, TASK_FULL)["job"] == "full"
    assert ctx.calls == [("full", True, None)]
    assert run(app, TASK_INCREMENTAL)["job"] == "incremental"  # nothing left held


def test_chunk_lock_is_per_key_set_and_a_locked_chunk_is_retried(
    app: Celery, ctx: FakeContext
) -> None:
    keys = ["hubspot:contact:2", "hubspot:contact:1"]
    assert chunk_lock_name(keys) == chunk_lock_name(sorted(keys))
    assert chunk_lock_name(keys) != chunk_lock_name(keys[:1])
    running = ctx.state.lock(chunk_lock_name(keys), 30)
    assert running.acquire()
    with pytest.raises(Retry):
        run(app, TASK_CHUNK, keys)  # retried later while the other copy holds the lock
    assert ctx.calls == []
    running.release()
    assert run(app, TASK_CHUNK, keys)["record_keys"] == 2


@pytest.mark.parametrize("bad", [[], "hubspot:contact:1", ["no-colons"], [1, 2]])
def test_bad_chunk_argument_is_refused_by_name(app: Celery, ctx: FakeContext, bad: Any) -> None:
    with pytest.raises(ValueError, match=TASK_CHUNK):
        run(app, TASK_CHUNK, bad)
    assert ctx.calls == []


def test_chunks_share_the_people_lock_with_each_other_but_not_with_the_incremental(
    app: Celery, ctx: FakeContext
) -> None:
    other_chunk = ctx.state.lock(PEOPLE_LOCK, 30, shared=True)  # a chunk running elsewhere
    assert other_chunk.acquire()
    assert run(app, TASK_CHUNK, ["hubspot:contact:1"])["record_keys"] == 1  # side by side
    assert run(app, TASK_INCREMENTAL)["skipped"] == "locked"  # not beside any chunk
    assert run(app, TASK_SLA)["skipped"] == "locked"
    assert [c[0] for c in ctx.calls] == ["chunk"]
    other_chunk.release()
    incremental = ctx.state.lock(PEOPLE_LOCK, 30)  # an incremental sync runs now
    assert incremental.acquire()
    with pytest.raises(Retry):
        run(app, TASK_CHUNK, ["hubspot:contact:2"])  # waits for it: retried, not dropped
    assert ctx.state.lock(chunk_lock_name(["hubspot:contact:2"]), 5).acquire()  # not kept
    incremental.release()
    assert run(app, TASK_INCREMENTAL)["job"] == "incremental"


@pytest.mark.parametrize("error", [redis.exceptions.ConnectionError("Connection refused"),
                                   redis.exceptions.TimeoutError("Timeout reading"),
                                   StateError("state store unreachable")])
def test_lost_redis_mid_job_retries_the_whole_job(app: Celery, ctx: FakeContext,
                                                  error: Exception) -> None:
    """Redis (state store and broker) gone mid-job: retried with backoff, never acknowledged
    as a finished job (no report recorded)."""
    ctx.max_countdown = 600.0
    ctx.errors = [error]
    with pytest.raises(Retry) as retry:
        app.tasks[TASK_INCREMENTAL].apply(retries=0, throw=True)
    assert 15 <= float(retry.value.when) <= 20  # type: ignore[arg-type]
    assert retry.value.exc is error
    assert ctx.reports == []
    assert ctx.state.lock(PEOPLE_LOCK, 5).acquire()  # released (or left to expire)


def test_redis_gone_before_the_job_starts_is_retried_too(app: Celery, ctx: FakeContext,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_: str) -> int:
        raise redis.exceptions.ConnectionError("Error 111 connecting")

    monkeypatch.setattr(ctx, "count_delivery", refuse)
    with pytest.raises(Retry):
        app.tasks[TASK_SLA].apply(retries=0, throw=True)
    assert ctx.calls == [] and ctx.reports == []


def test_a_lock_release_without_redis_does_not_hide_the_outcome(
    app: Celery, ctx: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadsync.state import InMemoryStateStore

    real_lock = InMemoryStateStore.lock

    def lock(self: InMemoryStateStore, name: str, ttl: float, **kw: Any) -> Lock:
        held = real_lock(self, name, ttl, **kw)
        real_release = held.release

        def release() -> None:  # the lease goes (it would expire), the reply never comes
            real_release()
            raise redis.exceptions.ConnectionError("Connection closed by server.")

        held.release = release  # type: ignore[method-assign]
        return held

    monkeypatch.setattr(InMemoryStateStore, "lock", lock)
    assert run(app, TASK_INCREMENTAL)["job"] == "incremental"  # finished, reported once
    assert len(ctx.reports) == 1
    ctx.errors = [TransientError("503")]
    with pytest.raises(Retry) as retry:  # a retry is not replaced by the release error
        app.tasks[TASK_INCREMENTAL].apply(retries=0, throw=True)
    assert isinstance(retry.value.exc, TransientError)


def test_a_lease_lost_because_redis_was_away_is_retried_not_reported(
    app: Celery, ctx: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline stops with `lock_lost` when it cannot renew its lease; if Redis does not
    answer either, nobody else took the lease: the job is retried. If Redis answers, another
    holder took it and the stop is reported as such."""

    class Down:
        def ping(self) -> bool:
            raise redis.exceptions.ConnectionError("Error 111 connecting")

    class Up:
        def ping(self) -> bool:
            return True

    real = ctx.run_job

    def stops_lock_lost(job: str, **kw: Any) -> Mapping[str, Any]:
        return {**real(job, **kw), "stopped_reason": "lock_lost"}

    monkeypatch.setattr(ctx, "run_job", stops_lock_lost)
    monkeypatch.setattr(ctx.state, "redis", Down(), raising=False)
    with pytest.raises(Retry):
        app.tasks[TASK_INCREMENTAL].apply(retries=0, throw=True)
    assert ctx.reports == []
    monkeypatch.setattr(ctx.state, "redis", Up(), raising=False)
    result = run(app, TASK_INCREMENTAL)
    assert (result["stopped_reason"], result["exit_code"]) == ("lock_lost", 3)
    assert len(ctx.reports) == 1
