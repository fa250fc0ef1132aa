"""A worker's heartbeat: ``workers:heartbeat`` stamped with the Redis server's clock.

Ruby Resque beats from a thread. A forking worker beats from its own loop instead, between waits
(threads and fork mix badly in Python); a worker that runs jobs in-process beats from a thread,
since a job may hold its main thread for minutes.
"""

from __future__ import annotations

import logging
import threading
import time

from pyresque.connection import RETRYABLE_ERRORS
from pyresque.store import Store

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, store: Store, worker_id: str, interval: float, redis_label: str) -> None:
        self.store = store
        self.worker_id = worker_id
        self.interval = interval
        self.redis_label = redis_label
        self._last = time.monotonic()
        self._thread_stop: threading.Event | None = None

    def seconds_left(self) -> float:
        """Until the loop's next beat is due (never negative); a full interval while a thread
        does the beating, so that the loop never waits for a beat it will not make."""
        if self._thread_stop is not None:
            return self.interval
        return max(self._last + self.interval - time.monotonic(), 0.0)

    def beat_if_due(self) -> None:
        """From the worker's loop (fork mode); a no-op while a thread does the beating."""
        if self._thread_stop is None and self.seconds_left() <= 0:
            self._last = time.monotonic()
            self._beat()

    def start_thread(self) -> None:
        """Beat from a daemon thread instead of the loop (in-process mode)."""
        self._thread_stop = threading.Event()
        stop = self._thread_stop

        def run() -> None:
            while not stop.wait(self.interval):
                self._beat()

        threading.Thread(target=run, name="heartbeat", daemon=True).start()

    def stop(self) -> None:
        if self._thread_stop is not None:
            self._thread_stop.set()

    def _beat(self) -> None:
        try:
            self.store.heartbeat([self.worker_id])
        except RETRYABLE_ERRORS as exc:
            log.warning("heartbeat failed: %s unreachable (%s)", self.redis_label, exc)
