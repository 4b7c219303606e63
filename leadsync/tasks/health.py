"""Is scheduling alive? Read the heartbeats and the queue in Redis (`leadsync.tasks.heartbeat`)
and judge them: used by `leadsync health` (a container healthcheck) and `leadsync check`.

Three checks, each healthy or not, with one short detail:
- beat:   its last tick is at most 2 heartbeat intervals old;
- worker: at least one worker (on this host, with `host=`) beat at most 2 intervals ago;
- queue:  the oldest queued message is at most `max_queue_age_s` old (older: nobody takes work).
`read_status` does the Redis reads; `judge` is pure, so every state is tested without processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from leadsync.tasks.celery_app import QUEUE
from leadsync.tasks.heartbeat import BEAT_KEY, SENT_AT_HEADER, WORKER_PREFIX

COMPONENTS = ("beat", "worker", "queue")
STALE_AFTER_INTERVALS = 2
# kombu's Redis transport keeps one list per priority step: "<queue>", "<queue>\x06\x163", ...
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
_SCAN_LIMIT = 1000  # worker heartbeat keys read at most


@dataclass(frozen=True)
class Beat:
    name: str
    at: float
    host: str = ""
    held: int = 0


@dataclass(frozen=True)
class Status:
    """What Redis holds about scheduling at `now` (unix time)."""

    now: float
    beat: Beat | None = None
    workers: tuple[Beat, ...] = ()
    queued: int = 0
    oldest_sent_at: float | None = None  # None: queue empty, or its oldest message is unstamped


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    def line(self) -> str:
        """One line for a healthcheck log: the failing checks first."""
        failing = [c for c in self.checks if not c.ok]
        shown = failing or list(self.checks)
        word = "healthy" if not failing else "unhealthy"
        return f"{word}: " + "; ".join(f"{c.what} {c.detail}" for c in shown)


def queue_keys(queue: str = QUEUE) -> list[str]:
    return [queue, *(f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS)]


def _record(name: str, raw: Any) -> Beat | None:
    try:
        data = json.loads(raw)
        return Beat(name=name, at=float(data["at"]), host=str(data.get("host", "")),
                    held=int(data.get("held", 0)))  # fmt: skip
    except (TypeError, ValueError, KeyError):
        return None


def _sent_at(raw: Any) -> float | None:
    try:
        value = json.loads(raw)["headers"][SENT_AT_HEADER]
        return float(value)
    except (TypeError, ValueError, KeyError):
        return None


def read_status(client: Any, *, now: float | None = None) -> Status:
    """Heartbeats and the queue's oldest message; raises redis errors (unreachable)."""
    beat = _record("beat", client.get(BEAT_KEY))
    names = [k.decode() if isinstance(k, bytes) else str(k)
             for k in client.scan_iter(match=WORKER_PREFIX + "*", count=100)][:_SCAN_LIMIT]
    workers = []
    for key, raw in zip(names, client.mget(names) if names else [], strict=True):
        rec = _record(key.removeprefix(WORKER_PREFIX), raw)
        if rec is not None:
            workers.append(rec)
    queued, oldest = 0, None
    for key in queue_keys():
        length = int(client.llen(key))
        if not length:
            continue
        queued += length
        sent = _sent_at(client.lindex(key, -1))  # LPUSH in, BRPOP out: the tail is the oldest
        if sent is not None:
            oldest = sent if oldest is None else min(oldest, sent)
    return Status(now=time.time() if now is None else now, beat=beat,
                  workers=tuple(sorted(workers, key=lambda w: w.name)), queued=queued,
                  oldest_sent_at=oldest)  # fmt: skip


def _age(now: float, at: float) -> str:
    seconds = max(0, round(now - at))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def judge(
    status: Status,
    *,
    heartbeat_seconds: float,
    max_queue_age_s: float,
    only: Sequence[str] = COMPONENTS,
    host: str | None = None,
) -> Verdict:
    """The checks named in `only`, in COMPONENTS order. `host`: count only workers there."""
    stale = STALE_AFTER_INTERVALS * heartbeat_seconds
    limit = f"limit {round(stale)}s"
    now = status.now
    checks: list[Check] = []
    if "beat" in only:
        if status.beat is None:
            checks.append(Check("beat", False, "no heartbeat: beat is not running"))
        elif now - status.beat.at > stale:
            checks.append(Check("beat", False,
                                f"silent for {_age(now, status.beat.at)} ({limit})"))
        else:
            checks.append(Check("beat", True, f"ticked {_age(now, status.beat.at)} ago"))
    if "worker" in only:
        checks.append(_worker_check(status, stale, host))
    if "queue" in only:
        if not status.queued:
            checks.append(Check("queue", True, "empty"))
        elif status.oldest_sent_at is None:
            checks.append(Check("queue", True, f"{status.queued} queued"))
        else:
            age = now - status.oldest_sent_at
            detail = (f"{status.queued} queued, oldest {_age(now, status.oldest_sent_at)} old")
            if age > max_queue_age_s:
                checks.append(Check("queue", False, f"{detail} (limit "
                                                    f"{round(max_queue_age_s / 60)}m): no "
                                                    "worker takes work"))
            else:
                checks.append(Check("queue", True, detail))
    return Verdict(tuple(checks))


def _worker_check(status: Status, stale: float, host: str | None) -> Check:
    now = status.now
    mine = [w for w in status.workers if host is None or w.host == host]
    live = [w for w in mine if now - w.at <= stale]
    where = f" on {host}" if host is not None else ""
    if live:
        shown = ", ".join(f"{w.name} {_age(now, w.at)} ago" for w in live[:3])
        return Check("worker", True, f"{len(live)} live{where}: {shown}")
    if mine:
        last = max(w.at for w in mine)
        return Check("worker", False, f"no live worker{where}: last heartbeat "
                                      f"{_age(now, last)} ago (limit {round(stale)}s)")
    return Check("worker", False, f"no live worker{where}: no heartbeat")


def unreachable(reason: str) -> Verdict:
    """Nothing can be judged without Redis: one failing check says why."""
    return Verdict((Check("redis", False, reason),))
