"""How an idle worker learns, within milliseconds, that one of its queues has a job.

pyresque's enqueuers publish the queue name on the ``wakeup`` channel with every push; an idle
worker waits on its subscription's socket together with its signal pipe. Clients that do not
publish (Ruby's, redis-cli) are covered by the worker's idle poll, so correctness never depends on
a wake-up arriving. While a worker is busy, wake-ups queue up in its socket and are drained in one
go when it is idle again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis

from pyresque.connection import CONNECTION_ERRORS
from pyresque.queues import QueueSelector
from pyresque.store import Store

log = logging.getLogger(__name__)


class WakeupListener:
    def __init__(self, store: Store, selector: QueueSelector) -> None:
        self.store = store
        self.selector = selector
        self._sub: redis.client.PubSub | None = None

    def fileno(self) -> int | None:
        """The subscription's socket to wait on (subscribing first), or None: poll instead."""
        if self._sub is None:
            try:
                self._sub = self.store.subscribe_wakeups()
                self._sub.get_message(timeout=0)
            except CONNECTION_ERRORS as exc:
                log.warning("wake-up subscription failed (%s); polling instead", exc)
                self._sub = None
                return None
        conn = self._sub.connection
        sock = getattr(conn, "_sock", None) if conn is not None else None
        return sock.fileno() if sock is not None else None

    def pending(self) -> bool:
        """Drain what arrived; True if a wake-up names one of our queues (or the channel broke,
        in which case a poll is the safe answer)."""
        if self._sub is None:
            return False
        relevant = False
        try:
            while (message := self._sub.get_message(timeout=0)) is not None:
                data = message.get("data")
                queue = data.decode() if isinstance(data, bytes) else str(data)
                relevant = relevant or self.selector.matches(queue)
        except CONNECTION_ERRORS as exc:
            log.warning("wake-up subscription lost (%s); resubscribing", exc)
            self.close()
            return True
        return relevant

    def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._sub.close()
            self._sub = None


_WAIT_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, redis.ResponseError)


class BlockingMove:
    """The idle wait of a worker with one literal queue: ``BLMOVE`` from the queue into the
    worker's landing list, so that a job pushed by any client (Ruby's, redis-cli) is picked up at
    once, and is inside Redis at every instant (the next ``CYCLE`` call adopts it).

    The command runs on a connection of its own; the worker waits on that socket together with its
    signal pipe. A signal abandons the command by closing the connection: a job the server moved at
    that very moment stays in the landing list, where the next reservation, the worker's exit or a
    recoverer finds it.
    """

    def __init__(self, store: Store, worker_id: str, queue: str) -> None:
        self.store = store
        self.worker_id = worker_id
        self.queue = queue
        self._conn: Any = None  # a redis-py Connection (untyped there), used at the protocol edge
        self._marked = False
        self.unsupported = False  # Redis before 6.2 has no BLMOVE: the worker waits another way

    def wait(self, timeout: float, wait_on: Callable[[float, list[int]], list[int]]) -> bool:
        """Block up to ``timeout`` for a job; True if the wait ran (False: Redis trouble, the
        caller should wait another way)."""
        try:
            conn = self._connect()
            block = max(timeout, 0.01)
            conn.send_command(
                "BLMOVE",
                self.store.keys.queue(self.queue),
                self.store.keys.landing(self.worker_id),
                "LEFT",
                "RIGHT",
                f"{block:.3f}",
            )
            sock = getattr(conn, "_sock", None)
            if sock is None:
                raise redis.ConnectionError("blocking connection has no socket")
            fd = sock.fileno()
            if fd in wait_on(block + 1.0, [fd]):
                conn.read_response()
            else:
                self.close()  # a signal came first: abandon the command
            return True
        except _WAIT_ERRORS as exc:
            if isinstance(exc, redis.ResponseError) and "unknown command" in str(exc).lower():
                log.warning("this Redis has no BLMOVE (%s); waiting for wake-ups instead", exc)
                self.unsupported = True
            else:
                log.warning("blocking wait failed (%s); polling instead", exc)
            self.close()
            return False

    def _connect(self) -> Any:
        if not self._marked:
            self.store.mark_inflight_owner(self.worker_id)
            self._marked = True
        if self._conn is None:
            # a connection of its own, outside the client's pool: an abandoned command closes it,
            # and a pool would never get that slot back
            pool = self.store.redis.connection_pool
            self._conn = pool.connection_class(**pool.connection_kwargs)
            self._conn.connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._conn.disconnect()
            self._conn = None
