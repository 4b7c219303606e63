"""The one HTTP retry policy both connectors use, plus error classification and redaction.

Retries live here and nowhere else (STYLE.md §4): a CRM call is wrapped once, at the boundary
where requests leave the process. 429, 5xx, connection errors and timeouts are retried with
exponential backoff and full jitter; a server's `Retry-After` (or a rate-limit reset it tells
us about) is honoured as the minimum wait. Daily caps and auth failures are never retried.
Everything that might be shown to a user passes through `redact()` first: vendor SDKs put
response bodies (record data) and sometimes credentials into their exception text.
"""

from __future__ import annotations

import email.utils
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from leadsync.connectors.base import TransientError
from leadsync.logs import redact as redact_text

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUS: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})


class Retryable(Exception):
    """Raised inside an attempt to ask the policy for another try.

    `reason` is already redacted (status and vendor error code only); `retry_after` is the
    server's minimum wait in seconds when it said one.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. Defaults suit a scheduled sync: a few minutes at most per call."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_seconds: float = 180.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential backoff, never shorter than the server's `retry_after`."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        delay = self.rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay * 4))
        return delay


def call_with_policy(op: str, attempt: Callable[[], T], policy: RetryPolicy) -> T:
    """Run `attempt` until it returns, raises something other than `Retryable`, or the policy
    gives up; then raise `TransientError` naming the operation and the last reason."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, Retryable) else None
        return policy.backoff(state.attempt_number, retry_after)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info(
            "retrying CRM call",
            extra={
                "op": op,
                "attempt": state.attempt_number,
                "reason": getattr(exc, "reason", type(exc).__name__),
                "wait_s": round(state.upcoming_sleep, 3),
            },
        )

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_total_seconds),
        wait=wait,
        retry=retry_if_exception_type(Retryable),
        sleep=policy.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except Retryable as exc:
        raise TransientError(
            f"{op}: gave up after {policy.max_attempts} attempts ({exc.reason})"
        ) from None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps (causes, contexts, urllib3's `reason`, exception args)."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend((item.__cause__, item.__context__, getattr(item, "reason", None),
                      *getattr(item, "args", ())))


def connection_failure(system: str, host: str, setting: str, exc: BaseException) -> Exception:
    """What a failed connection becomes, naming the host: a host name that does not resolve
    (a typo, a wrong domain) fails at once with `TransientError` — retrying it only costs time
    — and anything else (refused, reset, timed out) is `Retryable`."""
    import urllib3

    kinds = [type(e).__name__ for e in _causes(exc)]
    if any(isinstance(e, socket.gaierror | urllib3.exceptions.NameResolutionError)
           for e in _causes(exc)):
        return TransientError(f"{system} at {host}: the host name does not resolve; check "
                              f"{setting} (and DNS)")
    timeout = any("Timeout" in k for k in kinds)
    what = "timed out" if timeout else f"connection failed ({type(exc).__name__})"
    return Retryable(f"{host}: {what}")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


class CallCounter:
    """Thread-safe count of HTTP requests actually sent (retries and logins included)."""

    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._n += n

    @property
    def value(self) -> int:
        return self._n


def redact(text: object, limit: int = 300) -> str:
    """Text safe for logs and user-facing errors: no emails, tokens, sessions or passwords
    (`leadsync.logs.redact`), and cut to `limit` characters (bodies may hold whole records)."""
    s = redact_text(str(text))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def utc_now() -> datetime:
    """The default clock of the connectors (injectable for tests)."""
    return datetime.now(UTC)
