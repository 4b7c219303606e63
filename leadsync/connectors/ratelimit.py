"""Client-side rate limiting: HubSpot's rolling windows and Salesforce's daily budget.

HubSpot counts requests per private app in a rolling 10-second window (and search per second),
so every worker of one installation must draw from the same window: `RedisWindowLimiter` keeps
it in a sorted set updated by one Lua script (atomic across workers, timed by the Redis server's
clock so worker clock skew does not matter). `InMemoryWindowLimiter` is the same algorithm for a
single process without Redis. `DailyBudget` caps Salesforce use at a share of the org's daily
allocation (read from `Sforce-Limit-Info`) over a rolling 24 hours, with an atomic
check-and-spend shared by all workers, and stops Salesforce work cleanly when it is spent.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from leadsync.connectors.base import BudgetExhausted

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    def acquire(self) -> None:
        """Block until one request may be sent, then count it."""
        ...


class InMemoryWindowLimiter:
    """At most `limit` acquisitions in any `window` seconds, in this process."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"rate limiter needs limit >= 1 and window > 0, got {limit}/{window}")
        self.limit = limit
        self.window = window
        self._now = monotonic
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def _try(self) -> float:
        now = self._now()
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            self._sent.append(now)
            return 0.0
        return self._sent[0] + self.window - now

    def acquire(self) -> None:
        while True:
            with self._lock:
                wait = self._try()
            if wait <= 0:
                return
            self._sleep(wait)


# KEYS[1] the sorted set; ARGV: limit, window_ms, member. Returns 0 when admitted, else the
# milliseconds until the oldest entry leaves the window.
_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
"""


class RedisWindowLimiter:
    """The rolling window shared by every worker that uses the same Redis `key`."""

    def __init__(
        self,
        redis: Any,
        key: str,
        limit: int,
        window: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"rate limiter needs limit >= 1 and window > 0, got {limit}/{window}")
        self.key = key
        self.limit = limit
        self.window = window
        self._sleep = sleep
        self._script = redis.register_script(_WINDOW_LUA)

    def acquire(self) -> None:
        while True:
            member = uuid.uuid4().hex
            wait_ms = int(
                self._script(keys=[self.key], args=[self.limit, int(self.window * 1000), member])
            )
            if wait_ms <= 0:
                return
            self._sleep(wait_ms / 1000)


def window_limiter(
    redis: Any | None, key: str, limit: int, window: float, sleep: Callable[[float], None]
) -> RateLimiter:
    """A shared limiter when Redis is given, else a process-local one."""
    if redis is not None:
        return RedisWindowLimiter(redis, key, limit, window, sleep=sleep)
    return InMemoryWindowLimiter(limit, window, sleep=sleep)


_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


def parse_limit_info(header: str | None) -> tuple[int, int] | None:
    """(used, limit) from `Sforce-Limit-Info: api-usage=USED/LIMIT`, or None."""
    if not header:
        return None
    m = _LIMIT_INFO.search(header)
    return (int(m.group(1)), int(m.group(2))) if m else None


HOUR = 3600
WINDOW_HOURS = 24
ORG_FULL_PAUSE_SECONDS = 3600  # after the org reports its limit reached, probe once an hour
_BUDGET_TTL = (WINDOW_HOURS + 2) * HOUR
_FACTS_TTL = 7 * 86_400

# KEYS[1]: hash hour number -> calls; KEYS[2]: hash of shared facts (allowance, blocked_until).
# ARGV: now (epoch seconds), allowance (-1: not known by this caller), calls to spend (0: peek),
# force (1: count even past the allowance: a call already sent). One script, so the check and
# the spend are one atomic step for every worker. Returns {status, spent, allowance, blocked}:
# status 1 admitted, 0 our share is spent, -1 the org reported its own limit reached.
_BUDGET_LUA = """
local now = tonumber(ARGV[1])
local hour = math.floor(now / 3600)
local allowance = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
if allowance < 0 then
  local stored = redis.call('HGET', KEYS[2], 'allowance')
  if stored then allowance = tonumber(stored) end
else
  redis.call('HSET', KEYS[2], 'allowance', allowance)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
end
local blocked = tonumber(redis.call('HGET', KEYS[2], 'blocked_until') or '0')
local spent = 0
local buckets = redis.call('HGETALL', KEYS[1])
for i = 1, #buckets, 2 do
  if tonumber(buckets[i]) < hour - tonumber(ARGV[7]) then
    redis.call('HDEL', KEYS[1], buckets[i])
  else
    spent = spent + tonumber(buckets[i + 1])
  end
end
if ARGV[4] ~= '1' then
  if now < blocked then return {-1, spent, allowance, blocked} end
  local want = n
  if want < 1 then want = 1 end
  if allowance >= 0 and spent + want > allowance then return {0, spent, allowance, blocked} end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[1], hour, n)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
  spent = spent + n
end
return {1, spent, allowance, blocked}
"""


class DailyBudget:
    """leadsync's share of the Salesforce org's API allocation, over a rolling 24 hours.

    Salesforce counts API requests over the last 24 hours (not per calendar day), so leadsync
    does too: calls are counted in hourly buckets and the window is the current hour and the
    24 before it (a call leaves it 24 to 25 h later, never early). `spend()` checks and counts
    one call in one atomic step: a Lua script when Redis is given (every worker of the org
    shares it), a lock-guarded twin in memory otherwise. It refuses when our calls in the
    window reach `share × limit`, or for an hour after the org as a whole reported its
    allocation used up (`Sforce-Limit-Info` used >= limit). The allowance and that pause are
    shared too, so a fresh worker process knows the budget is spent without sending a request
    to find out. Until any response has told the limit, requests are allowed.
    """

    def __init__(
        self,
        share: float,
        *,
        redis: Any | None = None,
        key_prefix: str = "leadsync:sf:budget",
        clock: Callable[[], datetime],
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"daily budget share must be in (0, 1], got {share}")
        self.share = share
        self._redis = redis
        self._prefix = key_prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._local: dict[int, int] = {}  # hour number -> calls (the in-memory twin)
        self._local_facts: dict[str, float] = {}
        self._script = redis.register_script(_BUDGET_LUA) if redis is not None else None
        self.org_used: int | None = None
        self.org_limit: int | None = None

    def allowance(self) -> int | None:
        """Calls leadsync may make per rolling 24 h, once the org's limit is known."""
        return None if self.org_limit is None else max(1, int(self.org_limit * self.share))

    def _run(self, calls: int, *, force: bool = False) -> tuple[int, int, int, float]:
        now = self._clock().timestamp()
        allowance = self.allowance()
        if self._script is not None:
            out = self._script(
                keys=[f"{self._prefix}:calls", f"{self._prefix}:facts"],
                args=[now, -1 if allowance is None else allowance, calls, int(force),
                      _BUDGET_TTL, _FACTS_TTL, WINDOW_HOURS],
            )
            return int(out[0]), int(out[1]), int(out[2]), float(out[3])
        with self._lock:
            return self._run_local(now, allowance, calls, force)

    def _run_local(self, now: float, allowance: int | None, calls: int, force: bool
                   ) -> tuple[int, int, int, float]:
        hour = int(now // HOUR)
        if allowance is None:
            allowance = int(self._local_facts.get("allowance", -1))
        else:
            self._local_facts["allowance"] = allowance
        blocked = self._local_facts.get("blocked_until", 0.0)
        for h in [h for h in self._local if h < hour - WINDOW_HOURS]:
            del self._local[h]
        spent = sum(self._local.values())
        if not force:
            if now < blocked:
                return -1, spent, allowance, blocked
            if allowance >= 0 and spent + max(calls, 1) > allowance:
                return 0, spent, allowance, blocked
        if calls > 0:
            self._local[hour] = self._local.get(hour, 0) + calls
            spent += calls
        return 1, spent, allowance, blocked

    def _refuse(self, status: int, spent: int, allowance: int, blocked: float) -> None:
        if status == -1:
            until = datetime.fromtimestamp(blocked, UTC).isoformat(timespec="minutes")
            raise BudgetExhausted(
                f"Salesforce daily API limit reached ({self.org_used}/{self.org_limit} at last "
                f"look); next try after {until}"
            )
        if status == 0:
            raise BudgetExhausted(
                f"leadsync's Salesforce budget for today is spent ({spent}/{allowance} calls in "
                f"the last 24 h, {self.share:.0%} of the org's limit)"
            )

    def spend(self, calls: int = 1) -> None:
        """Check and count `calls` requests atomically; `BudgetExhausted` when not allowed
        (nothing is counted then)."""
        self._refuse(*self._run(calls))

    def check(self) -> None:
        """Raise `BudgetExhausted` when no further request may be sent now (counts nothing)."""
        self._refuse(*self._run(0))

    def record_call(self) -> None:
        """Count a request already sent, whatever the budget says."""
        self._run(1, force=True)

    def spent_today(self) -> int:
        """Our calls in the rolling 24-hour window."""
        return self._run(0, force=True)[1]

    def observe(self, header: str | None) -> None:
        """Update the org's usage from a response's Sforce-Limit-Info header; when the org has
        used its allocation, every worker pauses Salesforce calls for an hour."""
        parsed = parse_limit_info(header)
        if parsed is None:
            return
        self.org_used, self.org_limit = parsed
        if self.org_used >= self.org_limit:
            self.pause(ORG_FULL_PAUSE_SECONDS)

    def pause(self, seconds: float) -> None:
        """Refuse every call for `seconds` (shared through Redis when given)."""
        until = self._clock().timestamp() + seconds
        if self._redis is not None:
            key = f"{self._prefix}:facts"
            pipe = self._redis.pipeline()
            pipe.hset(key, "blocked_until", until)
            pipe.expire(key, _FACTS_TTL)
            pipe.execute()
            return
        with self._lock:
            self._local_facts["blocked_until"] = until
