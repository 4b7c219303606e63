"""The production `JobContext`: one per worker process, over the real pipeline and Redis.

Built lazily on a worker process's first task (after the prefork fork), it opens the Redis
state store, builds the runtime once (`leadsync.runtime.build_runtime`) and keeps two small
operational records next to the state: a delivery counter per message (the poison-loop guard
that `task_reject_on_worker_lost` needs) and the last job reports (for operators and tests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from leadsync.config.settings import Settings, SettingsError
from leadsync.state import Lock
from leadsync.state_redis import RedisStateStore, connect
from leadsync.tasks.celery_app import time_limits

if TYPE_CHECKING:
    from leadsync.runtime import Runtime

REPORTS_KEPT = 200
REPORTS_TTL_SECONDS = 7 * 86_400


def reports_key(namespace: str = "leadsync") -> str:
    """Redis list of the latest job summaries, newest first (JSON, counts and ids only)."""
    return f"{namespace}:reports"


class WorkerContext:
    """State store, runtime and bookkeeping of one worker process."""

    def __init__(self, settings: Settings) -> None:
        if not settings.redis_url:
            raise SettingsError("LEADSYNC_REDIS_URL: required for the Celery worker")
        _, _, visibility = time_limits(settings)
        self.settings = settings
        self.lock_seconds = float(settings.job_lock_seconds)
        # a retry countdown is held unacknowledged by the worker, which renews its visibility
        # (leadsync.tasks.transport); capped at the timeout all the same
        self.max_countdown = float(min(300, visibility))
        self._visibility = visibility
        self.state: RedisStateStore = connect(settings.redis_url)
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            from leadsync.runtime import build_runtime

            self._runtime = build_runtime(self.settings, state=self.state)
        return self._runtime

    def run_job(
        self, job: str, *, lock: Lock, record_keys: Sequence[str] | None = None
    ) -> Mapping[str, Any]:
        from leadsync.pipeline import run_job

        report = run_job(self.runtime, job, lock=lock, record_keys=record_keys,  # type: ignore[arg-type]
                         keep_people=False)
        result: Mapping[str, Any] = report.to_dict()
        return result

    def count_delivery(self, delivery_id: str) -> int:
        key = f"{self.state.namespace}:delivery:{delivery_id}"
        pipe = self.state.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 2 * self._visibility)
        count, _ = pipe.execute()
        return int(count)

    def record_report(self, report: Mapping[str, Any]) -> None:
        key = reports_key(self.state.namespace)
        pipe = self.state.redis.pipeline(transaction=False)
        pipe.lpush(key, json.dumps(report, separators=(",", ":"), default=str))
        pipe.ltrim(key, 0, REPORTS_KEPT - 1)
        pipe.expire(key, REPORTS_TTL_SECONDS)
        pipe.execute()
