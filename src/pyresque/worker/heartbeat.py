"""A worker's heartbeat: ``workers:heartbeat`` stamped with the Redis server's clock.

Ruby Resque beats from a thread. A forking worker beats from its own loop instead, between waits
(threads and fork mix badly in Python); a worker that runs jobs in-process beats from a thread,
since a job may hold its main thread for minutes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pyresque.store.connection import RETRYABLE_ERRORS
from pyresque.store.operations import Store

log = logging.getLogger(__name__)

# How often the heartbeat thread asks its companion task, at least and at most: that task (the
# worker's per-job figures) only knows it has work once the main thread has added some.
ALSO_MIN_WAIT = 0.05
ALSO_MAX_WAIT = 1.0
STOP_WAIT = 5.0  # seconds stop() waits for the thread


class Heartbeat:
    def __init__(self, store: Store, worker_id: str, interval: float, redis_label: str) -> None:
        self.store = store
        self.worker_id = worker_id
        self.interval = interval
        self.redis_label = redis_label
        self._last = time.monotonic()
        self._thread_stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

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

    def start_thread(self, also: Callable[[], float] | None = None) -> None:
        """Beat from a daemon thread instead of the loop (in-process mode). ``also`` runs on the
        same thread when it asks to: it returns the seconds until it wants to run again."""
        self._thread_stop = threading.Event()
        stop = self._thread_stop

        def run() -> None:
            next_beat = time.monotonic() + self.interval
            while True:
                wait = max(next_beat - time.monotonic(), 0.0)
                if also is not None:
                    wait = min(wait, max(self._run_also(also), ALSO_MIN_WAIT), ALSO_MAX_WAIT)
                if stop.wait(wait):
                    return
                if time.monotonic() >= next_beat:
                    self._beat()
                    next_beat = time.monotonic() + self.interval

        self._thread = threading.Thread(target=run, name="heartbeat", daemon=True)
        self._thread.start()

    @staticmethod
    def _run_also(also: Callable[[], float]) -> float:
        """``also``, whose failure never stops the heartbeat (a worker without one is pruned)."""
        try:
            return also()
        except Exception:
            log.exception("the heartbeat thread's companion task failed")
            return ALSO_MAX_WAIT

    def stop(self) -> None:
        """Stop the thread, waiting (a little) for what it is doing: a write of the worker's
        figures it started must not be cut off by the worker's exit."""
        if self._thread_stop is not None:
            self._thread_stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT)

    def _beat(self) -> None:
        try:
            self.store.heartbeat([self.worker_id])
        except RETRYABLE_ERRORS as exc:
            log.warning("heartbeat failed: %s unreachable (%s)", self.redis_label, exc)
