"""leadsync.tasks.transport on a real Redis (LEADSYNC_TEST_REDIS_URL, its own db): the guard
that keeps a worker alive when its broker connection is torn down twice, and the visibility
renewal that lets a short visibility timeout coexist with long jobs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection
from kombu.common import ignore_errors

from leadsync.tasks.transport import TRANSPORT, BrokerConnectionClosed

pytestmark = pytest.mark.redis
REDIS_URL = os.environ.get("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
QUEUE = "leadsync-transport-test"


@pytest.fixture
def client() -> Iterator[Any]:
    redis = pytest.importorskip("redis")
    c = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        c.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable: {type(exc).__name__}")
    c.flushdb()
    yield c
    c.flushdb()
    c.close()


def connect(transport: str | None = TRANSPORT, visibility: float = 300) -> Connection:
    return Connection(REDIS_URL, transport=transport,
                      transport_options={"visibility_timeout": visibility})


def take_one(conn: Connection) -> Any:
    """Publish one message and take it without acknowledging it (a job a worker runs)."""
    channel = conn.default_channel
    producer = conn.Producer(channel)
    producer.publish({"job": "incremental"}, routing_key=QUEUE,
                     declare=[conn.SimpleQueue(QUEUE).queue])
    message = channel.basic_get(QUEUE, no_ack=False)
    assert message is not None
    return message


@pytest.mark.parametrize(("transport", "survives"), [(TRANSPORT, True), (None, False)])
def test_closing_a_collected_connection_with_unacked_work(
    client: Any, transport: str | None, survives: bool
) -> None:
    """What Celery does after losing the broker: the connection's transport reference is
    already dropped (`collect`) when `close` restores unacknowledged messages. kombu's own
    transport raises AttributeError there (fatal to the worker); ours a connection error,
    which Celery ignores."""
    conn = connect(transport)
    take_one(conn)
    conn._do_close_transport()  # the end state of Connection.collect()
    if survives:
        ignore_errors(conn, conn.close)
        assert client.hlen("unacked") == 1  # still in Redis: restored after the timeout
    else:
        with pytest.raises(AttributeError, match="hostname"):
            ignore_errors(conn, conn.close)


def test_guard_raises_a_connection_error_of_the_transport() -> None:
    conn = connect()
    channel = conn.default_channel
    assert issubclass(BrokerConnectionClosed, conn.transport.connection_errors)
    transport, channel.connection = channel.connection, None
    with pytest.raises(BrokerConnectionClosed):
        channel._connparams()
    channel.connection = transport
    conn.release()


def test_renewal_keeps_a_running_job_invisible_and_a_crashed_one_comes_back(client: Any) -> None:
    running, crashed = connect(visibility=1), connect(visibility=1)
    take_one(running)
    take_one(crashed)  # this "worker" dies: nobody renews or acknowledges its message
    tags = [t.decode() for t in client.zrange("unacked_index", 0, -1)]
    assert len(tags) == 2
    qos = running.default_channel.qos
    time.sleep(1.2)
    assert qos.renew() == 1  # only its own message
    sweeper = connect(visibility=1)
    sweeper.default_channel.qos.restore_visible(num=10, interval=1)
    assert client.llen(QUEUE) == 1  # the crashed worker's message is queued again
    assert client.zcard("unacked_index") == 1  # the running one is still held
    for conn in (running, sweeper):
        conn.release()
