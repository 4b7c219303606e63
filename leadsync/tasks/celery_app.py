"""The Celery application and its beat schedule, built from `Settings` (RELIABILITY.md).

Why each setting:
- `task_acks_late` + `task_reject_on_worker_lost`: a worker killed mid-cycle (SIGKILL, OOM)
  leaves its message unacknowledged, so the job is redone; redoing it changes nothing.
- `worker_prefetch_multiplier=1`: a worker reserves one job at a time, so a crash strands one.
- soft time limit < hard time limit < broker visibility timeout: a job is stopped before Redis
  would hand its message to a second worker while the first still runs it.
- JSON only: messages carry job names and record keys, never pickled objects or secrets.
- Periodic messages expire after one interval: after an outage beat does not replay a backlog.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab

from leadsync.config.settings import Settings, SettingsError

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
    if visibility <= hard:
        raise SettingsError(
            "LEADSYNC_BROKER_VISIBILITY_TIMEOUT_SECONDS: must be greater than "
            f"LEADSYNC_TASK_TIME_LIMIT_SECONDS ({hard}), or Redis redelivers running jobs "
            "to a second worker"
        )
    return soft, hard, visibility


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
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": {"visibility_timeout": visibility},
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
        "worker_max_tasks_per_child": 500,
    }


def create_app(settings: Settings) -> Celery:
    """A configured Celery app; tasks are attached by `leadsync.tasks.jobs.register_tasks`."""
    app = Celery("leadsync", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app
