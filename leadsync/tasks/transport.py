"""leadsync's Redis broker transport: kombu's own, with two small additions (operations.md).

1. **A lost Redis no longer kills the worker.** When the consumer loses its broker connection,
   Celery (5.7) first `collect()`s the connection — which, if the channel was waiting in BRPOP
   (any worker with a free pool slot: `--concurrency` 2 and more), fails to close the channel
   but does drop the transport's reference to its `Connection` — and then `close()`s it, which
   closes the channel again and makes kombu (5.7) restore the unacknowledged messages through a
   new connection pool built from that missing reference: `AttributeError: 'NoneType' object
   has no attribute 'hostname'` in `Channel._connparams`. Celery ignores only connection
   errors there, so the AttributeError ended the worker ("Unrecoverable error"). Here
   `_connparams` of a channel whose connection is gone raises `BrokerConnectionClosed`, a
   redis `ConnectionError`, which Celery ignores as it meant to; the worker reconnects. The
   messages it could not restore stay in Redis' unacked index (restored after the visibility
   timeout) or, if Redis came back empty, are gone with it and beat's next tick sends the job
   again. Same family as celery/kombu#582 and #970 (closing a channel whose transport was
   already released); kombu 5.7.0 has no fix for this path and no setting avoids it.
2. **Visibility renewal.** `QoS.renew()` re-stamps every message this channel holds
   unacknowledged as delivered *now* in kombu's `unacked_index`, so a short visibility timeout
   (the time after which a crashed worker's messages come back) does not redeliver a job that
   is still running. The worker calls it every `renew_interval(visibility)` seconds
   (`leadsync.tasks.health.WorkerHeartbeat`).
"""

from __future__ import annotations

import time
from typing import Any

import redis
from kombu.transport import redis as kombu_redis

TRANSPORT = "leadsync.tasks.transport:Transport"


class BrokerConnectionClosed(redis.exceptions.ConnectionError):
    """A channel was asked for a new Redis connection after its broker connection closed."""


def renew_interval(visibility_timeout: float) -> float:
    """How often the worker renews its messages' visibility: four times per timeout, so two
    missed renewals in a row still leave a quarter of it."""
    return max(1.0, visibility_timeout / 4)


class QoS(kombu_redis.QoS):
    def renew(self) -> int:
        """Mark the messages this channel holds unacknowledged as delivered now; returns how
        many were renewed. `xx=True`: a message acknowledged meanwhile is not put back."""
        tags = list(self._delivered)
        if not tags:
            return 0
        now = time.time()
        with self.channel.conn_or_acquire() as client:
            renewed: int = client.zadd(self.unacked_index_key, dict.fromkeys(tags, now),
                                       xx=True, ch=True)
        return renewed


class Channel(kombu_redis.Channel):
    QoS = QoS

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or getattr(self.connection, "client", None) is None:
            raise BrokerConnectionClosed(
                "broker connection already closed: its unacknowledged messages stay in Redis "
                "and come back after the visibility timeout")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    Channel = Channel
