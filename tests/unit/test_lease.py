"""`Heartbeat` and `Leases` over the in-memory store's real locks (the Redis ones share the
state contract suite)."""

from __future__ import annotations

import time

import pytest

from leadsync.lease import Heartbeat, Leases, LockLost
from leadsync.state import InMemoryStateStore


def test_leases_are_taken_all_or_none_and_kept_alive_together() -> None:
    store = InMemoryStateStore()
    blocker = store.lock("job:chunk:b", 30)
    assert blocker.acquire()
    both = Leases(store.lock("job:chunk:a", 0.3), store.lock("job:chunk:b", 0.3))
    assert not both.acquire()
    assert store.lock("job:chunk:a", 0.3).acquire()  # the first one was given back
    blocker.release()
    store.clear()
    both = Leases(store.lock("job:chunk:a", 0.3),
                  store.lock("job:people", 0.3, shared=True))
    assert both.acquire() and both.ttl_seconds == 0.3
    with Heartbeat(both) as beat:
        time.sleep(1.0)  # three leases and more
        assert both.owned()
        assert not store.lock("job:chunk:a", 0.3).acquire()
        assert not store.lock("job:people", 0.3).acquire()  # the shared lease keeps it out
        beat.confirm()
    both.release()
    assert store.lock("job:people", 0.3).acquire()


def test_without_a_ttl_there_is_no_thread_and_confirm_still_proves_ownership() -> None:
    class Gone:
        def acquire(self, blocking: bool = False) -> bool:
            return True

        def extend(self) -> bool:
            return False

        def owned(self) -> bool:
            return False

        def release(self) -> None:
            pass

    with Heartbeat(Gone()) as beat:
        beat.check()  # no thread, nothing seen yet
        with pytest.raises(LockLost):
            beat.confirm()
        with pytest.raises(LockLost):
            beat.check()
    with Heartbeat(None) as free:  # no lock at all (dry runs, `plan_full`): never lost
        free.confirm()
        assert free.beats == 0
