"""Thin Celery task shells over the pipeline (STYLE.md §8).

Every job that writes for the people — the incremental sync, the SLA sweep and the CLI's
`leadsync sync` — runs under ONE state-store lock, `PEOPLE_LOCK`: when another of them already
runs, the task logs and returns `{"skipped": "locked"}`. The pipeline keeps the lease alive with
a heartbeat thread (`leadsync.lease`) through every phase, reads included, and stops before the
next write or task create if it was lost.
Errors map to Celery behaviour in one place: TransientError -> retry the whole job with bounded
exponential backoff; AuthError -> fail loudly, no retry; BudgetExhausted (the pipeline itself
stops only the CRM whose budget is spent) -> log and return, cursors intact; SoftTimeLimitExceeded
-> log and return, nothing of the run committed (size the limit above honest work, see
docs/operations.md). Messages carry only job names and record keys.

The nightly full re-evaluation (`leadsync.full_reevaluation`) is ONE job: it reads everyone once
(HubSpot and Salesforce at the same time), evaluates, writes and creates tasks under
`PEOPLE_LOCK` with its heartbeat, like `leadsync sync --full`. It used to plan chunks and fan
them out, each chunk re-reading its records by id so that SLA decisions used fresh sales status;
that read everything twice, and the fan-out bought nothing because every worker draws from the
same CRM rate limits. One job reads each record once and decides right after reading it, and no
incremental sync can write in between (same lock). Refused the lock (an incremental sync is
running), it is retried later rather than skipped (within the message's one-hour expiry), so
the night's run is not lost.
`leadsync.reevaluate_chunk` stays for chunk messages an earlier version left in the queue: it
re-evaluates the given records (their own lock plus `PEOPLE_LOCK` shared, as before).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import redis
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from leadsync import exitcodes
from leadsync.connectors.base import AuthError, BudgetExhausted, TransientError
from leadsync.lease import PEOPLE_LOCK, Leases
from leadsync.logs import redact
from leadsync.state import Lock, StateError, StateStore
from leadsync.tasks.celery_app import TASK_CHUNK, TASK_FULL, TASK_INCREMENTAL, TASK_SLA

log = logging.getLogger("leadsync.tasks")

MAX_RETRIES = 4  # whole-job retries after the HTTP layer's own retries gave up
LOCKED_RETRIES = 48  # a chunk refused its leases waits this many countdowns before giving up
MAX_DELIVERIES = 3  # deliveries of one message (same id, same retry) before it counts as poison
RETRY_BASE_SECONDS = 15.0
# the state store (and broker) unreachable: the whole job is retried with backoff
STATE_ERRORS = (StateError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
MAX_ERRORS = 5  # distinct failure reasons a task result lists
REPORT_FIELDS = (
    "job", "people", "records_written", "tasks_created", "tasks_existing", "failed", "api_calls",
    "stage_changes", "stopped_reason", "budget_stopped", "deferred", "duration_s", "skipped",
    "record_keys", "drift", "lifecycle_adopted",
)  # fmt: skip


class JobContext(Protocol):
    """What a task shell needs from its worker process; `WorkerContext` in production."""

    lock_seconds: float
    max_countdown: float

    @property
    def state(self) -> StateStore: ...

    def run_job(
        self, job: str, *, lock: Lock, record_keys: Sequence[str] | None = None
    ) -> Mapping[str, Any]: ...
    def count_delivery(self, delivery_id: str) -> int: ...
    def record_report(self, report: Mapping[str, Any]) -> None: ...


def retry_countdown(retries: int, cap: float) -> float:
    """Exponential backoff with jitter, capped below the broker visibility timeout."""
    delay = RETRY_BASE_SECONDS * float(2 ** min(retries, 16)) + random.uniform(0, 5)  # noqa: S311
    return min(cap, delay)


def chunk_lock_name(record_keys: Sequence[str]) -> str:
    """A lock name that is the same for the same set of keys, whatever their order."""
    digest = hashlib.blake2b(json.dumps(sorted(record_keys)).encode(), digest_size=10)
    return f"job:chunk:{digest.hexdigest()}"


def validate_record_keys(keys: object) -> list[str]:
    """The chunk task's only argument; a clear error names what is wrong with it."""
    if not isinstance(keys, list) or not keys:
        raise ValueError(f"{TASK_CHUNK}: expected a non-empty list of record keys")
    for key in keys:
        if not isinstance(key, str) or key.count(":") < 2:
            raise ValueError(
                f"{TASK_CHUNK}: bad record key {str(key)[:60]!r}; "
                "expected 'system:object:id' such as 'hubspot:contact:1'"
            )
    return keys


def summarise(task: Task, report: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-able outcome a task returns and records: counts and ids, never record data.
    `ok`, `stopped_reason` and `exit_code` say what `leadsync sync --once` would have exited
    with (leadsync.exitcodes), so Flower and cron read the same outcome; `errors` lists the
    distinct (redacted) failure reasons."""
    out = {k: report[k] for k in REPORT_FIELDS if k in report}
    failures = [*report.get("failures", ()), *report.get("task_failures", ())]
    failed = sum(report.get("failed", {}).values()) + len(report.get("task_failures", ()))
    code = exitcodes.for_outcome(failed=failed, stopped_reason=report.get("stopped_reason"))
    if report.get("skipped") == "poison":
        code = exitcodes.FAILED_RECORDS
    out["stopped_reason"] = report.get("stopped_reason")
    out["exit_code"] = code
    out["ok"] = code == exitcodes.OK
    reasons: list[str] = []
    for item in failures:
        reason = redact(str(item.get("reason", "")))[:200]
        if reason and reason not in reasons and len(reasons) < MAX_ERRORS:
            reasons.append(reason)
    if reasons:
        out["errors"] = reasons
    out["task"] = task.name
    out["task_id"] = task.request.id
    out["finished_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return out


def guarded(
    task: Task,
    ctx: JobContext,
    job: str,
    lock_name: str,
    work: Callable[[Lock], Mapping[str, Any]],
    *,
    retry_when_locked: bool = False,
    shared_lock: str | None = None,
) -> dict[str, Any]:
    """Run `work` under the job lock (and, when named, a shared lease on `shared_lock`) with
    the error mapping of the module docstring."""
    ids = {"job": job, "task_id": task.request.id, "retries": task.request.retries}
    try:
        return _guarded(task, ctx, job, lock_name, work, ids=ids,
                        retry_when_locked=retry_when_locked, shared_lock=shared_lock)
    except STATE_ERRORS as exc:
        # Redis (state store and broker) away: the job is redone, never acknowledged as done.
        # With the broker away too, Celery cannot publish the retry and rejects the message
        # instead; it stays in Redis' unacked index and comes back after the visibility timeout
        # (or, when Redis came back empty, beat's next tick sends the job again).
        countdown = retry_countdown(task.request.retries, ctx.max_countdown)
        log.warning("job lost its Redis state store: retrying the whole job",
                    extra={**ids, "error": type(exc).__name__, "retry_in_s": round(countdown)})
        raise task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES) from None


def _guarded(
    task: Task,
    ctx: JobContext,
    job: str,
    lock_name: str,
    work: Callable[[Lock], Mapping[str, Any]],
    *,
    ids: dict[str, Any],
    retry_when_locked: bool,
    shared_lock: str | None,
) -> dict[str, Any]:
    deliveries = ctx.count_delivery(f"{task.request.id}:{task.request.retries}")
    if deliveries > MAX_DELIVERIES:
        log.error("job dropped: delivered too many times (poison message)", extra=ids)
        return finish(task, ctx, {"job": job, "skipped": "poison"})
    lock: Lock = ctx.state.lock(lock_name, ctx.lock_seconds)
    if shared_lock is not None:
        lock = Leases(lock, ctx.state.lock(shared_lock, ctx.lock_seconds, shared=True))
    if not lock.acquire(blocking=False):
        log.info("job skipped: another run holds the lock", extra={**ids, "lock": lock_name})
        if retry_when_locked:
            raise task.retry(countdown=min(ctx.lock_seconds, ctx.max_countdown),
                             max_retries=LOCKED_RETRIES)
        return finish(task, ctx, {"job": job, "skipped": "locked"})
    try:
        report: Mapping[str, Any] = work(lock)
    except TransientError as exc:
        countdown = retry_countdown(task.request.retries, ctx.max_countdown)
        retry_ids = {**ids, "error": type(exc).__name__, "retry_in_s": round(countdown)}
        log.warning("job hit a transient error: retrying the whole job", extra=retry_ids)
        raise task.retry(exc=exc, countdown=countdown) from None
    except BudgetExhausted:
        log.warning("job stopped: API budget spent; next tick resumes", extra=ids)
        report = {"job": job, "stopped_reason": "budget"}
    except SoftTimeLimitExceeded:
        # nothing of this run is committed: the next one reads the same again (operations.md)
        log.error("job stopped at its soft time limit: raise LEADSYNC_TASK_TIME_LIMIT_SECONDS "
                  "above the job's honest duration", extra=ids)
        report = {"job": job, "stopped_reason": "time_limit"}
    except AuthError as exc:
        log.error("job failed: authentication or configuration is wrong; not retried",
                  extra={**ids, "error": str(exc)})  # fmt: skip
        raise
    finally:
        _release(lock, ids)
    if report.get("stopped_reason") == "lock_lost":
        # a lease that could not be renewed because Redis was away is not another holder's:
        # the job is redone (STATE_ERRORS above), not reported as stopped
        client = getattr(ctx.state, "redis", None)
        if client is not None:
            client.ping()
    return finish(task, ctx, report)


def _release(lock: Lock, ids: Mapping[str, Any]) -> None:
    """Release the job lock; with Redis away the lease simply expires (never masks the
    job's own outcome or its retry)."""
    try:
        lock.release()
    except STATE_ERRORS as exc:
        log.warning("job lock not released: Redis unavailable; the lease expires",
                    extra={**ids, "error": type(exc).__name__})


def finish(task: Task, ctx: JobContext, report: Mapping[str, Any]) -> dict[str, Any]:
    summary = summarise(task, report)
    log.info("job finished", extra={"task_id": summary["task_id"], "job": summary.get("job"),
                                    "stopped_reason": summary.get("stopped_reason"),
                                    "exit_code": summary["exit_code"],
                                    "skipped": summary.get("skipped")})  # fmt: skip
    try:
        ctx.record_report(summary)
    except Exception as exc:  # reporting must never turn a finished job into a failed one
        log.warning("job report not recorded", extra={"error": type(exc).__name__})
    return summary


class ContextHolder:
    """One `JobContext` per worker process, built on first use (after the prefork fork) and
    dropped by `worker_process_init` so a child never inherits its parent's connections."""

    def __init__(self, factory: Callable[[], JobContext]) -> None:
        self._factory = factory
        self._context: JobContext | None = None

    def get(self) -> JobContext:
        if self._context is None:
            self._context = self._factory()
        return self._context

    def reset(self, **_: Any) -> None:
        self._context = None


def register_tasks(app: Celery, contexts: ContextHolder) -> dict[str, Task]:
    """Attach the four leadsync tasks to `app`; returns them by name."""

    def sync_incremental(self: Task) -> dict[str, Any]:
        ctx = contexts.get()
        return guarded(self, ctx, "incremental", PEOPLE_LOCK,
                       lambda lock: ctx.run_job("incremental", lock=lock))  # fmt: skip

    def sla_sweep(self: Task) -> dict[str, Any]:
        ctx = contexts.get()
        return guarded(self, ctx, "sla", PEOPLE_LOCK, lambda lock: ctx.run_job("sla", lock=lock))

    def reevaluate_chunk(self: Task, keys: list[str]) -> dict[str, Any]:
        record_keys = validate_record_keys(keys)
        ctx = contexts.get()

        def work(lock: Lock) -> Mapping[str, Any]:
            return {**ctx.run_job("chunk", lock=lock, record_keys=record_keys),
                    "record_keys": len(record_keys)}  # fmt: skip

        return guarded(self, ctx, "chunk", chunk_lock_name(record_keys), work,
                       retry_when_locked=True, shared_lock=PEOPLE_LOCK)  # fmt: skip

    def full_reevaluation(self: Task) -> dict[str, Any]:
        ctx = contexts.get()
        return guarded(self, ctx, "full", PEOPLE_LOCK, lambda lock: ctx.run_job("full", lock=lock),
                       retry_when_locked=True)  # fmt: skip

    shells = {
        TASK_INCREMENTAL: sync_incremental,
        TASK_SLA: sla_sweep,
        TASK_CHUNK: reevaluate_chunk,
        TASK_FULL: full_reevaluation,
    }
    return {
        name: app.task(name=name, bind=True, shared=False, max_retries=MAX_RETRIES)(fn)
        for name, fn in shells.items()
    }
