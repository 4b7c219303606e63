"""The one HTTP retry policy both connectors use, plus error classification and redaction.

Retries live here and nowhere else (STYLE.md §4): a CRM call is wrapped once, at the boundary
where requests leave the process. 429, 5xx, connection errors and timeouts are retried with
exponential backoff and full jitter; a server's `Retry-After` (or a rate-limit reset it tells
us about) is honoured as the minimum wait. Daily caps and auth failures are never retried.

Creates are different: neither CRM has an idempotency key for a task, so a create whose outcome
is unknown must not be sent again blindly. Every failure says whether the server may have
processed the request (`Retryable.maybe_processed`): a refused or timed-out *connect*, a DNS
failure or a 429 that says "rate limited" provably did nothing and is retried for any request;
a read timeout, a connection reset or closed after the request was sent, or a 5xx may have
committed the create. With `idempotent=False` such a failure is not retried but raised as
`OutcomeUnknown`, and the caller settles it by reading (`leadsync.connectors.creates`).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import requests
import urllib3
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
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
    server's minimum wait in seconds when it said one. `maybe_processed` is False only when the
    request provably did nothing on the server (see `transport_failure`, `status_failure`).
    """

    def __init__(
        self, reason: str, retry_after: float | None = None, *, maybe_processed: bool = True
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.maybe_processed = maybe_processed


class OutcomeUnknown(TransientError):
    """A non-idempotent request (a create) failed after it was sent: the server may or may not
    have processed it. It is not retried; the caller reads back what exists before sending
    again."""

    def __init__(self, op: str, reason: str) -> None:
        super().__init__(f"{op}: outcome unknown ({reason}); not replayed")
        self.op = op
        self.reason = reason


# connect-stage failures: the server never saw the request (urllib3's own `_is_connection_error`)
_NOT_SENT: tuple[type[BaseException], ...] = (
    urllib3.exceptions.ConnectTimeoutError,  # includes NewConnectionError, NameResolutionError
    requests.exceptions.ConnectTimeout,
    ConnectionRefusedError,
    socket.gaierror,
)
# read-stage failures: the request went out (urllib3's `_is_read_error`)
_SENT: tuple[type[BaseException], ...] = (
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.ProtocolError,
    requests.exceptions.ReadTimeout,
    ConnectionResetError,
    BrokenPipeError,
)


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps: args, `reason` (MaxRetryError), `original_error`, causes."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 12:
        item = todo.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend(a for a in item.args if isinstance(a, BaseException))
        for attr in ("reason", "original_error", "__cause__", "__context__"):
            inner = getattr(item, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
    return seen


def request_never_sent(exc: BaseException) -> bool:
    """True when a transport error provably happened before the request reached the server
    (connection refused, DNS, connect timeout); anything else may have been processed."""
    chain = _causes(exc)
    if any(isinstance(e, _SENT) for e in chain):
        return False
    return any(isinstance(e, _NOT_SENT) for e in chain)


def transport_failure(exc: BaseException) -> Retryable:
    """The `Retryable` a connection-level error (urllib3, requests, OSError) becomes."""
    return Retryable(f"connection: {type(exc).__name__}",
                     maybe_processed=not request_never_sent(exc))  # fmt: skip


def status_failure(
    status: int, reason: str, retry_after: float | None = None, *, rate_limited: bool = False
) -> Retryable:
    """The `Retryable` a retryable status becomes: only a 429 whose body says the request was
    rate limited is known not to have been processed; a 5xx, 408 or 425 may have been."""
    return Retryable(reason, retry_after, maybe_processed=not (status == 429 and rate_limited))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. Defaults suit a scheduled sync: a few minutes at most per call."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_seconds: float = 180.0
    create_rounds: int = 3  # sends of one batch of creates, each settled by a read-back
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential backoff, never shorter than the server's `retry_after`."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        delay = self.rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay * 4))
        return delay


def call_with_policy(
    op: str, attempt: Callable[[], T], policy: RetryPolicy, *, idempotent: bool = True
) -> T:
    """Run `attempt` until it returns, raises something other than `Retryable`, or the policy
    gives up; then raise `TransientError` naming the operation and the last reason.

    With `idempotent=False` (creates) only failures that provably did nothing are retried; one
    that may have been processed raises `OutcomeUnknown` at once, without a replay."""

    def should_retry(exc: BaseException) -> bool:
        return isinstance(exc, Retryable) and (idempotent or not exc.maybe_processed)

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
        retry=retry_if_exception(should_retry),
        sleep=policy.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except Retryable as exc:
        if not idempotent and exc.maybe_processed:
            log.warning("CRM create failed after it was sent; not replaying it",
                        extra={"op": op, "reason": exc.reason})  # fmt: skip
            raise OutcomeUnknown(op, exc.reason) from None
        raise TransientError(
            f"{op}: gave up after {policy.max_attempts} attempts ({exc.reason})"
        ) from None


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
    return Retryable(f"{host}: {what}", maybe_processed=not request_never_sent(exc))


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
