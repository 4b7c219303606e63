"""End-to-end harness: the sandbox in-process, REAL `celery worker` and `celery beat`
subprocesses on Redis database 14, and bounded polling of what they did.

Every job a worker finishes is summarised in the Redis list `leadsync:reports` (see
`leadsync.tasks.worker`), so tests read outcomes from the same place an operator would; the
sandbox's own counters (`records_written`, `tasks_created`, `duplicate_task_keys`) are the
ground truth of what reached the CRMs. Subprocesses run in their own sessions and are always
killed (whole process group) at teardown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

E2E_REDIS_URL = os.environ.get("LEADSYNC_E2E_REDIS_URL", "redis://127.0.0.1:6379/14")
T = TypeVar("T")


def e2e_env(sandbox_env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """Process environment for worker/beat: the sandbox's credentials, db 14, short intervals
    and limits small enough that a killed worker's lock and message come back within a test."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
    far_hour = (datetime.now(UTC).hour + 12) % 24  # the nightly job must not fire mid-test
    env = {
        **base,
        **sandbox_env,
        "LEADSYNC_REDIS_URL": E2E_REDIS_URL,
        "LEADSYNC_SYNC_INTERVAL_SECONDS": "10",
        "LEADSYNC_SLA_SWEEP_SECONDS": "30",
        "LEADSYNC_FULL_REEVALUATION_HOUR_UTC": str(far_hour),
        "LEADSYNC_JOB_LOCK_SECONDS": "15",
        "LEADSYNC_TASK_TIME_LIMIT_SECONDS": "50",
        "LEADSYNC_BROKER_VISIBILITY_TIMEOUT_SECONDS": "60",
        "LEADSYNC_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    """Poll `probe` until it returns something truthy; fail the test naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def redis_client() -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(E2E_REDIS_URL, decode_responses=True, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis not reachable at {E2E_REDIS_URL}: {type(exc).__name__}")
    return client


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Cluster:
    """Celery worker and beat processes for one test, plus the Redis they share."""

    env: dict[str, str]
    tmp: Path
    redis: Any
    procs: list[Proc] = field(default_factory=list)

    def _spawn(self, name: str, argv: list[str]) -> Proc:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "leadsync.tasks", *argv],
                env=self.env,
                cwd=self.tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL takes the pool too
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, concurrency: int = 1) -> Proc:
        return self._spawn(name, [
            "worker", "-n", f"{name}@%h", f"--concurrency={concurrency}", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ])  # fmt: skip

    def beat(self, name: str) -> Proc:
        return self._spawn(name, [
            "beat", "--loglevel=INFO", f"--schedule={self.tmp / (name + '-schedule')}",
            f"--pidfile={self.tmp / (name + '.pid')}",
        ])  # fmt: skip

    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (main process and pool children) and reap it."""
        if proc.alive():
            with suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, sig)
        try:
            proc.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.alive():
                self.kill(proc, signal.SIGTERM)
        for proc in self.procs:
            self.kill(proc, signal.SIGKILL)  # pool children that outlived their parent

    def reports(self) -> list[dict[str, Any]]:
        """Job summaries recorded by the workers, oldest first."""
        raw = self.redis.lrange("leadsync:reports", 0, -1)
        return [json.loads(r) for r in reversed(raw)]

    def check_alive(self) -> None:
        for proc in self.procs:
            if not proc.alive() and proc.popen.returncode not in (-signal.SIGKILL, -9):
                pytest.fail(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")

    def diagnostics(self) -> str:
        return "\n\n".join(f"--- {p.name} ---\n{p.tail(60)}" for p in self.procs)


@contextmanager
def cluster(sandbox_env: Mapping[str, str], tmp: Path, **env: str) -> Iterator[Cluster]:
    client = redis_client()
    client.flushdb()
    run = Cluster(e2e_env(sandbox_env, **env), tmp, client)
    try:
        yield run
    except BaseException:
        print(run.diagnostics())  # shown by pytest for the failing test only
        raise
    finally:
        run.stop_all()
        client.flushdb()
        client.close()


# -- reading outcomes --------------------------------------------------------------------


def total(counts: Mapping[str, int] | None) -> int:
    return sum((counts or {}).values())


def completed(reports: list[dict[str, Any]], job: str = "incremental") -> list[dict[str, Any]]:
    """Runs of `job` that went to the end (not skipped, not stopped early)."""
    return [
        r
        for r in reports
        if r.get("job") == job and not r.get("skipped") and r.get("stopped_reason") is None
    ]


def quiet_after_work(reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first completed incremental run that wrote and created nothing and that follows a
    completed run that did evaluate people: "a second cycle that writes nothing"."""
    runs = completed(reports)
    for i, run in enumerate(runs):
        worked_before = i > 0 and any(r.get("people") for r in runs[:i])
        quiet = total(run.get("records_written")) == 0 and total(run.get("tasks_created")) == 0
        if worked_before and quiet:
            return run
    return None


def sandbox_totals(stats: Mapping[str, Any]) -> dict[str, int]:
    systems = ("hubspot", "salesforce")
    return {
        "records_written": sum(stats[s]["records_written"] for s in systems),
        "tasks_created": sum(stats[s]["tasks_created"] for s in systems),
        "duplicate_task_keys": sum(stats[s]["duplicate_task_keys"] for s in systems)
        + stats.get("duplicate_task_keys_across_systems", 0),
    }


def settings_for(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Settings built from the sandbox env alone (this process's LEADSYNC_* are masked)."""
    from leadsync.config.settings import load_settings

    for key in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("LEADSYNC_") and key != "LEADSYNC_REDIS_URL":
            monkeypatch.setenv(key, value)
    return load_settings()


def crm_snapshot(settings: Any) -> dict[str, dict[str, Any]]:
    """What leadsync wrote, as both CRMs return it through leadsync's own connectors:
    record key -> {"current": written fields by logical name, "links": linked record keys}.
    Reads only; writes nothing."""
    from leadsync.connectors import build_connectors

    out: dict[str, dict[str, Any]] = {}
    for conn in build_connectors(settings):
        for rec in conn.iter_changed_people(None):
            out[rec.ref.key] = {"current": dict(rec.current), "links": [r.key for r in rec.links]}
    return out
