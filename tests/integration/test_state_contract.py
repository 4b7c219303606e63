"""One contract suite for both state stores: the in-memory fake must behave like Redis.

The Redis store runs against database 13 (LEADSYNC_TEST_REDIS_URL), flushed before and after;
the Redis half skips with the reason when no server answers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from leadsync.scoring.profile import Event
from leadsync.state import InMemoryStateStore, RedisStateStore, StateStore

REDIS_URL = os.environ.get("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def _redis_client():  # type: ignore[no-untyped-def]
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}")
    return client


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield InMemoryStateStore()
        return
    client = _redis_client()
    client.flushdb()
    try:
        yield RedisStateStore(client, namespace="leadsync-test")
    finally:
        client.flushdb()
        client.close()


def ev(kind: str, minutes: float, **props: str) -> Event:
    return Event(kind, T0 + timedelta(minutes=minutes), MappingProxyType(props), "hubspot")


def test_cursor_roundtrip_keeps_aware_utc(store: StateStore) -> None:
    assert store.get_cursor("hubspot:people") is None
    jst = datetime(2026, 11, 2, 4, 0, 0, 123000, tzinfo=timezone(timedelta(hours=9)))
    store.set_cursor("hubspot:people", jst)
    store.set_cursor("salesforce:engagement", T0)
    assert store.get_cursor("salesforce:engagement") == T0
    assert store.get_cursor("salesforce:engagement").tzinfo is not None  # type: ignore[union-attr]
    assert store.get_cursor("hubspot:people") == datetime(2026, 11, 1, 19, 0, 0, 123000, tzinfo=UTC)


def test_naive_cursor_is_refused_with_a_clear_error(store: StateStore) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        store.set_cursor("hubspot:people", datetime(2026, 11, 1))


def test_fingerprints_return_only_known_keys_per_kind(store: StateStore) -> None:
    store.set_fingerprints("written", {"hubspot:contact:1": "a1", "hubspot:contact:2": "b2"})
    store.set_fingerprints("input", {"hubspot:contact:1": "zz"})
    store.set_fingerprints("written", {"hubspot:contact:2": "b3"})
    got = store.get_fingerprints("written", ["hubspot:contact:1", "hubspot:contact:2", "x"])
    assert got == {"hubspot:contact:1": "a1", "hubspot:contact:2": "b3"}
    assert store.get_fingerprints("input", ["hubspot:contact:1"]) == {"hubspot:contact:1": "zz"}
    assert store.get_fingerprints("written", []) == {}


def test_events_are_deduped_by_id_sorted_and_roundtrip(store: StateStore) -> None:
    store.add_events("hubspot:contact:1", {"e2": ev("form_submit", 5, form="demo_request")})
    store.add_events(
        "hubspot:contact:1",
        {
            "e1": ev("page_view", 0, url="https://x.example/料金?q=1"),
            "e2": ev("form_submit", 5, form="demo_request"),
        },
    )
    store.add_events("salesforce:Lead:00Q1", {"t1": Event("sales_touch", T0, source=None)})
    got = store.get_events(["hubspot:contact:1", "salesforce:Lead:00Q1", "hubspot:contact:9"])
    assert [e.type for e in got["hubspot:contact:1"]] == ["page_view", "form_submit"]
    assert got["hubspot:contact:1"][0] == ev("page_view", 0, url="https://x.example/料金?q=1")
    assert got["hubspot:contact:1"][0].at.tzinfo is not None
    assert got["salesforce:Lead:00Q1"] == [Event("sales_touch", T0)]
    assert got["hubspot:contact:9"] == []


def test_prune_drops_only_events_older_than_before(store: StateStore) -> None:
    store.add_events("a", {"old": ev("page_view", -100), "new": ev("page_view", 10)})
    store.add_events("b", {"old1": ev("email_open", -200), "old2": ev("email_open", -150)})
    store.add_events("c", {"edge": ev("email_open", 0)})
    assert store.prune_events(T0) == 3
    got = store.get_events(["a", "b", "c"])
    assert [e.at for e in got["a"]] == [T0 + timedelta(minutes=10)]
    assert got["b"] == []
    assert len(got["c"]) == 1  # exactly at `before` is kept
    assert store.prune_events(T0) == 0
    # a record pruned empty accepts events again and they are pruned again later
    store.add_events("b", {"again": ev("email_open", -1)})
    assert store.prune_events(T0) == 1


def test_events_of_many_records_at_once_are_the_same_as_one_by_one(store: StateStore) -> None:
    many = {f"hubspot:contact:{i}": {f"e{i}": ev("page_view", i), f"old{i}": ev("page_view", -5)}
            for i in range(1, 1203)}  # more than one Redis page of 500 records
    many["hubspot:contact:0"] = {}  # a record with nothing new is left alone
    store.add_events("hubspot:contact:1", {"e1": ev("page_view", 1), "x": ev("email_open", 2)})
    store.add_events_many(many)
    got = store.get_events(list(many))
    assert got["hubspot:contact:0"] == []
    assert [e.type for e in got["hubspot:contact:1"]] == ["page_view", "page_view", "email_open"]
    assert all(len(got[f"hubspot:contact:{i}"]) == 2 for i in range(2, 1203))
    assert store.prune_events(T0) == 1202  # every record's old event is in the prune index
    assert all(len(events) == 1 for key, events in store.get_events(list(many)).items()
               if key not in ("hubspot:contact:0", "hubspot:contact:1"))


def test_task_ledger_claim_is_exclusive_until_release_or_record(store: StateStore) -> None:
    key = "p-1|mql|2026-11-01T10:00:00Z|due_soon"
    assert store.claim_task_key(key, 30)
    assert not store.claim_task_key(key, 30)
    store.release_task_key(key)
    assert store.claim_task_key(key, 30)
    assert store.known_task_keys([key]) == set()  # claimed is not known
    store.record_task_keys({key: "00T000000000001"})
    assert store.known_task_keys([key, "other"]) == {key}
    assert not store.claim_task_key(key, 30)
    store.release_task_key(key)  # releasing never forgets a recorded task
    assert store.known_task_keys([key]) == {key}
    assert not store.claim_task_key(key, 30)


def test_claim_expires_after_its_ttl(store: StateStore) -> None:
    assert store.claim_task_key("k", 0.15)
    assert not store.claim_task_key("k", 0.15)
    time.sleep(0.3)
    assert store.claim_task_key("k", 0.15)


def test_claim_race_has_exactly_one_winner(store: StateStore) -> None:
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        wins.append(store.claim_task_key("race", 10))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_pending_sets_per_system(store: StateStore) -> None:
    assert store.get_pending("hubspot") == set()
    store.add_pending("hubspot", ["hubspot:contact:1", "hubspot:contact:2"])
    store.add_pending("salesforce", ["salesforce:Lead:1"])
    store.add_pending("hubspot", [])
    store.remove_pending("hubspot", ["hubspot:contact:1", "hubspot:contact:404"])
    assert store.get_pending("hubspot") == {"hubspot:contact:2"}
    assert store.get_pending("salesforce") == {"salesforce:Lead:1"}


def test_pending_sets_asked_a_page_at_a_time_copied_and_dropped(store: StateStore) -> None:
    """A set too large for the process: which keys of a page it has, a union in the store."""
    store.add_pending("hubspot", ["hubspot:contact:1", "hubspot:contact:2"])
    store.add_pending("run", ["salesforce:Lead:9"])
    assert store.pending_among("run", []) == set()
    assert store.pending_among("nothing", ["hubspot:contact:1"]) == set()
    store.copy_pending("hubspot", "run")
    store.copy_pending("absent", "run")  # an empty source changes nothing
    store.copy_pending("absent", "none")  # nor creates a set
    assert store.get_pending("none") == set()
    assert store.get_pending("run") == {"hubspot:contact:1", "hubspot:contact:2",
                                        "salesforce:Lead:9"}
    assert store.get_pending("hubspot") == {"hubspot:contact:1", "hubspot:contact:2"}
    assert store.pending_among("run", ["hubspot:contact:2", "hubspot:contact:3",
                                       "salesforce:Lead:9"]) == {"hubspot:contact:2",
                                                                 "salesforce:Lead:9"}
    store.drop_pending("run")
    assert store.get_pending("run") == set()
    assert store.get_pending("hubspot") == {"hubspot:contact:1", "hubspot:contact:2"}
    store.drop_pending("run")  # twice: nothing to drop


def test_person_state_roundtrips_json(store: StateStore) -> None:
    state: dict[str, object] = {"stage_entered_at": "2026-11-01T10:00:00Z", "score_at_mql": 85}
    store.set_person_state({"p-1": state, "p-2": {"note": "日本語 🚀", "nested": {"a": [1, None]}}})
    got = store.get_person_state(["p-1", "p-2", "p-3"])
    assert got == {"p-1": state, "p-2": {"note": "日本語 🚀", "nested": {"a": [1, None]}}}


def test_person_state_that_is_not_json_names_the_key(store: StateStore) -> None:
    from leadsync.state import StateError

    with pytest.raises(StateError, match="p-9"):
        store.set_person_state({"p-9": {"when": object()}})


def test_alias_table_maps_record_keys_to_person_keys(store: StateStore) -> None:
    assert store.get_person_keys([]) == {}
    assert store.get_person_keys(["salesforce:Lead:00Q1"]) == {}
    store.set_person_keys({"salesforce:Lead:00Q1": "p-a", "hubspot:contact:7": "p-a"})
    store.set_person_keys({"salesforce:Contact:0031": "p-a", "hubspot:contact:7": "p-b"})
    store.set_person_keys({})
    got = store.get_person_keys(["salesforce:Lead:00Q1", "salesforce:Contact:0031",
                                 "hubspot:contact:7", "hubspot:contact:8"])
    assert got == {"salesforce:Lead:00Q1": "p-a", "salesforce:Contact:0031": "p-a",
                   "hubspot:contact:7": "p-b"}  # the last write of a record key wins
    store.clear()
    assert store.get_person_keys(["salesforce:Lead:00Q1", "hubspot:contact:7"]) == {}


def test_lock_is_exclusive_extends_and_reports_loss(store: StateStore) -> None:
    first = store.lock("job:incremental", 0.3)
    second = store.lock("job:incremental", 0.3)
    assert first.acquire()
    assert first.owned()
    assert not second.acquire()
    assert first.extend()
    time.sleep(0.45)  # the lease runs out
    assert not first.owned()
    assert second.acquire()
    assert not first.extend()  # the old holder learns it lost the lease
    first.release()  # releasing a lost lease leaves the new holder alone
    assert second.owned()
    second.release()
    assert not second.owned()
    assert store.lock("job:incremental", 5).acquire()
    assert store.lock("job:other", 5).acquire()  # locks are per name


def test_blocking_acquire_waits_for_release(store: StateStore) -> None:
    holder = store.lock("job:sla", 5)
    assert holder.acquire()
    threading.Timer(0.2, holder.release).start()
    waiter = store.lock("job:sla", 5)
    started = time.monotonic()
    assert waiter.acquire(blocking=True)
    assert 0.1 < time.monotonic() - started < 3


def test_clear_wipes_everything(store: StateStore) -> None:
    store.set_cursor("c", T0)
    store.set_fingerprints("written", {"a": "1"})
    store.add_events("a", {"e": ev("page_view", 0)})
    store.record_task_keys({"k": "1"})
    assert store.claim_task_key("claimed", 60)
    store.add_pending("hubspot", ["a"])
    store.set_person_state({"a": {"x": 1}})
    lock = store.lock("job:x", 60)
    assert lock.acquire()
    store.clear()
    assert store.get_cursor("c") is None
    assert store.get_fingerprints("written", ["a"]) == {}
    assert store.get_events(["a"]) == {"a": []}
    assert store.known_task_keys(["k"]) == set()
    assert store.claim_task_key("claimed", 60)
    assert store.get_pending("hubspot") == set()
    assert store.get_person_state(["a"]) == {}
    assert store.lock("job:x", 60).acquire()
    assert not lock.extend()


def test_held_events_are_kept_until_dropped_and_cleared(store: StateStore) -> None:
    assert store.get_held_events() == {}
    store.hold_events({"email:1": '{"h":"a"}', "form:2": '{"h":"b"}'})
    store.hold_events({"email:1": '{"h":"a2"}'})  # same id: replaced, not doubled
    assert store.get_held_events() == {"email:1": '{"h":"a2"}', "form:2": '{"h":"b"}'}
    store.drop_held_events(["email:1", "never-held"])
    assert store.get_held_events() == {"form:2": '{"h":"b"}'}
    store.clear()
    assert store.get_held_events() == {}


def test_heartbeat_keeps_a_lease_three_times_its_ttl_and_flags_its_loss(store: StateStore
                                                                         ) -> None:
    from leadsync.lease import Heartbeat, LockLost

    lock = store.lock("job:people", 0.3)
    assert lock.acquire()
    with Heartbeat(lock) as beat:
        time.sleep(0.9)  # three leases long
        assert not store.lock("job:people", 0.3).acquire()  # still held: refused
        beat.confirm()
        assert beat.beats >= 2
        store.clear()  # the lease disappears (a Redis wipe)
        time.sleep(0.25)
        with pytest.raises(LockLost):
            beat.check()
    assert beat.lost


def test_shared_leases_coexist_and_exclude_the_exclusive_one(store: StateStore) -> None:
    first = store.lock("job:people", 0.4, shared=True)
    second = store.lock("job:people", 0.4, shared=True)
    writer = store.lock("job:people", 0.4)
    assert first.acquire() and second.acquire()
    assert first.owned() and second.owned()
    assert not writer.acquire()  # refused while any shared holder is live
    first.release()
    assert not writer.acquire()
    assert second.extend()
    second.release()
    assert writer.acquire()  # all shared holders gone
    third = store.lock("job:people", 0.4, shared=True)
    assert not third.acquire()  # refused while the exclusive one is held
    writer.release()
    assert third.acquire()
    time.sleep(0.5)  # a crashed shared holder blocks the exclusive one only until its lease ends
    assert not third.owned() and not third.extend()
    assert writer.acquire()


POOL = (("a@example.com", 2), ("b@example.com", 1), ("c@example.com", 1))


def test_routing_turns_follow_the_weights_and_stick_to_the_person(store: StateStore) -> None:
    got = [store.take_turn("kanto", f"p-{i}", POOL, None) for i in range(8)]
    assert got == ["a@example.com", "b@example.com", "c@example.com", "a@example.com",
                   "a@example.com", "b@example.com", "c@example.com", "a@example.com"]
    assert store.take_turn("kanto", "p-1", POOL, None) == "b@example.com"  # a retry: same rep
    assert store.route_counts("kanto") == {"a@example.com": (4, 4), "b@example.com": (2, 2),
                                           "c@example.com": (2, 2)}
    assert store.route_counts("other") == {}


def test_routing_capacity_counts_every_open_person_and_closing_frees_it(
        store: StateStore) -> None:
    pair = (("a@example.com", 1), ("b@example.com", 1))
    assert store.set_open_owners({"hand-1": "b@example.com"}) == 1  # assigned by hand
    got = [store.take_turn("p", f"p-{i}", pair, 2) for i in range(4)]
    assert got == ["a@example.com", "b@example.com", "a@example.com", None]
    assert store.release_routes(["p-0", "p-0", "nobody"]) == 1  # no turn needed: still open
    assert store.take_turn("p", "p-9", pair, 2) is None
    assert store.set_open_owners({"p-0": None, "hand-1": None, "gone": None}) == 2  # closed
    assert store.take_turn("p", "p-9", pair, 2) == "b@example.com"
    assert store.route_counts("p") == {"a@example.com": (2, 1), "b@example.com": (2, 2)}


@pytest.mark.parametrize(("steps", "loads"), [
    ([{"x": "a"}], {"a": 1, "b": 0}),
    ([{"x": "a"}, {"x": "a"}], {"a": 1, "b": 0}),  # the same again: counted once
    ([{"x": "a"}, {"x": "b"}], {"a": 0, "b": 1}),  # the owner changed
    ([{"x": "a", "y": "a"}, {"x": None}], {"a": 1, "b": 0}),  # x closed
    ([{"x": "a"}, {"x": ""}], {"a": 0, "b": 0}),  # "" is nobody too
    ([{"x": None}], {"a": 0, "b": 0}),  # never counted: nothing to close
    ([{"x": "a", "y": "b", "z": "b"}, {"y": "a", "z": None}], {"a": 2, "b": 0}),
])
def test_open_owner_counts_move_with_each_person(
        store: StateStore, steps: list[dict[str, str | None]], loads: dict[str, int]) -> None:
    for step in steps:
        store.set_open_owners(step)
    assert store.owner_loads(["a", "b"]) == loads
    assert sum(loads.values()) == len(store.open_owners())


def test_routing_a_person_moved_to_another_pool_leaves_the_first(store: StateStore) -> None:
    assert store.take_turn("p1", "x", (("a@example.com", 1),), 1) == "a@example.com"
    assert store.take_turn("p2", "x", (("b@example.com", 1),), 1) == "b@example.com"
    assert store.route_counts("p1") == {"a@example.com": (1, 0)}
    assert store.take_turn("p1", "y", (("a@example.com", 1),), 1) == "a@example.com"


def test_routing_release_of_a_full_run(store: StateStore) -> None:
    """A full run closes everyone at once: 2,500 keys, 1,200 of them routed."""
    pool = (("a@example.com", 1),)
    for i in range(1200):
        assert store.take_turn("big", f"p-{i}", pool, None) == "a@example.com"
    assert store.release_routes([f"p-{i}" for i in range(2500)]) == 1200
    assert store.route_counts("big") == {"a@example.com": (1200, 1200)}  # still open
    assert store.set_open_owners({f"p-{i}": None for i in range(2500)}) == 1200
    assert store.route_counts("big") == {"a@example.com": (1200, 0)}
    assert store.open_owners() == {}


def test_the_staging_area_finds_records_by_key_and_token_until_unstaged(
        store: StateStore) -> None:
    store.stage({"salesforce:Lead:1": "a", "salesforce:Lead:2": "b"},
                {"email:h1": ["salesforce:Lead:1"],
                 "link:hubspot:contact:9": ["salesforce:Lead:2"]})
    store.stage({"salesforce:Contact:3": "c"}, {"email:h1": ["salesforce:Contact:3"]})
    assert store.get_staged(["salesforce:Lead:1", "salesforce:Lead:9"]) == {
        "salesforce:Lead:1": "a"}
    assert store.staged_keys(["email:h1", "email:none"]) == {"salesforce:Lead:1",
                                                            "salesforce:Contact:3"}
    assert store.staged_keys(["link:hubspot:contact:9"]) == {"salesforce:Lead:2"}
    store.stage({"salesforce:Lead:1": "a2"}, {})  # staged again: the newer payload
    store.unstage(["salesforce:Lead:2"])
    assert store.get_staged(["salesforce:Lead:1", "salesforce:Lead:2"]) == {
        "salesforce:Lead:1": "a2"}
    found: dict[str, str] = {}
    cursor, steps = "", 0
    while True:  # the scan walks what is left, each record at least once
        cursor, page = store.scan_staged(cursor, 1)
        found.update(page)
        steps += 1
        if not cursor:
            break
    assert found == {"salesforce:Lead:1": "a2", "salesforce:Contact:3": "c"}
    assert 1 <= steps <= 3
    store.clear_staged()
    assert store.scan_staged("", 10) == ("", {})
    assert store.staged_keys(["email:h1"]) == set()
    assert store.get_staged(["salesforce:Lead:1"]) == {}


def test_a_fingerprint_kind_is_walked_whole_and_dropped_alone(store: StateStore) -> None:
    # more than a small Redis hash holds as one listpack (walked in one step): a hashtable
    entries = {f"k{n:04d}": f"v{n}" for n in range(1_200)}
    store.set_fingerprints("walk", entries)
    store.set_fingerprints("other", {"k000": "x"})
    found: dict[str, str] = {}
    cursor, steps = "", 0
    while True:
        cursor, page = store.scan_fingerprints("walk", cursor, 50)
        assert len(page) <= 200  # about `count` a step, not the whole kind at once
        found.update(page)
        steps += 1
        if not cursor:
            break
    assert found == entries
    assert steps >= 6
    assert store.scan_fingerprints("empty", "", 50) == ("", {})
    store.drop_fingerprints("walk")
    assert store.get_fingerprints("walk", ["k0000", "k1199"]) == {}
    assert store.scan_fingerprints("walk", "", 50) == ("", {})
    assert store.get_fingerprints("other", ["k000"]) == {"k000": "x"}
