"""The one retry policy, Retry-After parsing and redaction (leadsync.connectors.http)."""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import urllib3
from pydantic import SecretStr
from simple_salesforce import Salesforce

from leadsync.config.settings import HubSpotSettings
from leadsync.connectors.base import AuthError, TransientError
from leadsync.connectors.http import (
    OutcomeUnknown,
    Retryable,
    RetryPolicy,
    call_with_policy,
    parse_retry_after,
    redact,
    request_never_sent,
    status_failure,
    transport_failure,
)
from leadsync.connectors.hubspot.client import HubSpotClient, classify_hubspot_error
from leadsync.connectors.salesforce.client import PolicySession


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


# ---- creates: which failures may have been processed, and no blind replay -------------------

_AFTER_SEND = urllib3.exceptions.ProtocolError(
    "Connection aborted.", http.client.RemoteDisconnected("closed without response"))
_NO_CONNECT = urllib3.exceptions.NewConnectionError(None, "connection refused")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "never_sent"),
    [
        # connect stage: the server never saw the request
        (_NO_CONNECT, True),
        (urllib3.exceptions.NameResolutionError("crm.example", None, OSError("nx")), True),  # type: ignore[arg-type]
        (urllib3.exceptions.ConnectTimeoutError(None, "connect timed out"), True),
        (urllib3.exceptions.MaxRetryError(None, "/x", _NO_CONNECT), True),  # type: ignore[arg-type]
        (requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/x", _NO_CONNECT)), True),  # type: ignore[arg-type]
        (requests.ConnectTimeout("connect timed out"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (socket.gaierror(-2, "Name or service not known"), True),
        # after the request was sent: it may have been processed
        (_AFTER_SEND, False),
        (urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104)), False),
        (urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out"), False),  # type: ignore[arg-type]
        (requests.ConnectionError(_AFTER_SEND), False),
        (requests.ReadTimeout("read timed out"), False),
        (ConnectionResetError(104, "reset"), False),
        # unknown: assume the worst
        (requests.exceptions.SSLError("bad record mac"), False),
        (OSError("something else"), False),
    ],
)  # fmt: skip
def test_which_transport_errors_provably_did_nothing(exc: Exception, never_sent: bool) -> None:
    assert request_never_sent(exc) is never_sent
    assert transport_failure(exc).maybe_processed is (not never_sent)


@pytest.mark.parametrize(
    ("status", "rate_limited", "maybe_processed"),
    [(429, True, False), (429, False, True), (500, False, True), (502, False, True),
     (503, True, True), (504, False, True), (408, False, True)],
)  # fmt: skip
def test_only_a_rate_limited_429_is_known_unprocessed(
    status: int, rate_limited: bool, maybe_processed: bool
) -> None:
    assert status_failure(status, "x", rate_limited=rate_limited).maybe_processed is maybe_processed


def _scripted(outcomes: list[object], calls: list[int]) -> Callable[[], str]:
    items = iter(outcomes)

    def attempt() -> str:
        calls.append(1)
        item = next(items)
        if isinstance(item, Exception):
            raise item
        return str(item)

    return attempt


def test_a_create_that_may_have_been_processed_is_not_replayed() -> None:
    calls: list[int] = []
    attempt = _scripted([Retryable("connection: ProtocolError"), "ok"], calls)
    with pytest.raises(OutcomeUnknown, match=r"tasks batch create.*ProtocolError.*not replayed"):
        call_with_policy("tasks batch create", attempt, _policy([]), idempotent=False)
    assert calls == [1]


def test_a_create_refused_before_processing_is_retried() -> None:
    calls: list[int] = []
    sleeps: list[float] = []
    attempt = _scripted([Retryable("429", maybe_processed=False),
                         Retryable("connection: NewConnectionError", maybe_processed=False),
                         "ok"], calls)  # fmt: skip
    assert call_with_policy("create", attempt, _policy(sleeps), idempotent=False) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2


def test_a_create_first_rate_limited_then_lost_is_outcome_unknown() -> None:
    calls: list[int] = []
    attempt = _scripted([Retryable("429", maybe_processed=False), Retryable("HTTP 502"), "ok"],
                        calls)  # fmt: skip
    with pytest.raises(OutcomeUnknown) as info:
        call_with_policy("create", attempt, _policy([]), idempotent=False)
    assert len(calls) == 2 and info.value.reason == "HTTP 502"
    assert isinstance(info.value, TransientError)  # callers that do not settle stop as before


def test_a_create_refused_until_the_end_is_transient_not_unknown() -> None:
    calls: list[int] = []
    attempt = _scripted([Retryable("429", maybe_processed=False)] * 3, calls)
    with pytest.raises(TransientError) as info:
        call_with_policy("create", attempt, _policy([], attempts=3), idempotent=False)
    assert not isinstance(info.value, OutcomeUnknown) and len(calls) == 3


def test_reads_and_updates_keep_retrying_after_a_lost_reply() -> None:
    calls: list[int] = []
    attempt = _scripted([Retryable("connection: ProtocolError"), Retryable("HTTP 503"), "ok"],
                        calls)  # fmt: skip
    assert call_with_policy("contacts batch update", attempt, _policy([])) == "ok"
    assert len(calls) == 3


def test_hubspot_statuses_say_whether_a_create_may_have_run() -> None:
    limited = classify_hubspot_error(
        "tasks batch create", 429,
        b'{"status":"error","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}', {})
    assert isinstance(limited, Retryable) and not limited.maybe_processed
    proxy_429 = classify_hubspot_error("tasks batch create", 429, b"<html>slow down</html>", {})
    assert isinstance(proxy_429, Retryable) and proxy_429.maybe_processed
    for status in (500, 502, 503, 504, 0):
        failure = classify_hubspot_error("tasks batch create", status, b"", {})
        assert isinstance(failure, Retryable) and failure.maybe_processed


# ---- real sockets: what urllib3 and requests raise, and that neither replays a POST ----------


@contextmanager
def _server(behaviour: str) -> Iterator[tuple[str, list[bytes]]]:
    """A socket that reads one request and then closes (`close`) or never answers (`hang`);
    `received` collects every request that arrived."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    received: list[bytes] = []
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        conn.settimeout(2)
        with contextlib.suppress(OSError):
            received.append(conn.recv(65536))
        if behaviour == "hang":
            stop.wait(5)
        conn.close()

    def serve() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join(3)
        sock.close()


class _NoBudget:
    """Stands in for the daily budget: these tests are about retries, not allowances."""

    def check(self) -> None: ...

    def spend(self) -> None: ...

    def record_call(self) -> None: ...

    def observe(self, header: str | None) -> None: ...


_NO_BUDGET: Any = _NoBudget()


def _hubspot_settings(url: str) -> HubSpotSettings:
    return HubSpotSettings(access_token=SecretStr("pat-na1-test"), base_url=url,
                           timeout_seconds=0.5)  # fmt: skip


@pytest.mark.parametrize("behaviour", ["close", "hang"])
def test_hubspot_create_after_send_is_sent_once_and_unknown(behaviour: str) -> None:
    with _server(behaviour) as (url, received):
        client = HubSpotClient(_hubspot_settings(url), sleep=lambda s: None)
        with pytest.raises(OutcomeUnknown):
            client.call("tasks batch create", client.tasks_batch.create, {"inputs": []},
                        idempotent=False)  # fmt: skip
        assert len(received) == 1  # neither urllib3 nor the policy sent it again
        assert client.calls.value == 1


def test_hubspot_create_to_a_closed_port_is_retried_as_never_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again on exit: connection refused
    client = HubSpotClient(_hubspot_settings(f"http://127.0.0.1:{port}"), sleep=lambda s: None,
                           policy=RetryPolicy(max_attempts=3, sleep=lambda s: None))  # fmt: skip
    with pytest.raises(TransientError) as info:
        client.call("tasks batch create", client.tasks_batch.create, {"inputs": []},
                    idempotent=False)  # fmt: skip
    assert not isinstance(info.value, OutcomeUnknown) and client.calls.value == 3


@pytest.mark.parametrize("behaviour", ["close", "hang"])
def test_salesforce_collections_post_after_send_is_sent_once_and_unknown(behaviour: str) -> None:
    with _server(behaviour) as (url, received):
        session = PolicySession(policy=RetryPolicy(sleep=lambda s: None),
                                budget=_NO_BUDGET, timeout=0.5)  # fmt: skip
        with pytest.raises(OutcomeUnknown):
            session.request("POST", f"{url}/services/data/v59.0/composite/sobjects",
                            json={"allOrNone": False, "records": []})  # fmt: skip
        assert len(received) == 1
        # the same failure on an update (PATCH) is retried: idempotent
        with pytest.raises(TransientError) as info:
            session.request("PATCH", f"{url}/services/data/v59.0/composite/sobjects",
                            json={"allOrNone": False, "records": []})  # fmt: skip
        assert not isinstance(info.value, OutcomeUnknown)
        assert len(received) == 1 + RetryPolicy().max_attempts


def test_no_sdk_layer_retries_on_its_own() -> None:
    """urllib3 under the HubSpot SDK runs with Retry(False); requests' adapters with
    Retry(0, read=False): the policy above is the only place a request is sent again."""
    client = HubSpotClient(_hubspot_settings("http://127.0.0.1:9"))
    for api in (client.tasks_batch, client.contacts_batch, client.associations_batch):
        pool = api.api_client.rest_client.pool_manager
        assert pool.connection_pool_kw["retries"].total is False
    session = PolicySession(policy=RetryPolicy(), budget=_NO_BUDGET, timeout=1)
    for adapter in session.adapters.values():
        retry = adapter.max_retries  # type: ignore[attr-defined]
        assert retry.total == 0 and retry.read is False
    # simple-salesforce replays on 401 by itself only when it holds a password login; leadsync
    # builds it from a session id (its PolicySession re-logs in once, a 401 did nothing)
    sf = Salesforce(session_id="00Dxx!x", instance="inst.example", session=session)
    assert sf._salesforce_login_partial is None
