"""The Redis state store of the tests that need one: LEADSYNC_TEST_REDIS_URL (db 13 by
default), each test file in a namespace of its own, cleared before and after; the test is
skipped, naming the URL, when Redis cannot be reached."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

TEST_REDIS_URL = os.environ.get("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@contextmanager
def redis_store(namespace: str) -> Iterator[Any]:
    """A `RedisStateStore` in `namespace`, empty, emptied again afterwards."""
    redis = pytest.importorskip("redis")
    from leadsync.state import RedisStateStore

    client = redis.Redis.from_url(TEST_REDIS_URL, decode_responses=True,
                                  socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {TEST_REDIS_URL}: {type(exc).__name__}")
    state = RedisStateStore(client, namespace=namespace)
    state.clear()
    try:
        yield state
    finally:
        state.clear()
