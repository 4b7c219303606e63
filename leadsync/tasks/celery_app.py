"""The Celery application and its beat schedule, built from `Settings` (RELIABILITY.md).

Why each setting:
- `task_acks_late` + `task_reject_on_worker_lost`: a worker killed mid-cycle (SIGKILL, OOM)
  leaves its message unacknowledged, so the job is redone; redoing it changes nothing.
- `worker_prefetch_multiplier=1`: a worker reserves one job at a time, so a crash strands one.
- a short broker visibility timeout (default 300 s): a crashed worker's message comes back
  within minutes; a running worker renews the visibility of every message it holds every
  quarter of the timeout (`leadsync.tasks.transport`, `.heartbeat`), so a job that runs longer
  than the timeout is not handed to a second worker. This replaces RELIABILITY.md's "time
  limit < visibility timeout" (docs/operations.md, "Redelivery").
- leadsync's Redis transport (`leadsync.tasks.transport`): kombu's, with a guard that keeps the
  worker alive when Redis is lost (docs/operations.md, "Redis loss").
- beat writes a heartbeat on every tick and ticks at least every `LEADSYNC_HEARTBEAT_SECONDS`;
  workers write theirs on a timer; messages carry their send time (`leadsync health`).
- JSON only: messages carry job names and record keys, never pickled objects or secrets.
- Periodic messages expire after one interval: after an outage beat does not replay a backlog.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab

from leadsync.config.settings import Settings, SettingsError, timing_problems
from leadsync.tasks.transport import TRANSPORT

QUEUE = "leadsync"
TASK_INCREMENTAL = "leadsync.sync_incremental"
TASK_SLA = "leadsync.sla_sweep"
TASK_FULL = "leadsync.full_reevaluation"
TASK_CHUNK = "leadsync.reevaluate_chunk"


def time_limits(settings: Settings) -> tuple[int, int, int]:
    """(soft, hard, visibility timeout) in seconds; SettingsError names the variable at fault."""
    hard = settings.task_time_limit_seconds
    soft = max(5, hard - max(5, hard // 10))
    visibility = settings.broker_visibility_timeout_seconds
    problems = timing_problems(settings.job_lock_seconds, hard, visibility)
    if problems:
        raise SettingsError("; ".join(problems))
    return soft, hard, visibility


def restore_sweep_seconds(visibility: int) -> int:
    """How often a worker looks for messages whose visibility timed out (kombu's default is
    every 100 s): a fifth of the timeout, between 5 s and 60 s."""
    return max(5, min(60, visibility // 5))


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Incremental sync and SLA sweep on intervals; full re-evaluation nightly (UTC)."""
    return {
        "leadsync-incremental": {
            "task": TASK_INCREMENTAL,
            "schedule": float(settings.sync_interval_seconds),
            "options": {"expires": float(settings.sync_interval_seconds)},
        },
        "leadsync-sla-sweep": {
            "task": TASK_SLA,
            "schedule": float(settings.sla_sweep_seconds),
            "options": {"expires": float(settings.sla_sweep_seconds)},
        },
        "leadsync-full-reevaluation": {
            "task": TASK_FULL,
            "schedule": crontab(minute=0, hour=settings.full_reevaluation_hour_utc),
            "options": {"expires": 3600.0},
        },
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration mapping for these settings (no secrets but the broker URL)."""
    if not settings.redis_url:
        raise SettingsError(
            "LEADSYNC_REDIS_URL: required for the Celery worker and beat "
            "(expected redis://[:password@]host:port/db)"
        )
    soft, hard, visibility = time_limits(settings)
    scheme = settings.redis_url.split(":", 1)[0].lower()
    return {
        # the guarded transport for TCP Redis; unix sockets keep kombu's own
        **({"broker_transport": TRANSPORT} if scheme in ("redis", "rediss") else {}),
        "broker_url": settings.redis_url,
        "broker_transport_options": {
            "visibility_timeout": visibility,
            "unacked_restore_interval": restore_sweep_seconds(visibility),
            "unacked_restore_throttle": 1,
        },
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_soft_time_limit": soft,
        "task_time_limit": hard,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_default_queue": QUEUE,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": beat_schedule(settings),
        "beat_scheduler": "leadsync.tasks.heartbeat:HeartbeatScheduler",
        "beat_max_loop_interval": settings.heartbeat_seconds,
        "leadsync_heartbeat_seconds": settings.heartbeat_seconds,
        "worker_max_tasks_per_child": 500,
    }


def create_app(settings: Settings) -> Celery:
    """A configured Celery app; tasks are attached by `leadsync.tasks.jobs.register_tasks`."""
    from celery.signals import before_task_publish

    from leadsync.tasks.heartbeat import WorkerHeartbeat, stamp_sent_at

    app = Celery("leadsync", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.steps["worker"].add(WorkerHeartbeat)
    before_task_publish.connect(stamp_sent_at, weak=False, dispatch_uid="leadsync-sent-at")
    return app
