"""`leadsync health` and `leadsync check`'s scheduling rows against a real Redis
(LEADSYNC_TEST_REDIS_URL), with the heartbeats and queue entries the processes write."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from leadsync.cli import cli
from leadsync.tasks.heartbeat import BEAT_KEY, stamp_sent_at, worker_key, write_heartbeat

pytestmark = pytest.mark.redis
REDIS_URL = os.environ.get("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    redis = pytest.importorskip("redis")
    c = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1)
    try:
        c.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable: {type(exc).__name__}")
    for key in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LEADSYNC_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("LEADSYNC_HEARTBEAT_SECONDS", "10")
    c.flushdb()
    yield c
    c.flushdb()
    c.close()


def health(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["health", *args], catch_exceptions=False)
    out = result.output.strip()
    return result.exit_code, json.loads(out) if "--json" in args else out


def beat_alive(client: Any, age: float = 0.0) -> None:
    write_heartbeat(client, BEAT_KEY, 10)
    if age:
        client.set(BEAT_KEY, json.dumps({"at": time.time() - age, "host": "h", "pid": 1}))


def test_nothing_running_is_unhealthy_in_one_line(client: Any) -> None:
    code, line = health()
    assert code == 1
    assert line == ("unhealthy: beat no heartbeat: beat is not running; "
                    "worker no live worker: no heartbeat")


def test_beat_and_worker_alive_and_queue_empty_is_healthy(client: Any) -> None:
    beat_alive(client)
    write_heartbeat(client, worker_key("celery@w1"), 10, held=0)
    code, out = health("--json")
    assert code == 0 and out["ok"] is True and out["exit_code"] == 0
    assert [(c["what"], c["ok"]) for c in out["checks"]] == [
        ("beat", True), ("worker", True), ("queue", True)]
    assert out["line"].startswith("healthy: beat ticked 0s ago; worker 1 live: celery@w1 0s ago")
    assert (out["outcome"], out["stopped_reason"], out["failed"], out["errors"]) == (
        "done", None, {}, [])


def test_stale_beat_and_old_queued_work(client: Any) -> None:
    beat_alive(client, age=21)  # 2 intervals of 10 s, and one more second
    write_heartbeat(client, worker_key("celery@w1"), 10)
    headers: dict[str, Any] = {}
    stamp_sent_at(headers=headers)
    headers["leadsync_sent_at"] -= 16 * 60
    client.lpush("leadsync", json.dumps({"headers": headers, "body": ""}))
    code, line = health()
    assert code == 1
    assert line == ("unhealthy: beat silent for 21s (limit 20s); queue 1 queued, oldest 16m old "
                    "(limit 15m): no worker takes work")
    assert health("--only", "worker")[0] == 0
    assert health("--only", "queue", "--max-queue-age", "17")[0] == 0


def test_local_only_counts_this_hosts_worker(client: Any) -> None:
    client.set(worker_key("celery@elsewhere"),
               json.dumps({"at": time.time(), "host": "elsewhere", "pid": 1}))
    assert health("--only", "worker")[0] == 0
    code, line = health("--only", "worker", "--local")
    assert code == 1
    assert line == f"unhealthy: worker no live worker on {socket.gethostname()}: no heartbeat"


def test_bad_settings_and_unreachable_redis_are_exit_1_and_named(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADSYNC_JOB_LOCK_SECONDS", "900")
    code, line = health()
    assert code == 1 and line.startswith("unhealthy: settings: invalid settings: "
                                         "LEADSYNC_JOB_LOCK_SECONDS (900) must be less than")
    monkeypatch.delenv("LEADSYNC_JOB_LOCK_SECONDS")
    monkeypatch.setenv("LEADSYNC_REDIS_URL", "redis://127.0.0.1:1/0")
    assert health() == (1, "unhealthy: redis unreachable (ConnectionError)")


def test_check_lists_the_scheduling_rows(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`leadsync check` with both CRMs and Redis: the scheduling rows follow the Redis row, and
    a missing worker is exit 1 until its heartbeat appears."""
    from leadsync.sandbox import Sandbox

    with Sandbox(contacts=20, seed=3) as sb:
        for key, value in sb.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("LEADSYNC_REDIS_URL", REDIS_URL)
        beat_alive(client)
        result = CliRunner().invoke(cli, ["check", "--json"], catch_exceptions=False)
        out = json.loads(result.output.strip().splitlines()[-1])
        assert result.exit_code == 1
        assert [(c["what"], c["ok"]) for c in out["checks"]] == [
            ("settings", True), ("rules file", True), ("hubspot", True), ("salesforce", True),
            ("redis", True), ("beat", True), ("worker", False), ("queue", True)]
        assert out["errors"] == ["worker: no live worker: no heartbeat"]
        write_heartbeat(client, worker_key("celery@w1"), 10)
        again = CliRunner().invoke(cli, ["check", "--json"], catch_exceptions=False)
        assert again.exit_code == 0, again.output


def test_published_messages_carry_their_send_time(client: Any) -> None:
    """A message sent through leadsync's app is stamped, so the queue check can age it."""
    from leadsync.config.settings import Settings
    from leadsync.tasks.celery_app import TASK_SLA, create_app
    from leadsync.tasks.health import read_status

    before = time.time()
    create_app(Settings(redis_url=REDIS_URL)).send_task(TASK_SLA)
    status = read_status(client)
    assert status.queued == 1
    assert status.oldest_sent_at is not None and before <= status.oldest_sent_at <= time.time()
    beat_alive(client)
    write_heartbeat(client, worker_key("celery@w1"), 10)
    code, line = health("--only", "queue")
    assert code == 0 and line == "healthy: queue 1 queued, oldest 0s old"
