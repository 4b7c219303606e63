"""Sync state: cursors, fingerprints, engagement kept for decay, task ledger, pending retries,
locks.

One Protocol, two stores: `RedisStateStore` (production, shared by workers; in
`leadsync.state_redis`, re-exported here) and `InMemoryStateStore` (the embedded default for
`demo` and `sync --once` without Redis). `open_state(url)` picks one.
The store is a cache, not the system of record: losing it costs API calls, never correctness
(RELIABILITY.md §10) — the CRMs hold stage, timestamps, SLA fields and tasks.

Both stores behave alike (one contract test suite runs against both): `get_events` returns every
requested key (empty list when none) with events sorted by time; fingerprints and person state
return only keys that are known; a task key is either free, claimed (in flight, expires) or
recorded (the CRM task exists); `known_task_keys` reports recorded keys only.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from leadsync.scoring.profile import Event
from leadsync.scoring.routing import PoolMember, pick_member

if TYPE_CHECKING:  # re-exported lazily below so `leadsync score` never imports redis
    from leadsync.state_redis import RedisLock, RedisStateStore

__all__ = [
    "InMemoryLock",
    "InMemorySharedLock",
    "InMemoryStateStore",
    "Lock",
    "RedisLock",
    "RedisStateStore",
    "StateError",
    "StateStore",
    "decode_event",
    "encode_event",
    "open_state",
]


class StateError(Exception):
    """The state store is unreachable or holds data it cannot read; the message names which."""


class Lock(Protocol):
    """A lease with a timeout. `extend()` renews it and returns False when it was lost, in which
    case the holder must stop writing."""

    def acquire(self, blocking: bool = False) -> bool: ...
    def extend(self) -> bool: ...
    def owned(self) -> bool: ...
    def release(self) -> None: ...


class StateStore(Protocol):
    # cursors, e.g. "hubspot:people", "salesforce:engagement"; values are aware UTC datetimes
    def get_cursor(self, name: str) -> datetime | None: ...
    def set_cursor(self, name: str, value: datetime) -> None: ...

    # fingerprints by record key ("hubspot:contact:1"): of the inputs last evaluated and of the
    # values last written, so echoes of our own writes and unchanged people cost nothing
    def get_fingerprints(self, kind: str, keys: Sequence[str]) -> dict[str, str]: ...
    def set_fingerprints(self, kind: str, items: Mapping[str, str]) -> None: ...
    # walk a kind (next cursor, entries; cursor "" starts, "" ends; an entry may come twice,
    # as Redis SCAN says), and drop a whole kind (a working area rebuilt each run)
    def scan_fingerprints(self, kind: str, cursor: str, count: int
                          ) -> tuple[str, dict[str, str]]: ...
    def drop_fingerprints(self, kind: str) -> None: ...

    # engagement per record key, deduped by event id; pruned past the rules' longest window
    def add_events(self, record_key: str, events: Mapping[str, Event]) -> None: ...
    # the same for many records at once (a full run's engagement: a few round trips, not one
    # per record)
    def add_events_many(self, items: Mapping[str, Mapping[str, Event]]) -> None: ...
    def get_events(self, record_keys: Sequence[str]) -> dict[str, list[Event]]: ...
    def prune_events(self, before: datetime) -> int: ...

    # follow-up task ledger: idempotency key -> CRM task id
    def known_task_keys(self, keys: Sequence[str]) -> set[str]: ...
    def record_task_keys(self, items: Mapping[str, str]) -> None: ...
    # SETNX-style claim so two workers racing on one key can be told apart: True for exactly
    # one caller until the claim expires, is released, or the key is recorded (then False)
    def claim_task_key(self, key: str, ttl_seconds: float) -> bool: ...
    def release_task_key(self, key: str) -> None: ...

    # records whose write failed and must be retried next cycle, by system
    def get_pending(self, system: str) -> set[str]: ...
    def add_pending(self, system: str, record_keys: Sequence[str]) -> None: ...
    def remove_pending(self, system: str, record_keys: Sequence[str]) -> None: ...
    # a set too large to hold (a first sync's forced records: docs/resume.md, "Memory") is
    # asked about a page at a time: which of these keys it has, a union kept in the store,
    # and dropped whole
    def pending_among(self, system: str, record_keys: Sequence[str]) -> set[str]: ...
    def copy_pending(self, source: str, target: str) -> None: ...
    def drop_pending(self, system: str) -> None: ...

    # per-person lifecycle memory not written to CRMs (stage_entered_at, score_at_mql),
    # as JSON-able dicts
    def get_person_state(self, person_keys: Sequence[str]) -> dict[str, dict[str, object]]: ...
    def set_person_state(self, items: Mapping[str, Mapping[str, object]]) -> None: ...

    # the alias table (`leadsync.person`): record key -> durable person key, for every record key
    # a person has had (a converted Lead, its Contact, HubSpot contacts, merged duplicates);
    # returns only keys that are known
    def get_person_keys(self, record_keys: Sequence[str]) -> dict[str, str]: ...
    def set_person_keys(self, items: Mapping[str, str]) -> None: ...

    # engagement events whose email no record has yet, by event id -> opaque JSON payload
    # (the pipeline bounds their number and age); kept until attached or expired
    def get_held_events(self) -> dict[str, str]: ...
    def hold_events(self, items: Mapping[str, str]) -> None: ...
    def drop_held_events(self, event_ids: Sequence[str]) -> None: ...

    # round-robin routing pools (`leadsync.scoring.routing`, docs/routing.md). Every open
    # person (stage mql or sql) counts against the rep who owns them, routed or assigned by
    # hand: `set_open_owners` sets each person's rep (None: not open, or no active rep) and
    # moves the per-rep count in one atomic step; `owner_loads` reads the counts and
    # `open_owners` the whole person -> rep map (a full run's sweep). `take_turn` is one atomic
    # step, so two workers never hand out the same turn: the member already holding `person`
    # in `pool` (a retry gets the same rep), else the next by `pick_member` among the members
    # whose count is under `capacity`, counting the turn and making the person open with that
    # member; None when every member is at capacity. `release_routes` forgets which pool turn
    # people had (they no longer need routing) and returns how many had one; `route_counts`
    # is member -> (turns served in the pool, open people the member owns).
    def set_open_owners(self, items: Mapping[str, str | None]) -> int: ...
    def owner_loads(self, owners: Sequence[str]) -> dict[str, int]: ...
    def open_owners(self) -> dict[str, str]: ...
    def take_turn(self, pool: str, person: str, members: Sequence[tuple[str, int]],
                  capacity: int | None) -> str | None: ...
    def release_routes(self, person_keys: Sequence[str]) -> int: ...
    def route_counts(self, pool: str) -> dict[str, tuple[int, int]]: ...

    # the run's staging area (docs/resume.md): people records read whole from a CRM that
    # pages with no per-page commit (Salesforce), by record key -> opaque payload, with an
    # index token (an email hash, a linked record key) -> record keys, so a page of people
    # takes its other records from here and a killed run's restart does not read them again.
    # `scan_staged` walks what is left: (next cursor, records); cursor "" starts, "" ends.
    # Removed as pages commit (`unstage`), cleared when the run ends (and a TTL backstop).
    def stage(self, items: Mapping[str, str], index: Mapping[str, Sequence[str]]) -> None: ...
    def get_staged(self, record_keys: Sequence[str]) -> dict[str, str]: ...
    def staged_keys(self, tokens: Sequence[str]) -> set[str]: ...
    def scan_staged(self, cursor: str, count: int) -> tuple[str, dict[str, str]]: ...
    def unstage(self, record_keys: Sequence[str]) -> None: ...
    def clear_staged(self) -> None: ...

    # a lease: exclusive by default; `shared=True` holders coexist with each other and keep
    # exclusive holders out (and are kept out by one), e.g. chunks of the nightly fan-out
    # against the incremental sync
    def lock(self, name: str, ttl_seconds: float, *, shared: bool = False) -> Lock: ...
    def clear(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# event codec, shared by both stores: compact JSON {"t": type, "a": ISO at, "p": props, "s": src}


def walk_fingerprints(state: StateStore, kind: str, count: int) -> Iterator[dict[str, str]]:
    """Every entry of a kind, about `count` at a time (`scan_fingerprints`: an entry may
    come twice); empty steps are skipped."""
    cursor = ""
    while True:
        cursor, found = state.scan_fingerprints(kind, cursor, count)
        if found:
            yield found
        if not cursor:
            return


def format_utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the state store; expected timezone-aware UTC")
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def encode_event(event: Event) -> str:
    """Serialise an event as compact JSON; empty props and a missing source are left out."""
    doc: dict[str, object] = {"t": event.type, "a": format_utc(event.at)}
    if event.props:
        doc["p"] = dict(event.props)
    if event.source is not None:
        doc["s"] = event.source
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def decode_event(text: str | bytes) -> Event:
    """Inverse of `encode_event`; raises StateError naming the bad payload's problem."""
    try:
        doc = json.loads(text)
        props = {str(k): str(v) for k, v in (doc.get("p") or {}).items()}
        return Event(
            type=str(doc["t"]),
            at=parse_utc(str(doc["a"])),
            props=MappingProxyType(props),
            source=doc.get("s"),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateError(f"unreadable stored event ({type(exc).__name__}: {exc})") from None


def event_sort_key(event: Event) -> tuple[datetime, str]:
    return (event.at, event.type)


# ---------------------------------------------------------------------------------------------
# in-memory store


class InMemoryLock:
    """A threading.Lock-guarded lease with the same semantics as `RedisLock`: a random token,
    a timeout after which anyone may take it, `extend()` that returns False once it was lost.
    It is not taken while shared holders of the same name (`InMemorySharedLock`) are live."""

    def __init__(
        self,
        registry: dict[str, tuple[str, float]],
        guard: threading.Lock,
        name: str,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        shared: dict[str, dict[str, float]] | None = None,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"lock {name!r}: ttl_seconds must be positive, got {ttl_seconds}")
        self._registry, self._guard, self._clock = registry, guard, clock
        self._shared = shared if shared is not None else {}
        self.name, self.ttl_seconds = name, ttl_seconds
        self._token = uuid.uuid4().hex

    def acquire(self, blocking: bool = False, blocking_timeout: float | None = None) -> bool:
        """Take the lease if free or expired; when blocking, poll until `blocking_timeout`."""
        deadline = None if blocking_timeout is None else self._clock() + blocking_timeout
        while True:
            with self._guard:
                held = self._registry.get(self.name)
                now = self._clock()
                readers = any(t > now for t in self._shared.get(self.name, {}).values())
                if (held is None or held[1] <= now) and not readers:
                    self._registry[self.name] = (self._token, now + self.ttl_seconds)
                    return True
            if not blocking or (deadline is not None and self._clock() >= deadline):
                return False
            time.sleep(0.01)

    def extend(self) -> bool:
        """Renew to a full ttl; False when the lease expired or belongs to someone else."""
        with self._guard:
            if not self._owned_locked():
                return False
            self._registry[self.name] = (self._token, self._clock() + self.ttl_seconds)
            return True

    def owned(self) -> bool:
        with self._guard:
            return self._owned_locked()

    def release(self) -> None:
        """Give the lease back; a lease already lost is left to its new holder."""
        with self._guard:
            if self._owned_locked():
                del self._registry[self.name]

    def _owned_locked(self) -> bool:
        held = self._registry.get(self.name)
        return held is not None and held[0] == self._token and held[1] > self._clock()


class InMemorySharedLock:
    """A shared lease on `name`: any number of shared holders at once, none while an exclusive
    `InMemoryLock` of that name is held, and an exclusive one is not taken while they are."""

    def __init__(
        self,
        registry: dict[str, tuple[str, float]],
        guard: threading.Lock,
        name: str,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        shared: dict[str, dict[str, float]],
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"lock {name!r}: ttl_seconds must be positive, got {ttl_seconds}")
        self._registry, self._shared, self._guard, self._clock = registry, shared, guard, clock
        self.name, self.ttl_seconds = name, ttl_seconds
        self._token = uuid.uuid4().hex

    def acquire(self, blocking: bool = False, blocking_timeout: float | None = None) -> bool:
        deadline = None if blocking_timeout is None else self._clock() + blocking_timeout
        while True:
            with self._guard:
                held = self._registry.get(self.name)
                now = self._clock()
                if held is None or held[1] <= now:
                    holders = self._shared.setdefault(self.name, {})
                    for token in [t for t, exp in holders.items() if exp <= now]:
                        del holders[token]
                    holders[self._token] = now + self.ttl_seconds
                    return True
            if not blocking or (deadline is not None and self._clock() >= deadline):
                return False
            time.sleep(0.01)

    def extend(self) -> bool:
        with self._guard:
            if not self._owned_locked():
                return False
            self._shared[self.name][self._token] = self._clock() + self.ttl_seconds
            return True

    def owned(self) -> bool:
        with self._guard:
            return self._owned_locked()

    def release(self) -> None:
        with self._guard:
            self._shared.get(self.name, {}).pop(self._token, None)

    def _owned_locked(self) -> bool:
        expires = self._shared.get(self.name, {}).get(self._token)
        return expires is not None and expires > self._clock()


class InMemoryStateStore:
    """Process-local `StateStore`: plain dicts behind one lock, safe across threads.

    Semantics match `RedisStateStore` (same contract tests) including claim expiry; it keeps no
    TTLs otherwise because it dies with the process.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._guard = threading.RLock()
        self._lock_guard = threading.Lock()
        self._locks: dict[str, tuple[str, float]] = {}
        self._shared_locks: dict[str, dict[str, float]] = {}
        self._cursors: dict[str, datetime] = {}
        self._fingerprints: dict[str, dict[str, str]] = {}
        self._events: dict[str, dict[str, str]] = {}
        self._claims: dict[str, float] = {}
        self._tasks: dict[str, str] = {}
        self._pending: dict[str, set[str]] = {}
        self._people: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._held: dict[str, str] = {}
        self._served: dict[tuple[str, str], int] = {}  # (pool, member) -> turns
        self._load: dict[str, int] = {}  # rep -> open people they own
        self._owner: dict[str, str] = {}  # open person -> rep
        self._routed: dict[str, tuple[str, str]] = {}  # person -> (pool, member)
        self._staged: dict[str, str] = {}
        self._staged_order: list[str] = []  # insertion order: the scan cursor is a position
        self._staged_index: dict[str, set[str]] = {}

    def get_cursor(self, name: str) -> datetime | None:
        with self._guard:
            return self._cursors.get(name)

    def set_cursor(self, name: str, value: datetime) -> None:
        format_utc(value)  # same validation as Redis: aware datetimes only
        with self._guard:
            self._cursors[name] = value.astimezone(UTC)

    def get_fingerprints(self, kind: str, keys: Sequence[str]) -> dict[str, str]:
        with self._guard:
            known = self._fingerprints.get(kind, {})
            return {k: known[k] for k in keys if k in known}

    def set_fingerprints(self, kind: str, items: Mapping[str, str]) -> None:
        with self._guard:
            self._fingerprints.setdefault(kind, {}).update(items)

    def scan_fingerprints(self, kind: str, cursor: str, count: int
                          ) -> tuple[str, dict[str, str]]:
        """`count` entries of a kind in key order after `cursor` (the last key returned)."""
        with self._guard:
            known = self._fingerprints.get(kind, {})
            keys = sorted(k for k in known if k > cursor)[:count]
            out = {k: known[k] for k in keys}
            return (keys[-1] if len(keys) == count and keys else ""), out

    def drop_fingerprints(self, kind: str) -> None:
        with self._guard:
            self._fingerprints.pop(kind, None)

    def add_events(self, record_key: str, events: Mapping[str, Event]) -> None:
        encoded = {eid: encode_event(ev) for eid, ev in events.items()}
        with self._guard:
            self._events.setdefault(record_key, {}).update(encoded)

    def add_events_many(self, items: Mapping[str, Mapping[str, Event]]) -> None:
        for record_key, events in items.items():
            self.add_events(record_key, events)

    def get_events(self, record_keys: Sequence[str]) -> dict[str, list[Event]]:
        with self._guard:
            raw = {k: list(self._events.get(k, {}).values()) for k in record_keys}
        return {k: sorted(map(decode_event, v), key=event_sort_key) for k, v in raw.items()}

    def prune_events(self, before: datetime) -> int:
        format_utc(before)
        removed = 0
        with self._guard:
            for record_key in list(self._events):
                kept = {
                    eid: text
                    for eid, text in self._events[record_key].items()
                    if decode_event(text).at >= before
                }
                removed += len(self._events[record_key]) - len(kept)
                if kept:
                    self._events[record_key] = kept
                else:
                    del self._events[record_key]
        return removed

    def known_task_keys(self, keys: Sequence[str]) -> set[str]:
        with self._guard:
            return {k for k in keys if k in self._tasks}

    def record_task_keys(self, items: Mapping[str, str]) -> None:
        with self._guard:
            self._tasks.update(items)
            for key in items:
                self._claims.pop(key, None)

    def claim_task_key(self, key: str, ttl_seconds: float) -> bool:
        if ttl_seconds <= 0:
            raise ValueError(f"claim of task key: ttl_seconds must be positive, got {ttl_seconds}")
        with self._guard:
            if key in self._tasks:
                return False
            expires = self._claims.get(key)
            if expires is not None and expires > self._clock():
                return False
            self._claims[key] = self._clock() + ttl_seconds
            return True

    def release_task_key(self, key: str) -> None:
        with self._guard:
            self._claims.pop(key, None)

    def get_pending(self, system: str) -> set[str]:
        with self._guard:
            return set(self._pending.get(system, ()))

    def add_pending(self, system: str, record_keys: Sequence[str]) -> None:
        with self._guard:
            self._pending.setdefault(system, set()).update(record_keys)

    def remove_pending(self, system: str, record_keys: Sequence[str]) -> None:
        with self._guard:
            self._pending.get(system, set()).difference_update(record_keys)

    def pending_among(self, system: str, record_keys: Sequence[str]) -> set[str]:
        with self._guard:
            have = self._pending.get(system, set())
            return {k for k in record_keys if k in have}

    def copy_pending(self, source: str, target: str) -> None:
        with self._guard:
            if self._pending.get(source):
                self._pending.setdefault(target, set()).update(self._pending[source])

    def drop_pending(self, system: str) -> None:
        with self._guard:
            self._pending.pop(system, None)

    def get_person_state(self, person_keys: Sequence[str]) -> dict[str, dict[str, object]]:
        with self._guard:
            raw = {k: self._people[k] for k in person_keys if k in self._people}
        return {k: json.loads(v) for k, v in raw.items()}

    def set_person_state(self, items: Mapping[str, Mapping[str, object]]) -> None:
        encoded = {k: encode_person_state(k, v) for k, v in items.items()}
        with self._guard:
            self._people.update(encoded)

    def get_person_keys(self, record_keys: Sequence[str]) -> dict[str, str]:
        with self._guard:
            return {k: self._aliases[k] for k in record_keys if k in self._aliases}

    def set_person_keys(self, items: Mapping[str, str]) -> None:
        with self._guard:
            self._aliases.update(items)

    def get_held_events(self) -> dict[str, str]:
        with self._guard:
            return dict(self._held)

    def hold_events(self, items: Mapping[str, str]) -> None:
        with self._guard:
            self._held.update(items)

    def drop_held_events(self, event_ids: Sequence[str]) -> None:
        with self._guard:
            for eid in event_ids:
                self._held.pop(eid, None)

    def _set_owner_locked(self, person: str, owner: str | None) -> bool:
        old = self._owner.get(person)
        if old == owner:
            return False
        if old is not None:
            self._load[old] -= 1
            if self._load[old] <= 0:
                del self._load[old]
            del self._owner[person]
        if owner is not None:
            self._owner[person] = owner
            self._load[owner] = self._load.get(owner, 0) + 1
        return True

    def set_open_owners(self, items: Mapping[str, str | None]) -> int:
        with self._guard:
            return sum(self._set_owner_locked(p, o or None) for p, o in items.items())

    def owner_loads(self, owners: Sequence[str]) -> dict[str, int]:
        with self._guard:
            return {o: self._load.get(o, 0) for o in owners}

    def open_owners(self) -> dict[str, str]:
        with self._guard:
            return dict(self._owner)

    def take_turn(self, pool: str, person: str, members: Sequence[tuple[str, int]],
                  capacity: int | None) -> str | None:
        with self._guard:
            held = self._routed.get(person)
            if held is not None and held[0] == pool and any(m == held[1] for m, _ in members):
                self._set_owner_locked(person, held[1])
                return held[1]
            self._routed.pop(person, None)
            for m, _ in members:  # the pool knows its members (route_counts), turns or not
                self._served.setdefault((pool, m), 0)
            mine = self._owner.get(person)
            chosen = pick_member(
                [PoolMember(m, w) for m, w in members],
                {m: self._served.get((pool, m), 0) for m, _ in members},
                {m: self._load.get(m, 0) - (m == mine) for m, _ in members}, capacity)
            if chosen is not None:
                self._served[pool, chosen] = self._served.get((pool, chosen), 0) + 1
                self._set_owner_locked(person, chosen)
                self._routed[person] = (pool, chosen)
            return chosen

    def release_routes(self, person_keys: Sequence[str]) -> int:
        with self._guard:
            return sum(self._routed.pop(p, None) is not None for p in set(person_keys))

    def route_counts(self, pool: str) -> dict[str, tuple[int, int]]:
        with self._guard:
            members = {m for p, m in self._served if p == pool}
            return {m: (self._served.get((pool, m), 0), self._load.get(m, 0))
                    for m in sorted(members)}

    # the run's staging area -------------------------------------------------------------
    def stage(self, items: Mapping[str, str], index: Mapping[str, Sequence[str]]) -> None:
        with self._guard:
            for key, payload in items.items():
                if key not in self._staged:
                    self._staged_order.append(key)
                self._staged[key] = payload
            for token, keys in index.items():
                self._staged_index.setdefault(token, set()).update(keys)

    def get_staged(self, record_keys: Sequence[str]) -> dict[str, str]:
        with self._guard:
            return {k: self._staged[k] for k in record_keys if k in self._staged}

    def staged_keys(self, tokens: Sequence[str]) -> set[str]:
        with self._guard:
            found: set[str] = set()
            for token in tokens:
                found.update(k for k in self._staged_index.get(token, ()) if k in self._staged)
            return found

    def scan_staged(self, cursor: str, count: int) -> tuple[str, dict[str, str]]:
        with self._guard:
            at = int(cursor or 0)
            out: dict[str, str] = {}
            while at < len(self._staged_order) and len(out) < count:
                key = self._staged_order[at]
                at += 1
                if key in self._staged:
                    out[key] = self._staged[key]
            return ("" if at >= len(self._staged_order) else str(at)), out

    def unstage(self, record_keys: Sequence[str]) -> None:
        with self._guard:
            for key in record_keys:
                self._staged.pop(key, None)

    def clear_staged(self) -> None:
        with self._guard:
            self._staged.clear()
            self._staged_order.clear()
            self._staged_index.clear()

    def lock(self, name: str, ttl_seconds: float, *, shared: bool = False
             ) -> InMemoryLock | InMemorySharedLock:
        if shared:
            return InMemorySharedLock(self._locks, self._lock_guard, name, ttl_seconds,
                                      self._clock, shared=self._shared_locks)
        return InMemoryLock(self._locks, self._lock_guard, name, ttl_seconds, self._clock,
                            shared=self._shared_locks)

    def clear(self) -> None:
        with self._guard, self._lock_guard:
            for part in (self._locks, self._shared_locks, self._cursors, self._fingerprints,
                         self._events, self._claims, self._tasks, self._pending, self._people,
                         self._aliases, self._held, self._served, self._load,
                         self._owner, self._routed, self._staged,
                         self._staged_index):  # fmt: skip
                part.clear()
            self._staged_order.clear()


def encode_person_state(key: str, value: Mapping[str, object]) -> str:
    """Compact JSON of one person's lifecycle memory; a clear error names the key at fault."""
    try:
        return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise StateError(f"person state for {key!r} is not JSON-serialisable: {exc}") from None


def open_state(redis_url: str | None) -> StateStore:
    """The Redis store for `redis_url` (checked with a PING), else the in-memory store."""
    if not redis_url:
        return InMemoryStateStore()
    from leadsync.state_redis import connect

    return connect(redis_url)


def __getattr__(name: str) -> Any:
    if name in ("RedisStateStore", "RedisLock"):
        from leadsync import state_redis

        return getattr(state_redis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
