"""Keeping a job lock alive for as long as the job honestly works: a heartbeat thread.

A run holds one lease (`Lock`, with a ttl) for the whole cycle. `Heartbeat` renews it every
ttl/3 from a daemon thread, so a read phase of any length keeps it, and raises a flag the moment
a renewal fails (the lease expired or another process took it). The run looks at the flag at
every phase boundary and every page of records (`check`, free), and proves it still holds the
lease right before every CRM write or task create (`confirm`, one round trip): a holder that
lost it stops writing (RELIABILITY.md §1).
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from leadsync.state import Lock

log = logging.getLogger("leadsync.lease")

# The one lock of every job that writes for the people: the Celery incremental sync and SLA
# sweep, and `leadsync sync`. Two of them never run at once, whoever started them.
PEOPLE_LOCK = "job:people"


class Leases:
    """Several leases held as one `Lock` (e.g. a chunk's own lock and the shared people lock):
    acquired in order (all or none), extended together, lost when any is lost."""

    def __init__(self, *locks: Lock) -> None:
        self.locks = locks
        ttls = [getattr(lock, "ttl_seconds", None) for lock in locks]
        known = [float(t) for t in ttls if isinstance(t, int | float)]
        self.ttl_seconds = min(known) if known else None
        self.name = "+".join(str(getattr(lock, "name", "?")) for lock in locks)

    def acquire(self, blocking: bool = False) -> bool:
        taken: list[Lock] = []
        for lock in self.locks:
            if not lock.acquire(blocking=blocking):
                for held in reversed(taken):
                    held.release()
                return False
            taken.append(lock)
        return True

    def extend(self) -> bool:
        return all([lock.extend() for lock in self.locks])  # every one renewed, not short-cut

    def owned(self) -> bool:
        return all(lock.owned() for lock in self.locks)

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()


class LockLost(Exception):
    """Another process took over this job's lock: stop writing now."""


class Heartbeat:
    """Renews `lock` every `interval` seconds (default: its ttl / 3) while inside `with`."""

    def __init__(self, lock: Lock | None, interval: float | None = None) -> None:
        self.lock = lock
        ttl = getattr(lock, "ttl_seconds", None)
        self.interval = interval if interval is not None else (
            float(ttl) / 3 if isinstance(ttl, int | float) and ttl > 0 else None)
        self.beats = 0  # successful renewals by the thread
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def __enter__(self) -> Heartbeat:
        if self.lock is not None and self.interval is not None:
            self._thread = threading.Thread(target=self._beat, name="leadsync-heartbeat",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        assert self.lock is not None and self.interval is not None
        while not self._stop.wait(self.interval):
            if not self.lock.extend():
                self._lost.set()
                log.warning("job lock lost: heartbeat could not renew the lease",
                            extra={"lock": getattr(self.lock, "name", None)})
                return
            self.beats += 1

    def check(self) -> None:
        """Raise LockLost once the heartbeat saw the lease go (no I/O)."""
        if self._lost.is_set():
            raise LockLost

    def confirm(self) -> None:
        """Renew now and raise LockLost unless the lease is still ours: before every write."""
        self.check()
        if self.lock is not None and not self.lock.extend():
            self._lost.set()
            raise LockLost
