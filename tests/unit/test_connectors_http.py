"""The one retry policy, Retry-After parsing and redaction (leadsync.connectors.http)."""

from __future__ import annotations

import random

import pytest

from leadsync.connectors.base import AuthError, TransientError
from leadsync.connectors.http import (
    Retryable,
    RetryPolicy,
    call_with_policy,
    parse_retry_after,
    redact,
)


def _policy(sleeps: list[float], attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, base_delay=0.1, max_delay=1.0,
                       sleep=sleeps.append, rng=random.Random(7))  # fmt: skip


def test_retries_until_success_and_backs_off_exponentially() -> None:
    sleeps: list[float] = []
    outcomes = iter([Retryable("HTTP 503"), Retryable("HTTP 502"), Retryable("HTTP 500"), "ok"])

    def attempt() -> str:
        item = next(outcomes)
        if isinstance(item, Exception):
            raise item
        return item

    assert call_with_policy("op", attempt, _policy(sleeps)) == "ok"
    assert len(sleeps) == 3
    # full jitter within [ceiling/2, ceiling], ceiling doubling from base 0.1
    for n, slept in enumerate(sleeps, start=1):
        ceiling = min(1.0, 0.1 * 2 ** (n - 1))
        assert ceiling / 2 <= slept <= ceiling


def test_gives_up_with_transient_error_naming_op_and_reason() -> None:
    sleeps: list[float] = []
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise Retryable("429 TEN_SECONDLY_ROLLING")

    with pytest.raises(TransientError, match=r"contacts search.*429 TEN_SECONDLY_ROLLING"):
        call_with_policy("contacts search", attempt, _policy(sleeps, attempts=3))
    assert len(calls) == 3 and len(sleeps) == 2


def test_retry_after_is_the_minimum_wait() -> None:
    sleeps: list[float] = []
    outcomes = iter([Retryable("429", retry_after=2.5), "ok"])

    def attempt() -> str:
        item = next(outcomes)
        if isinstance(item, Exception):
            raise item
        return item

    call_with_policy("op", attempt, _policy(sleeps))
    assert sleeps == [pytest.approx(2.5)]


def test_non_retryable_errors_pass_through_at_once() -> None:
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise AuthError("401")

    with pytest.raises(AuthError):
        call_with_policy("op", attempt, _policy([]))
    assert calls == [1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-1", 0.0), ("", None), (None, None), ("soon", None),
     ("Thu, 01 Jan 1970 00:00:10 GMT", 10.0)],
)  # fmt: skip
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=0.0) == expected


@pytest.mark.parametrize(
    "secret",
    ["taro.yamada@example.co.jp", "Bearer pat-na1-0123-abcd", "00D5g000000abcd!AQ8AQH.xyz_Tok",
     '"access_token": "abc123"', "<sessionId>00Dxx!secret</sessionId>", "password=hunter2"],
)  # fmt: skip
def test_redact_removes_credentials_and_emails(secret: str) -> None:
    text = redact(f"HTTP 400 body: {secret} trailing")
    for fragment in ("taro", "pat-na1", "AQ8AQH", "abc123", "secret", "hunter2"):
        assert fragment not in text


def test_redact_cuts_long_bodies() -> None:
    assert len(redact("x" * 10_000, limit=50)) == 50
