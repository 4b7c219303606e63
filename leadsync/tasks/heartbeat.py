"""Heartbeats in Redis: beat's on every scheduler tick, each worker's on a timer, and the time
each message was sent (docs/operations.md, "Health").

Keys (JSON values, each with a TTL of `KEEP_INTERVALS` heartbeat intervals so a dead process's
key eventually disappears; `leadsync.tasks.health` reads them):
- `leadsync:heartbeat:beat`               {"at": unix time, "host", "pid"}
- `leadsync:heartbeat:worker:<nodename>`  {"at", "host", "pid", "held": messages held}
Every message published by a leadsync process carries the header `leadsync_sent_at` (unix
time), so the age of the oldest queued message can be read from the queue itself.

The worker's timer also renews the visibility of the messages it holds
(`leadsync.tasks.transport.QoS.renew`). A heartbeat that cannot be written (Redis away) is
logged and skipped: it must never stop beat or the worker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from typing import Any

import redis
from celery import bootsteps
from celery.beat import PersistentScheduler

from leadsync.tasks.transport import renew_interval

log = logging.getLogger("leadsync.tasks.heartbeat")

NAMESPACE = "leadsync"
BEAT_KEY = f"{NAMESPACE}:heartbeat:beat"
WORKER_PREFIX = f"{NAMESPACE}:heartbeat:worker:"
SENT_AT_HEADER = "leadsync_sent_at"
KEEP_INTERVALS = 20
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError, OSError)  # fmt: skip


def worker_key(nodename: str) -> str:
    return WORKER_PREFIX + nodename


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)


def write_heartbeat(client: redis.Redis, key: str, interval: float, **fields: Any) -> bool:
    """One heartbeat; False (logged) when Redis cannot take it."""
    value = {"at": round(time.time(), 3), "host": socket.gethostname(), "pid": os.getpid(),
             **fields}  # fmt: skip
    try:
        client.set(key, json.dumps(value), ex=max(1, int(interval * KEEP_INTERVALS)))
    except REDIS_ERRORS as exc:
        log.warning("heartbeat not written: Redis unavailable",
                    extra={"key": key, "error": type(exc).__name__})
        return False
    return True


def stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """`before_task_publish` handler: the message's send time, for the queue-age check."""
    if headers is not None and SENT_AT_HEADER not in headers:
        headers[SENT_AT_HEADER] = round(time.time(), 3)


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's file-backed beat scheduler that writes `BEAT_KEY` on every tick; beat ticks
    at least every heartbeat interval (`beat_max_loop_interval`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heartbeat_client: redis.Redis | None = None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay: float = super().tick(*args, **kwargs)
        if self._heartbeat_client is None:
            self._heartbeat_client = _client(self.app.conf.broker_url)
        write_heartbeat(self._heartbeat_client, BEAT_KEY, float(self.max_interval))
        return delay


class WorkerHeartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: every `interval` s write this worker's heartbeat; every
    `renew_interval(visibility)` s renew the visibility of the messages it holds."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._timers: list[Any] = []
        self._client: redis.Redis | None = None

    def start(self, parent: Any) -> None:
        conf = parent.app.conf
        self._worker = parent
        self._client = _client(conf.broker_url)
        interval = float(conf.leadsync_heartbeat_seconds)
        visibility = float(conf.broker_transport_options.get("visibility_timeout", 3600))
        self._interval = interval
        self.beat()
        self._timers = [parent.timer.call_repeatedly(interval, self.beat),
                        parent.timer.call_repeatedly(renew_interval(visibility), self.renew)]

    def stop(self, parent: Any) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        if self._client is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                self._client.delete(worker_key(parent.hostname))

    def _qos(self) -> Any:
        consumer = getattr(self._worker, "consumer", None)
        task_consumer = getattr(consumer, "task_consumer", None)
        channel = getattr(task_consumer, "channel", None)
        return getattr(channel, "qos", None)

    def beat(self) -> None:
        qos = self._qos()
        held = len(getattr(qos, "_delivered", ()) or ())
        assert self._client is not None
        write_heartbeat(self._client, worker_key(self._worker.hostname), self._interval,
                        held=held)

    def renew(self) -> None:
        qos = self._qos()
        if qos is None or not hasattr(qos, "renew"):
            return
        try:
            renewed = qos.renew()
        except REDIS_ERRORS as exc:
            log.warning("message visibility not renewed: Redis unavailable",
                        extra={"error": type(exc).__name__})
            return
        if renewed:
            log.debug("message visibility renewed", extra={"messages": renewed})
