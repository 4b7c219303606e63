"""Two workers routing through one pool on a real Redis never hand out the same turn:
1,000 MQLs give each rep its weighted share within one, and capacity is never exceeded
(docs/routing.md). Each worker has its own connection, as two Celery workers would."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from leadsync.state import RedisStateStore

pytestmark = pytest.mark.redis
REDIS_URL = os.environ.get("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
POOL = (("a@example.com", 2), ("b@example.com", 1), ("c@example.com", 1))


@pytest.fixture
def stores() -> Iterator[Callable[[], RedisStateStore]]:
    redis = pytest.importorskip("redis")
    clients = []

    def one() -> RedisStateStore:
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1)
        clients.append(client)
        return RedisStateStore(client, namespace="leadsync-routing-test")

    first = one()
    try:
        first.redis.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}")
    first.clear()
    try:
        yield one
    finally:
        first.clear()
        for client in clients:
            client.close()


def run_two(work: Callable[[RedisStateStore, int], None],
            stores: Callable[[], RedisStateStore]) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        store = stores()
        barrier.wait()
        try:
            work(store, index)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_two_workers_1000_mqls_shares_within_one(
        stores: Callable[[], RedisStateStore]) -> None:
    got: dict[str, str | None] = {}

    def work(store: RedisStateStore, index: int) -> None:
        for i in range(index, 1000, 2):  # the workers interleave over the 1,000 people
            got[f"p-{i}"] = store.take_turn("kanto", f"p-{i}", POOL, None)

    run_two(work, stores)
    shares = Counter(got.values())
    assert sum(shares.values()) == 1000
    assert abs(shares["a@example.com"] - 500) < 1
    assert abs(shares["b@example.com"] - 250) < 1
    assert abs(shares["c@example.com"] - 250) < 1
    assert stores().route_counts("kanto") == {
        "a@example.com": (500, 500), "b@example.com": (250, 250), "c@example.com": (250, 250)}


def test_two_workers_never_exceed_capacity_while_reps_close_leads(
        stores: Callable[[], RedisStateStore]) -> None:
    """Capacity 40 per rep; each worker closes a person it routed five turns ago. Every
    count read during the run is within capacity; the turns handed out equal the people
    routed, none twice."""
    got: dict[str, str | None] = {}
    over: list[tuple[str, int]] = []

    def work(store: RedisStateStore, index: int) -> None:
        mine: list[str] = []
        for i in range(index, 1000, 2):
            person = f"p-{i}"
            rep = store.take_turn("kanto", person, POOL, 40)
            got[person] = rep
            if rep is not None:
                mine.append(person)
            if len(mine) > 5 and i % 3 == 0:  # the rep closed it (recycled, opportunity)
                store.set_open_owners({mine.pop(0): None})
            if i % 50 == index:
                over.extend((m, o) for m, (_, o) in store.route_counts("kanto").items()
                            if o > 40)

    run_two(work, stores)
    counts = stores().route_counts("kanto")
    routed = [rep for rep in got.values() if rep is not None]
    assert over == []
    assert sum(served for served, _ in counts.values()) == len(routed)
    assert all(opened <= 40 for _, opened in counts.values())
    assert Counter(routed) == Counter({m: s for m, (s, _) in counts.items()})


def test_hand_assigned_people_are_counted_and_capacity_holds_for_two_workers(
        stores: Callable[[], RedisStateStore]) -> None:
    """Capacity 300; a has 200 open MQLs assigned by hand, b 280, c none. Two workers route
    1,000 MQLs: a can take 100 more, b 20, c 300, then the pool is full (580 get no turn).
    Meanwhile each worker keeps setting the hand-assigned people again (as every page of a
    cycle does): they are counted once. No count read during the run exceeds 300."""
    first = stores()
    hand = {f"h-a-{i}": "a@example.com" for i in range(200)}
    hand |= {f"h-b-{i}": "b@example.com" for i in range(280)}
    assert first.set_open_owners(hand) == 480
    got: dict[str, str | None] = {}
    over: list[tuple[str, int]] = []

    def work(store: RedisStateStore, index: int) -> None:
        for i in range(index, 1000, 2):
            got[f"p-{i}"] = store.take_turn("kanto", f"p-{i}", POOL, 300)
            if i % 100 == index:
                store.set_open_owners(hand)
                loads = store.owner_loads([m for m, _ in POOL])
                over.extend((m, n) for m, n in loads.items() if n > 300)

    run_two(work, stores)
    assert over == []
    assert Counter(got.values()) == Counter({"a@example.com": 100, "b@example.com": 20,
                                             "c@example.com": 300, None: 580})
    assert stores().route_counts("kanto") == {
        "a@example.com": (100, 300), "b@example.com": (20, 300), "c@example.com": (300, 300)}
    assert len(stores().open_owners()) == 900
