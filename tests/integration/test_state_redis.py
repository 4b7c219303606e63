"""Redis-specific promises of the state store (db 13): bulk reads are one round trip, small
event hashes stay memory-lean, everything written has a TTL except the small cursor hash, and
`clear()` leaves other namespaces alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadsync.scoring.profile import Event
from leadsync.state import RedisStateStore

pytestmark = pytest.mark.redis
REDIS_URL = os.environ.get("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
T0 = datetime(2026, 11, 1, tzinfo=UTC)

redis = pytest.importorskip("redis")


class CountingConnection(redis.Connection):  # type: ignore[misc]
    """A real connection that counts the requests it sends (one per round trip)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def client() -> Iterator[Any]:
    c = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1)
    try:
        c.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}")
    c.flushdb()
    yield c
    c.flushdb()
    c.close()


def test_get_events_for_2000_records_is_one_round_trip(client: Any) -> None:
    store = RedisStateStore(client)
    keys = [f"hubspot:contact:{i}" for i in range(2000)]
    pipe = client.pipeline(transaction=False)
    for i, key in enumerate(keys):
        pipe.hset(
            f"leadsync:ev:{key}",
            f"e{i}",
            f'{{"t":"page_view","a":"2026-11-0{1 + i % 9}T00:00:00Z"}}',
        )
    pipe.execute()
    counting = redis.Redis(
        connection_pool=redis.ConnectionPool.from_url(
            REDIS_URL, decode_responses=True, connection_class=CountingConnection
        )
    )
    counted = RedisStateStore(counting)
    counting.ping()  # connect (and its handshake) outside the measurement
    CountingConnection.sent = 0
    got = counted.get_events(keys)
    assert CountingConnection.sent == 1
    assert len(got) == 2000 and all(len(v) == 1 for v in got.values())
    CountingConnection.sent = 0
    counted.get_fingerprints("written", keys)
    counted.known_task_keys(keys)
    counted.get_person_state(keys)
    assert CountingConnection.sent == 3
    counting.close()
    assert store.get_events(keys[:1])[keys[0]][0].type == "page_view"


def test_event_hashes_are_listpack_encoded(client: Any) -> None:
    store = RedisStateStore(client)
    events = {f"e{i}": Event("page_view", T0 + timedelta(hours=i)) for i in range(50)}
    store.add_events("hubspot:contact:1", events)
    assert client.object("encoding", "leadsync:ev:hubspot:contact:1") == "listpack"


def test_everything_written_expires_except_cursors(client: Any) -> None:
    store = RedisStateStore(client)
    store.set_cursor("hubspot:people", T0)
    store.set_fingerprints("written", {"a": "1"})
    store.add_events("a", {"e": Event("page_view", T0)})
    store.record_task_keys({"k": "00T1"})
    assert store.claim_task_key("claimed", 60)
    store.add_pending("hubspot", ["a"])
    store.set_person_state({"a": {"x": 1}})
    assert store.lock("job:x", 60).acquire()
    ttls = {key: client.ttl(key) for key in client.scan_iter("leadsync:*")}
    assert set(ttls) == {
        "leadsync:cursor", "leadsync:fp:written", "leadsync:ev:a", "leadsync:ev-index",
        "leadsync:task:k", "leadsync:task:claimed", "leadsync:pending:hubspot",
        "leadsync:person", "leadsync:lock:job:x",
    }  # fmt: skip
    assert ttls.pop("leadsync:cursor") == -1
    assert all(ttl > 0 for ttl in ttls.values()), ttls


def test_clear_only_touches_its_namespace(client: Any) -> None:
    ours, theirs = RedisStateStore(client, "leadsync"), RedisStateStore(client, "leadsync-other")
    client.set("celery-unrelated", "1")
    for store in (ours, theirs):
        store.set_cursor("c", T0)
    ours.clear()
    assert ours.get_cursor("c") is None
    assert theirs.get_cursor("c") == T0
    assert client.get("celery-unrelated") == "1"


def test_store_works_with_a_bytes_client(client: Any) -> None:
    raw = RedisStateStore(redis.Redis.from_url(REDIS_URL))
    raw.set_fingerprints("input", {"a": "f1"})
    raw.add_events("a", {"e": Event("email_open", T0)})
    raw.record_task_keys({"k": "1"})
    raw.add_pending("hubspot", ["a"])
    assert raw.get_fingerprints("input", ["a"]) == {"a": "f1"}
    assert raw.get_events(["a"])["a"] == [Event("email_open", T0)]
    assert raw.known_task_keys(["k"]) == {"k"}
    assert raw.get_pending("hubspot") == {"a"}
    assert raw.prune_events(T0 + timedelta(days=1)) == 1
