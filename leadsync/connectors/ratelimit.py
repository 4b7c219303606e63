"""Client-side rate limiting: HubSpot's rolling windows and Salesforce's daily budget.

HubSpot counts requests per private app in a rolling 10-second window (and search per second),
so every worker of one installation must draw from the same window: `RedisWindowLimiter` keeps
it in a sorted set updated by one Lua script (atomic across workers, timed by the Redis server's
clock so worker clock skew does not matter). `InMemoryWindowLimiter` is the same algorithm for a
single process without Redis. `DailyBudget` caps Salesforce use at a share of the org's daily
allocation (read from `Sforce-Limit-Info`) and stops the run cleanly when it is spent.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime
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


class DailyBudget:
    """leadsync's share of the Salesforce org's daily API allocation.

    Two stops, both checked before each request: our own calls today (counted in Redis per UTC
    day when given, so all workers share it) reach `share × limit`; or the org as a whole has
    used its allocation (`used >= limit`, as Sforce-Limit-Info reports). Until the first response
    tells us the limit, requests are allowed.
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
        self._local: dict[str, int] = {}
        self._lock = threading.Lock()
        self.org_used: int | None = None
        self.org_limit: int | None = None

    def _key(self) -> str:
        return f"{self._prefix}:{self._clock().date().isoformat()}"

    def spent_today(self) -> int:
        key = self._key()
        if self._redis is not None:
            raw = self._redis.get(key)
            return int(raw) if raw is not None else 0
        with self._lock:
            return self._local.get(key, 0)

    def allowance(self) -> int | None:
        """Calls leadsync may make per day, once the org's limit is known."""
        return None if self.org_limit is None else max(1, int(self.org_limit * self.share))

    def check(self) -> None:
        """Raise `BudgetExhausted` when no further request may be sent today."""
        if self.org_limit is None:
            return
        if self.org_used is not None and self.org_used >= self.org_limit:
            raise BudgetExhausted(
                f"Salesforce daily API limit reached ({self.org_used}/{self.org_limit})"
            )
        allowance = self.allowance()
        spent = self.spent_today()
        if allowance is not None and spent >= allowance:
            raise BudgetExhausted(
                f"leadsync's Salesforce budget for today is spent ({spent}/{allowance} calls, "
                f"{self.share:.0%} of the org's {self.org_limit})"
            )

    def record_call(self) -> None:
        key = self._key()
        if self._redis is not None:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 2 * 86400)
            pipe.execute()
            return
        with self._lock:
            self._local[key] = self._local.get(key, 0) + 1

    def observe(self, header: str | None) -> None:
        """Update the org's usage from a response's Sforce-Limit-Info header."""
        parsed = parse_limit_info(header)
        if parsed is not None:
            self.org_used, self.org_limit = parsed
