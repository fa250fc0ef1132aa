"""The last resort of an in-process worker: a job that ran past its time limit and did not stop
when interrupted (it caught ``TermException``, or it is stuck in C code that never returns to
Python) is failed from another thread, and the worker leaves so its pool replaces it. Never a
hung slot.

One thread for the worker's life, started with the first job that has a limit, asleep until a
deadline is armed; arming and disarming per job costs a lock, not a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None  # monotonic
        self._action: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, action: Callable[[], None]) -> None:
        """Call ``action`` (in the watchdog's thread) at ``deadline`` unless disarmed first."""
        with self._cond:
            self._deadline, self._action = deadline, action
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._deadline, self._action = None, None

    def _watch(self) -> None:
        while True:
            with self._cond:
                while self._deadline is None or time.monotonic() < self._deadline:
                    timeout = None if self._deadline is None else self._deadline - time.monotonic()
                    self._cond.wait(timeout)
                action, self._deadline, self._action = self._action, None, None
            if action is not None:
                action()
