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
