"""The Redis `StateStore` and `RedisLock` (re-exported by `leadsync.state`).

Layout, all under `<namespace>:` so `clear()` can wipe exactly what leadsync wrote:

| key | type | bound |
|---|---|---|
| `cursor` | hash name -> ISO time | small, permanent |
| `fp:<kind>` | hash record key -> fingerprint | one field per record; TTL refreshed on write |
| `ev:<record key>` | hash event id -> compact JSON event | TTL refreshed on write; pruned |
| `ev-index` | zset record key -> epoch of its oldest event | finds what to prune without SCAN |
| `task:<key>` | string `c` (claimed) or `t:<crm task id>` (recorded) | claim ttl / ledger TTL |
| `pending:<system>` | set of record keys | TTL refreshed on write |
| `person` | hash person key -> compact JSON | TTL refreshed on write |
| `alias` | hash record key -> person key (`leadsync.person`) | TTL refreshed on write |
| `held-events` | hash event id -> JSON (email hash, event) | count bounded by the pipeline; TTL |
| `routing:load` | hash rep -> open MQL/SQL people they own (docs/routing.md) | reps; no TTL |
| `routing:owner` | hash open person key -> the rep counted for them | open people; no TTL |
| `routing:served` / `routing:routed` | hash pool+member -> turns / person -> pool+member | no TTL |
| `stage:rec` | hash record key -> staged record (docs/resume.md) | the run's; 2-day TTL |
| `stage:idx` | hash token (email hash, linked key) -> record keys | the same |
| `lock:<name>` | redis-py lock token (exclusive holder) | lock timeout |
| `lock:<name>:shared` | zset token -> expiry ms (shared holders) | longest lease |

Reads of many keys are one round trip (HMGET/MGET or one non-transactional pipeline), so
`get_events` for 2,000 records costs one network exchange. Small hashes stay listpack-encoded.
Every TTL is a safety bound: the data is a cache the CRMs can rebuild (RELIABILITY.md §10).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock as RedisPyLock

from leadsync.scoring.profile import Event
from leadsync.state import (
    StateError,
    decode_event,
    encode_event,
    encode_person_state,
    event_sort_key,
    format_utc,
    parse_utc,
)

log = logging.getLogger(__name__)

DAY = 86_400
_NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_CLAIMED = "c"
_RECORDED = "t:"
# Exclusive acquire: not while a shared holder's lease is live. KEYS: lock, shared zset;
# ARGV: token, ttl ms.
_ACQUIRE_EXCLUSIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') > 0 then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
# Shared acquire (ARGV[3] = '1') or extend (ARGV[3] = '0', only while still held).
# KEYS: lock, shared zset; ARGV: token, ttl ms, mode.
_SHARED_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
else
  local held = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if not held or tonumber(held) <= now then return 0 end
end
local expires = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], expires, ARGV[1])
local longest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], math.max(expires, tonumber(longest[2])))
return 1
"""
_SHARED_OWNED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if held and tonumber(held) > now then return 1 end
return 0
"""
_RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _ExclusiveLock(RedisPyLock):
    """redis-py's Lock whose acquire also waits for live shared holders to leave."""

    def __init__(self, client: redis.Redis, name: str, timeout: float) -> None:
        super().__init__(client, name, timeout=timeout, thread_local=False)
        self._acquire_script = client.register_script(_ACQUIRE_EXCLUSIVE)

    def do_acquire(self, token: str) -> bool:
        ttl_ms = int(float(self.timeout or 0) * 1000)
        return bool(self._acquire_script(keys=[self.name, f"{self.name}:shared"],
                                         args=[token, ttl_ms]))


class RedisLock:
    """redis-py's Lock (random token, timeout, atomic Lua extend/release) behind the `Lock`
    Protocol: `extend()` renews to the full timeout and returns False once the lease was lost,
    `release()` of a lost lease is a logged no-op. Not thread-local, so the pipeline may extend
    it from any thread of the worker. Not taken while `RedisSharedLock` holders are live."""

    def __init__(self, client: redis.Redis, name: str, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"lock {name!r}: ttl_seconds must be positive, got {ttl_seconds}")
        self.name, self.ttl_seconds = name, ttl_seconds
        self._lock = _ExclusiveLock(client, name, ttl_seconds)

    def acquire(self, blocking: bool = False, blocking_timeout: float | None = None) -> bool:
        return bool(self._lock.acquire(blocking=blocking, blocking_timeout=blocking_timeout))

    def extend(self) -> bool:
        try:
            return bool(self._lock.extend(self.ttl_seconds, replace_ttl=True))
        except LockError:
            return False
        except RedisError as exc:  # cannot prove we still hold it: the holder must stop writing
            log.warning(
                "lock extend failed", extra={"lock": self.name, "error": type(exc).__name__}
            )
            return False

    def owned(self) -> bool:
        try:
            return bool(self._lock.owned())
        except RedisError:
            return False

    def release(self) -> None:
        try:
            self._lock.release()
        except LockError:
            log.info("lock already lost at release", extra={"lock": self.name})


class RedisSharedLock:
    """A shared lease on `name`: a member of the sorted set `<name>:shared` scored by its expiry
    (Redis server time). Any number coexist; none is taken while the exclusive `RedisLock` of
    that name is held, and that one is not taken while any is live. Same Protocol as
    `RedisLock`; every step is one Lua script, so it is atomic across workers."""

    def __init__(self, client: redis.Redis, name: str, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"lock {name!r}: ttl_seconds must be positive, got {ttl_seconds}")
        self.name, self.ttl_seconds = name, ttl_seconds
        self._client = client
        self._key = f"{name}:shared"
        self._token = uuid.uuid4().hex
        self._lease = client.register_script(_SHARED_LEASE)
        self._owned = client.register_script(_SHARED_OWNED)

    def _run(self, mode: str) -> bool:
        ttl_ms = max(1, int(self.ttl_seconds * 1000))
        return bool(self._lease(keys=[self.name, self._key], args=[self._token, ttl_ms, mode]))

    def acquire(self, blocking: bool = False, blocking_timeout: float | None = None) -> bool:
        deadline = None if blocking_timeout is None else time.monotonic() + blocking_timeout
        while True:
            if self._run("1"):
                return True
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return False
            time.sleep(0.05)

    def extend(self) -> bool:
        try:
            return self._run("0")
        except RedisError as exc:  # cannot prove we still hold it: the holder must stop writing
            log.warning(
                "lock extend failed", extra={"lock": self.name, "error": type(exc).__name__}
            )
            return False

    def owned(self) -> bool:
        try:
            return bool(self._owned(keys=[self._key], args=[self._token]))
        except RedisError:
            return False

    def release(self) -> None:
        try:
            self._client.zrem(self._key, self._token)
        except RedisError as exc:
            log.info("shared lock not released", extra={"lock": self.name,
                                                         "error": type(exc).__name__})


# Routing counts (docs/routing.md). KEYS[1] load (hash rep -> open people they own), KEYS[2]
# owner (hash open person -> rep); `set_owner` moves one person's count, so a count is always
# the number of owner entries naming the rep.
_SET_OWNER = """
local function set_owner(person, rep)
  local old = redis.call('HGET', KEYS[2], person)
  if (old or '') == rep then return 0 end
  if old then
    if tonumber(redis.call('HINCRBY', KEYS[1], old, -1)) <= 0 then
      redis.call('HDEL', KEYS[1], old)
    end
  end
  if rep == '' then
    redis.call('HDEL', KEYS[2], person)
  else
    redis.call('HSET', KEYS[2], person, rep)
    redis.call('HINCRBY', KEYS[1], rep, 1)
  end
  return 1
end
"""
# Set open owners. KEYS: load, owner; ARGV: person, rep ('' for none) pairs.
_SET_OPEN_OWNERS = _SET_OWNER + """
local moved = 0
for i = 1, #ARGV, 2 do moved = moved + set_owner(ARGV[i], ARGV[i + 1]) end
return moved
"""
# One routing turn (`StateStore.take_turn`), `pick_member` in Lua. KEYS: load, owner, served
# (hash "<pool>\n<member>" -> turns), routed (hash person -> "<pool>\n<member>"); ARGV:
# person, pool, capacity ('' for none), then member, weight pairs.
_TAKE_TURN = _SET_OWNER + """
local person, pool, cap = ARGV[1], ARGV[2], ARGV[3]
local held = redis.call('HGET', KEYS[4], person)
if held then
  for i = 4, #ARGV, 2 do
    if held == pool .. '\\n' .. ARGV[i] then
      set_owner(person, ARGV[i])
      return ARGV[i]
    end
  end
  redis.call('HDEL', KEYS[4], person)
end
local mine = redis.call('HGET', KEYS[2], person)
local total, turns = 0, 0
for i = 4, #ARGV, 2 do
  total = total + tonumber(ARGV[i + 1])
  turns = turns + redis.call('HINCRBY', KEYS[3], pool .. '\\n' .. ARGV[i], 0)
end
local best, rank = nil, nil
for i = 4, #ARGV, 2 do
  local open = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if mine == ARGV[i] then open = open - 1 end
  if cap == '' or open < tonumber(cap) then
    local served = tonumber(redis.call('HGET', KEYS[3], pool .. '\\n' .. ARGV[i]))
    local behind = (turns + 1) * tonumber(ARGV[i + 1]) - total * served
    if best == nil or behind > rank then best, rank = ARGV[i], behind end
  end
end
if not best then return false end
redis.call('HINCRBY', KEYS[3], pool .. '\\n' .. best, 1)
set_owner(person, best)
redis.call('HSET', KEYS[4], person, pool .. '\\n' .. best)
return best
"""


class RedisStateStore:
    """`StateStore` on Redis, shared by all workers; see the module docstring for the layout."""

    def __init__(
        self,
        redis_client: redis.Redis,
        namespace: str = "leadsync",
        *,
        events_ttl_seconds: int = 400 * DAY,
        fingerprints_ttl_seconds: int = 90 * DAY,
        task_ledger_ttl_seconds: int = 180 * DAY,
        pending_ttl_seconds: int = 30 * DAY,
        person_ttl_seconds: int = 400 * DAY,
        held_ttl_seconds: int = 30 * DAY,
        staged_ttl_seconds: int = 2 * DAY,
    ) -> None:
        if not _NAMESPACE.match(namespace):
            raise ValueError(f"state namespace {namespace!r}: use letters, digits, '_', '-', '.'")
        self.redis = redis_client
        self.namespace = namespace
        self._ttl_events = events_ttl_seconds
        self._ttl_fp = fingerprints_ttl_seconds
        self._ttl_tasks = task_ledger_ttl_seconds
        self._ttl_pending = pending_ttl_seconds
        self._ttl_person = person_ttl_seconds
        self._ttl_held = held_ttl_seconds
        self._ttl_staged = staged_ttl_seconds
        self._release_claim = redis_client.register_script(_RELEASE_CLAIM)
        self._take_turn = redis_client.register_script(_TAKE_TURN)
        self._set_open_owners = redis_client.register_script(_SET_OPEN_OWNERS)

    def _k(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    # cursors ----------------------------------------------------------------------------
    def get_cursor(self, name: str) -> datetime | None:
        raw = self.redis.hget(self._k("cursor"), name)
        return None if raw is None else parse_utc(_text(raw))

    def set_cursor(self, name: str, value: datetime) -> None:
        self.redis.hset(self._k("cursor"), name, format_utc(value))

    # fingerprints -----------------------------------------------------------------------
    def get_fingerprints(self, kind: str, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        values = cast(list[Any], self.redis.hmget(self._k("fp", kind), list(keys)))
        return {k: _text(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def set_fingerprints(self, kind: str, items: Mapping[str, str]) -> None:
        if not items:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self._k("fp", kind), mapping=dict(items))
        pipe.expire(self._k("fp", kind), self._ttl_fp)
        pipe.execute()

    def scan_fingerprints(self, kind: str, cursor: str, count: int
                          ) -> tuple[str, dict[str, str]]:
        """One HSCAN step (about `count` entries; an entry may come twice, as SCAN says)."""
        nxt, found = cast(tuple[Any, dict[Any, Any]], self.redis.hscan(
            self._k("fp", kind), int(cursor or 0), count=count))
        return ("" if int(nxt) == 0 else str(nxt)), {_text(k): _text(v)
                                                     for k, v in found.items()}

    def drop_fingerprints(self, kind: str) -> None:
        self.redis.unlink(self._k("fp", kind))

    # events -----------------------------------------------------------------------------
    def add_events(self, record_key: str, events: Mapping[str, Event]) -> None:
        self.add_events_many({record_key: events})

    def add_events_many(self, items: Mapping[str, Mapping[str, Event]], page: int = 500
                        ) -> None:
        """One MULTI/EXEC per page of records: each record's events and its index entry are
        added together (a record's commands never straddle two pages)."""
        keys = [k for k, events in items.items() if events]
        for start in range(0, len(keys), page):
            pipe = self.redis.pipeline(transaction=True)
            for record_key in keys[start:start + page]:
                events = items[record_key]
                encoded = {eid: encode_event(ev) for eid, ev in events.items()}
                oldest = min(ev.at for ev in events.values()).timestamp()
                pipe.hset(self._k("ev", record_key), mapping=encoded)
                pipe.expire(self._k("ev", record_key), self._ttl_events)
                pipe.zadd(self._k("ev-index"), {record_key: oldest}, lt=True)
            pipe.expire(self._k("ev-index"), self._ttl_events)
            pipe.execute()

    def get_events(self, record_keys: Sequence[str]) -> dict[str, list[Event]]:
        pipe = self.redis.pipeline(transaction=False)
        for key in record_keys:
            pipe.hvals(self._k("ev", key))
        rows = pipe.execute() if record_keys else []
        return {
            key: sorted((decode_event(v) for v in values), key=event_sort_key)
            for key, values in zip(record_keys, rows, strict=True)
        }

    def prune_events(self, before: datetime, page: int = 500) -> int:
        """Drop events dated before `before`. Only records the index says hold such an event
        are read; fields are deleted one by one so events added meanwhile survive."""
        cutoff = datetime.fromisoformat(format_utc(before).replace("Z", "+00:00")).timestamp()
        removed = 0
        while True:
            found = self.redis.zrangebyscore(
                self._k("ev-index"), "-inf", f"({cutoff}", start=0, num=page
            )
            keys = [_text(k) for k in cast(list[Any], found)]
            if not keys:
                return removed
            removed += self._prune_page(keys, cutoff)

    def _prune_page(self, keys: list[str], cutoff: float) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self._k("ev", key))
        removed = 0
        write = self.redis.pipeline(transaction=False)
        for key, raw in zip(keys, pipe.execute(), strict=True):
            events = {_text(f): decode_event(v) for f, v in raw.items()}
            stale = [f for f, ev in events.items() if ev.at.timestamp() < cutoff]
            kept = [ev.at.timestamp() for f, ev in events.items() if ev.at.timestamp() >= cutoff]
            if stale:
                write.hdel(self._k("ev", key), *stale)
            removed += len(stale)
            if kept:
                write.zadd(self._k("ev-index"), {key: min(kept)}, xx=True)
            else:
                write.zrem(self._k("ev-index"), key)
        write.execute()
        return removed

    # task ledger ------------------------------------------------------------------------
    def known_task_keys(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        values = cast(list[Any], self.redis.mget([self._k("task", k) for k in keys]))
        return {
            k for k, v in zip(keys, values, strict=True)
            if v is not None and _text(v).startswith(_RECORDED)
        }  # fmt: skip

    def record_task_keys(self, items: Mapping[str, str]) -> None:
        if not items:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, task_id in items.items():
            pipe.set(self._k("task", key), _RECORDED + task_id, ex=self._ttl_tasks)
        pipe.execute()

    def claim_task_key(self, key: str, ttl_seconds: float) -> bool:
        if ttl_seconds <= 0:
            raise ValueError(f"claim of task key: ttl_seconds must be positive, got {ttl_seconds}")
        px = max(1, int(ttl_seconds * 1000))
        return bool(self.redis.set(self._k("task", key), _CLAIMED, nx=True, px=px))

    def release_task_key(self, key: str) -> None:
        self._release_claim(keys=[self._k("task", key)], args=[_CLAIMED])

    # pending retries --------------------------------------------------------------------
    def get_pending(self, system: str) -> set[str]:
        members = cast(set[Any], self.redis.smembers(self._k("pending", system)))
        return {_text(v) for v in members}

    def add_pending(self, system: str, record_keys: Sequence[str]) -> None:
        if not record_keys:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self._k("pending", system), *record_keys)
        pipe.expire(self._k("pending", system), self._ttl_pending)
        pipe.execute()

    def remove_pending(self, system: str, record_keys: Sequence[str]) -> None:
        if record_keys:
            self.redis.srem(self._k("pending", system), *record_keys)

    def pending_among(self, system: str, record_keys: Sequence[str]) -> set[str]:
        if not record_keys:
            return set()
        keys = list(record_keys)
        flags = cast(list[Any], self.redis.smismember(self._k("pending", system), keys))
        return {k for k, flag in zip(keys, flags, strict=True) if flag}

    def copy_pending(self, source: str, target: str) -> None:
        """target |= source, inside Redis (the union never passes through the process)."""
        target_key = self._k("pending", target)
        pipe = self.redis.pipeline(transaction=True)
        pipe.sunionstore(target_key, [target_key, self._k("pending", source)])
        pipe.expire(target_key, self._ttl_pending)
        pipe.execute()

    def drop_pending(self, system: str) -> None:
        self.redis.delete(self._k("pending", system))

    # person lifecycle memory ------------------------------------------------------------
    def get_person_state(self, person_keys: Sequence[str]) -> dict[str, dict[str, object]]:
        if not person_keys:
            return {}
        values = cast(list[Any], self.redis.hmget(self._k("person"), list(person_keys)))
        return {
            k: json.loads(_text(v))
            for k, v in zip(person_keys, values, strict=True) if v is not None
        }  # fmt: skip

    def set_person_state(self, items: Mapping[str, Mapping[str, object]]) -> None:
        if not items:
            return
        encoded = {k: encode_person_state(k, v) for k, v in items.items()}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self._k("person"), mapping=encoded)
        pipe.expire(self._k("person"), self._ttl_person)
        pipe.execute()

    # the alias table: record key -> person key ------------------------------------------
    def get_person_keys(self, record_keys: Sequence[str]) -> dict[str, str]:
        if not record_keys:
            return {}
        values = cast(list[Any], self.redis.hmget(self._k("alias"), list(record_keys)))
        return {k: _text(v) for k, v in zip(record_keys, values, strict=True) if v is not None}

    def set_person_keys(self, items: Mapping[str, str]) -> None:
        if not items:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self._k("alias"), mapping=dict(items))
        pipe.expire(self._k("alias"), self._ttl_person)
        pipe.execute()

    # events waiting for a record with their email -------------------------------------
    def get_held_events(self) -> dict[str, str]:
        raw = cast(dict[Any, Any], self.redis.hgetall(self._k("held-events")))
        return {_text(k): _text(v) for k, v in raw.items()}

    def hold_events(self, items: Mapping[str, str]) -> None:
        if not items:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self._k("held-events"), mapping=dict(items))
        pipe.expire(self._k("held-events"), self._ttl_held)
        pipe.execute()

    def drop_held_events(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            self.redis.hdel(self._k("held-events"), *event_ids)

    # routing pools: no TTL (counts, not a cache of CRM data; docs/routing.md) -------------
    def _routing_keys(self) -> list[str]:
        return [self._k("routing", "load"), self._k("routing", "owner"),
                self._k("routing", "served"), self._k("routing", "routed")]

    def set_open_owners(self, items: Mapping[str, str | None], page: int = 1000) -> int:
        pairs = [(p, (o or "")) for p, o in sorted(items.items())]
        moved = 0
        for start in range(0, len(pairs), page):  # a full run sets everyone: short scripts
            args = [x for pair in pairs[start:start + page] for x in pair]
            moved += int(self._set_open_owners(keys=self._routing_keys()[:2], args=args))
        return moved

    def owner_loads(self, owners: Sequence[str]) -> dict[str, int]:
        if not owners:
            return {}
        values = cast(list[Any], self.redis.hmget(self._k("routing", "load"), list(owners)))
        return {o: int(v or 0) for o, v in zip(owners, values, strict=True)}

    def open_owners(self) -> dict[str, str]:
        return {_text(k): _text(v) for k, v in
                self.redis.hscan_iter(self._k("routing", "owner"), count=1000)}

    def take_turn(self, pool: str, person: str, members: Sequence[tuple[str, int]],
                  capacity: int | None) -> str | None:
        if "\n" in pool or any("\n" in m for m, _ in members):
            raise StateError("routing pool and member names cannot contain a line break")
        args: list[str] = [person, pool, "" if capacity is None else str(int(capacity))]
        for member, weight in members:
            args += [member, str(int(weight))]
        got = self._take_turn(keys=self._routing_keys(), args=args)
        return None if got is None else str(got)

    def release_routes(self, person_keys: Sequence[str]) -> int:
        people = sorted(set(person_keys))
        released = 0
        for start in range(0, len(people), 1000):
            released += cast(int, self.redis.hdel(self._k("routing", "routed"),
                                                  *people[start:start + 1000]))
        return released

    def route_counts(self, pool: str) -> dict[str, tuple[int, int]]:
        prefix = pool + "\n"
        served = cast(dict[str, str], self.redis.hgetall(self._k("routing", "served")))
        members = sorted(k[len(prefix):] for k in served if k.startswith(prefix))
        loads = self.owner_loads(members)
        return {m: (int(served[prefix + m]), loads[m]) for m in members}

    # locks and maintenance --------------------------------------------------------------
    def lock(self, name: str, ttl_seconds: float, *, shared: bool = False
             ) -> RedisLock | RedisSharedLock:
        if shared:
            return RedisSharedLock(self.redis, self._k("lock", name), ttl_seconds)
        return RedisLock(self.redis, self._k("lock", name), ttl_seconds)

    # the run's staging area (docs/resume.md): one writer, the run holding the people lease
    def stage(self, items: Mapping[str, str], index: Mapping[str, Sequence[str]]) -> None:
        if not items and not index:
            return
        tokens = list(index)
        merged: dict[str, str] = {}
        if tokens:
            known = cast(list[Any], self.redis.hmget(self._k("stage", "idx"), tokens))
            for token, blob in zip(tokens, known, strict=True):
                keys = set(_text(blob).split()) if blob is not None else set()
                keys.update(index[token])
                merged[token] = " ".join(sorted(keys))
        pipe = self.redis.pipeline(transaction=True)
        if items:
            pipe.hset(self._k("stage", "rec"), mapping=dict(items))
            pipe.expire(self._k("stage", "rec"), self._ttl_staged)
        if merged:
            pipe.hset(self._k("stage", "idx"), mapping=merged)
            pipe.expire(self._k("stage", "idx"), self._ttl_staged)
        pipe.execute()

    def get_staged(self, record_keys: Sequence[str]) -> dict[str, str]:
        if not record_keys:
            return {}
        keys = list(record_keys)
        values = cast(list[Any], self.redis.hmget(self._k("stage", "rec"), keys))
        return {k: _text(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def staged_keys(self, tokens: Sequence[str]) -> set[str]:
        """Record keys the index holds under these tokens (some may be unstaged since)."""
        if not tokens:
            return set()
        blobs = cast(list[Any], self.redis.hmget(self._k("stage", "idx"), list(tokens)))
        return {k for blob in blobs if blob is not None for k in _text(blob).split()}

    def scan_staged(self, cursor: str, count: int) -> tuple[str, dict[str, str]]:
        """One HSCAN step (about `count` records; a record may come twice, as SCAN says)."""
        nxt, found = cast(tuple[Any, dict[Any, Any]], self.redis.hscan(
            self._k("stage", "rec"), int(cursor or 0), count=count))
        out = {_text(k): _text(v) for k, v in found.items()}
        return ("" if int(nxt) == 0 else str(nxt)), out

    def unstage(self, record_keys: Sequence[str]) -> None:
        if record_keys:
            self.redis.hdel(self._k("stage", "rec"), *record_keys)

    def clear_staged(self) -> None:
        self.redis.unlink(self._k("stage", "rec"), self._k("stage", "idx"))

    def clear(self) -> None:
        """Delete every key under the namespace (what a wiped or replaced Redis looks like)."""
        batch: list[Any] = []
        for key in self.redis.scan_iter(match=f"{self.namespace}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.redis.unlink(*batch)
                batch.clear()
        if batch:
            self.redis.unlink(*batch)


def connect(redis_url: str, namespace: str = "leadsync") -> RedisStateStore:
    """A `RedisStateStore` on `redis_url`, checked with a PING; StateError names the setting."""
    try:
        client = redis.Redis.from_url(
            redis_url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=30,
            health_check_interval=30,
        )
        client.ping()
    except (RedisError, ValueError) as exc:
        raise StateError(
            f"LEADSYNC_REDIS_URL: Redis at {redact_url(redis_url)} is unreachable or invalid "
            f"({type(exc).__name__}); expected redis://[:password@]host:port/db"
        ) from None
    return RedisStateStore(client, namespace)
