"""State store pieces that need no server: the event codec, open_state, URL redaction,
argument checks — bad input gets an error naming the thing at fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from leadsync.scoring.profile import Event
from leadsync.state import (
    InMemoryStateStore,
    StateError,
    decode_event,
    encode_event,
    open_state,
)
from leadsync.state_redis import RedisStateStore, redact_url

AT = datetime(2026, 11, 2, 9, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "event",
    [
        Event("page_view", AT, MappingProxyType({"url": "https://example.com/pricing"}), "hubspot"),
        Event("sales_touch", AT, MappingProxyType({"channel": "call"}), "salesforce"),
        Event("email_open", AT),
        Event("form_submit", AT, MappingProxyType({"form": "資料請求 🚀\u202e"}), None),
    ],
)
def test_event_roundtrip(event: Event) -> None:
    assert decode_event(encode_event(event)) == event


def test_encoding_is_compact_and_converts_to_utc() -> None:
    jst = Event("email_open", AT.astimezone(timezone(timedelta(hours=9))))
    text = encode_event(jst)
    assert text == '{"t":"email_open","a":"2026-11-02T09:30:15Z"}'
    assert decode_event(text.encode()).at == AT


def test_naive_event_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        encode_event(Event("page_view", datetime(2026, 11, 2)))


@pytest.mark.parametrize(
    "payload", ["", "{}", '{"t":"page_view"}', '{"t":"x","a":"yesterday"}', "[]"]
)
def test_unreadable_stored_event_is_a_state_error(payload: str) -> None:
    with pytest.raises(StateError, match="unreadable stored event"):
        decode_event(payload)


def test_open_state_without_url_is_in_memory() -> None:
    assert isinstance(open_state(None), InMemoryStateStore)
    assert isinstance(open_state(""), InMemoryStateStore)


def test_open_state_with_unreachable_redis_names_the_setting_not_the_password() -> None:
    with pytest.raises(StateError, match="LEADSYNC_REDIS_URL") as err:
        open_state("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in str(err.value)
    with pytest.raises(StateError, match="LEADSYNC_REDIS_URL"):
        open_state("http://not-redis")


def test_redact_url() -> None:
    assert redact_url("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redact_url("rediss://user:pw@h/1") == "rediss://user:***@h/1"
    assert redact_url("redis://127.0.0.1:6379/13") == "redis://127.0.0.1:6379/13"


def test_bad_namespace_and_ttls_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="namespace"):
        RedisStateStore(object(), namespace="lead sync*")  # type: ignore[arg-type]
    store = InMemoryStateStore()
    with pytest.raises(ValueError, match="job:x"):
        store.lock("job:x", 0)
    with pytest.raises(ValueError, match="ttl_seconds"):
        store.claim_task_key("k", -1)


def test_in_memory_claims_and_leases_follow_an_injected_clock() -> None:
    now = [100.0]
    store = InMemoryStateStore(clock=lambda: now[0])
    lock = store.lock("job:incremental", 10)
    assert lock.acquire() and store.claim_task_key("k", 5)
    now[0] += 6
    assert store.claim_task_key("k", 5)  # the first claim expired
    assert lock.extend()  # still within its lease: renewed to 10 s from now
    now[0] += 9
    assert lock.owned()
    now[0] += 2
    assert not lock.owned() and not lock.extend()
    assert store.lock("job:incremental", 10).acquire()
