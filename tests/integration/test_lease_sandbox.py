"""A read phase three times longer than the lock's lease, against the sandbox with a latency
fault, through the real SDKs and the Redis lock: the heartbeat keeps the lease, the cycle writes,
and a second runner trying meanwhile is refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.lease import PEOPLE_LOCK
from leadsync.pipeline import _Cycle, run_job
from leadsync.runtime import build_runtime
from leadsync.sandbox import Faults, Sandbox
from tests.redis_support import redis_store

pytestmark = pytest.mark.redis
LEASE = 0.5


@pytest.fixture
def store() -> Iterator[object]:
    with redis_store("leadsync-lease-test") as state:
        yield state


def test_a_slow_first_read_keeps_its_lease_and_writes(store: object,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    read_phase: list[float] = []
    original = _Cycle.evaluate

    def timed(self: _Cycle, candidates: object) -> object:
        read_phase.append(time.monotonic())  # the reads are over when evaluation starts
        return original(self, candidates)  # type: ignore[arg-type]

    monkeypatch.setattr(_Cycle, "evaluate", timed)
    with Sandbox(contacts=40, seed=3) as sb, environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        settings = load_settings().model_copy(update={"redis_url": None})
        rt = build_runtime(settings, state=store, clock=sb.now)  # type: ignore[arg-type]
        sb.set_faults(Faults(latency_ms=120))
        lock = store.lock(PEOPLE_LOCK, LEASE)  # type: ignore[attr-defined]
        assert lock.acquire()
        refused: list[bool] = []

        def second_runner() -> None:
            time.sleep(3 * LEASE)
            refused.append(not store.lock(PEOPLE_LOCK, LEASE).acquire())  # type: ignore[attr-defined]

        other = threading.Thread(target=second_runner)
        started = time.monotonic()
        other.start()
        report = run_job(rt, "full", lock=lock)
        other.join()
        assert read_phase[0] - started >= 3 * LEASE
        assert report.stopped_reason is None and not report.failed
        written = sum(report.records_written.values())
        assert written == report.records_read["hubspot"] + report.records_read["salesforce"]
        assert refused == [True]
        assert lock.owned()
        lock.release()
