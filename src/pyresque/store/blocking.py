"""The two blocking Redis calls of an idle worker, on connections of their own.

- :class:`LandingMove`: ``BLMOVE queue:<q> landing:<id>`` for a worker of one literal queue, so a
  job pushed by any client (Ruby's, redis-cli) is taken at once and stays inside Redis throughout.
- :class:`WakeupSubscription`: the ``wakeup`` channel pyresque's enqueuers publish queue names on.

Part of the store layer (they speak redis-py, through its public API only: a connection made from
the client's pool settings, ``send_command``, ``can_read``, ``read_response``; ``PubSub``). A wait
is abandoned by an exception raised into it (a signal, see
:meth:`pyresque.worker.signals.SignalInbox.interruptible`): the connection is then closed, and a job the
server moved at that very moment stays in the landing list, where the worker's next reservation,
its exit or a recoverer finds it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis
from redis.cluster import RedisCluster

from pyresque.store.connection import CONNECTION_ERRORS
from pyresque.wire.keys import Keys


def _connection_pool_for(client: Any, key: str) -> Any:
    """The pool of the server that holds ``key`` (a cluster node's, or the client's own)."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        return node.redis_connection.connection_pool
    return client.connection_pool


class LandingMove:
    """``BLMOVE`` a worker's queue into its landing list, on a connection outside any pool (an
    abandoned command closes it, and a pool would never get that slot back)."""

    def __init__(self, client: Any, keys: Keys, worker_id: str, queue: str) -> None:
        self.source = keys.queue(queue)
        self.landing = keys.landing(worker_id)
        self.client_name = "pyresque-blmove-" + "".join(
            c if c.isalnum() or c in "-_.:" else "_" for c in worker_id
        )
        self._client = client
        self._conn: Any = None  # a redis-py Connection (untyped there)

    def wait(self, timeout: float, then: bytes | None = None) -> Any:
        """Block until a job moved or ``timeout`` (seconds, ≥ 0.01) passed.

        ``then``, a command as RESP, is sent right behind the move: the server runs it as soon
        as the move returns, and its reply (returned) comes back with the move's. Raises a redis
        error (``ResponseError`` for a Redis without BLMOVE, or from ``then``) or whatever
        interrupted the wait; the connection is closed then, and ``then`` may or may not have
        run.
        """
        try:
            if self._conn is None:
                pool = _connection_pool_for(self._client, self.source)
                # named, so CLIENT LIST tells whose blocking move a connection is
                kwargs = {**pool.connection_kwargs, "client_name": self.client_name}
                self._conn = pool.connection_class(**kwargs)
                self._conn.connect()
            block = max(timeout, 0.01)
            command = self._conn.pack_command(
                "BLMOVE", self.source, self.landing, "LEFT", "RIGHT", f"{block:.3f}"
            )
            # one write: with TCP_NODELAY each item of a list would go out as its own packet
            self._conn.send_packed_command([b"".join([*command, then])] if then else command)
            # the server ends the command at its timeout; our own deadline is a second later
            if not self._conn.can_read(timeout=block + 1.0):
                raise redis.TimeoutError("no reply to BLMOVE")
            self._conn.read_response()
            return None if then is None else self._conn.read_response()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._conn.disconnect()
            self._conn = None


class WakeupSubscription:
    """A subscription on the wake-up channel; messages queue up in its socket while busy."""

    def __init__(self, client: Any, channel: str) -> None:
        self._pubsub: Any = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)

    def wait(self, timeout: float) -> list[str]:
        """The queue names published within ``timeout`` (at least the first one that arrives)."""
        names = []
        message = self._pubsub.get_message(timeout=max(timeout, 0.0))
        while message is not None:
            data = message.get("data")
            names.append(data.decode() if isinstance(data, bytes) else str(data))
            message = self._pubsub.get_message(timeout=0)
        return names

    def close(self) -> None:
        with contextlib.suppress(*CONNECTION_ERRORS):
            self._pubsub.close()
