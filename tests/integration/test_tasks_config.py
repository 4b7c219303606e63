"""The Celery composition root: configuration per RELIABILITY.md, beat schedule from settings,
settings errors naming the variable, and the worker context's Redis bookkeeping (db 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from celery.schedules import crontab

from leadsync.config.settings import Settings, SettingsError, load_settings
from leadsync.tasks.celery_app import (
    TASK_CHUNK,
    TASK_FULL,
    TASK_INCREMENTAL,
    TASK_SLA,
    celery_config,
    create_app,
)

REDIS_URL = os.environ.get("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def test_reliability_settings() -> None:
    conf = celery_config(Settings(redis_url="redis://example:6379/0"))
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_connection_retry_on_startup"] is True
    assert conf["accept_content"] == ["json"]
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    options = conf["broker_transport_options"]
    assert conf["task_soft_time_limit"] < conf["task_time_limit"]
    # a crashed worker's job comes back within minutes; running ones are renewed (transport.py)
    assert options["visibility_timeout"] == 300
    assert (options["unacked_restore_interval"], options["unacked_restore_throttle"]) == (60, 1)
    assert conf["broker_transport"] == "leadsync.tasks.transport:Transport"
    assert conf["beat_scheduler"] == "leadsync.tasks.heartbeat:HeartbeatScheduler"
    assert conf["beat_max_loop_interval"] == conf["leadsync_heartbeat_seconds"] == 30


def test_time_limits_follow_settings() -> None:
    conf = celery_config(
        Settings(
            redis_url="redis://x:6379/0",
            job_lock_seconds=15,
            task_time_limit_seconds=50,
            broker_visibility_timeout_seconds=60,
        )
    )
    assert (conf["task_soft_time_limit"], conf["task_time_limit"]) == (45, 50)
    assert conf["broker_transport_options"]["visibility_timeout"] == 60


def test_job_lock_not_below_visibility_timeout_is_refused_by_name() -> None:
    # refused when the settings are loaded, before any worker starts (and by celery_config)
    with pytest.raises(SettingsError, match="LEADSYNC_JOB_LOCK_SECONDS"):
        load_settings(redis_url="redis://x:6379/0", job_lock_seconds=300,
                      broker_visibility_timeout_seconds=300)
    settings = Settings.model_construct(redis_url="redis://x:6379/0", job_lock_seconds=600,
                                        task_time_limit_seconds=3600,
                                        broker_visibility_timeout_seconds=300)
    with pytest.raises(SettingsError, match="LEADSYNC_BROKER_VISIBILITY_TIMEOUT_SECONDS"):
        celery_config(settings)


def test_time_limit_may_exceed_the_visibility_timeout() -> None:
    """The worker renews its messages' visibility, so a long job under a short timeout is
    valid (the deviation from RELIABILITY.md's ordering, docs/operations.md)."""
    conf = celery_config(Settings(redis_url="redis://x:6379/0", task_time_limit_seconds=3000,
                                  broker_visibility_timeout_seconds=120, job_lock_seconds=60))
    assert conf["task_time_limit"] == 3000
    assert conf["broker_transport_options"]["visibility_timeout"] == 120
    assert conf["broker_transport_options"]["unacked_restore_interval"] == 24


def test_unix_socket_broker_keeps_kombus_transport() -> None:
    conf = celery_config(Settings(redis_url="unix:///run/redis.sock?db=0"))
    assert "broker_transport" not in conf


def test_missing_redis_url_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="LEADSYNC_REDIS_URL"):
        create_app(Settings(redis_url=None))


def test_beat_schedule_comes_from_settings() -> None:
    settings = Settings(
        redis_url="redis://x:6379/0",
        sync_interval_seconds=120,
        sla_sweep_seconds=600,
        full_reevaluation_hour_utc=3,
    )
    schedule = celery_config(settings)["beat_schedule"]
    by_task = {entry["task"]: entry for entry in schedule.values()}
    assert by_task[TASK_INCREMENTAL]["schedule"] == 120
    assert by_task[TASK_SLA]["schedule"] == 600
    assert by_task[TASK_FULL]["schedule"] == crontab(minute=0, hour=3)
    assert by_task[TASK_INCREMENTAL]["options"]["expires"] == 120  # no backlog after an outage


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_celery_finds_the_app_and_its_tasks() -> None:
    code = (
        "import json; from celery.app.utils import find_app; app = find_app('leadsync.tasks');"
        "print(json.dumps(sorted(t for t in app.tasks if t.startswith('leadsync.'))))"
    )
    done = _python(code, LEADSYNC_REDIS_URL="redis://127.0.0.1:6379/14")
    assert done.returncode == 0, done.stderr
    names = json.loads(done.stdout.strip().splitlines()[-1])
    assert names == sorted([TASK_CHUNK, TASK_FULL, TASK_INCREMENTAL, TASK_SLA])


def test_importing_tasks_without_redis_url_is_fine_until_the_app_is_used() -> None:
    assert _python("import leadsync.tasks, leadsync.tasks.jobs").returncode == 0
    done = _python("from leadsync.tasks import app")
    assert done.returncode != 0
    assert "LEADSYNC_REDIS_URL" in done.stderr
    assert "Traceback" in done.stderr  # a SettingsError, not a silent default


@pytest.fixture
def worker_context() -> Iterator[object]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}")
    client.flushdb()
    from leadsync.tasks.worker import WorkerContext

    yield WorkerContext(Settings(redis_url=REDIS_URL))
    client.flushdb()


@pytest.mark.redis
def test_worker_context_counts_deliveries_and_keeps_recent_reports(worker_context: object) -> None:
    from leadsync.tasks.worker import REPORTS_KEPT, WorkerContext, reports_key

    assert isinstance(worker_context, WorkerContext)
    assert [worker_context.count_delivery("t-1:0") for _ in range(3)] == [1, 2, 3]
    assert worker_context.count_delivery("t-1:1") == 1
    ttl = worker_context.state.redis.ttl("leadsync:delivery:t-1:0")
    assert 0 < ttl <= 2 * 3600
    for i in range(REPORTS_KEPT + 5):
        worker_context.record_report({"job": "incremental", "n": i})
    stored = worker_context.state.redis.lrange(reports_key(), 0, -1)
    assert len(stored) == REPORTS_KEPT
    assert json.loads(stored[0])["n"] == REPORTS_KEPT + 4  # newest first
    assert worker_context.state.redis.ttl(reports_key()) > 0
