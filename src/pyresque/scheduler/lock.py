"""resque-scheduler's master lock, so that one scheduler per namespace moves jobs, ours or Ruby's.

The protocol, as resque-scheduler 5.0 runs it (observed in the fixture): the key
``<ns>:<ns>:[<prefix>:]resque_scheduler_master_lock`` holds ``"<host>:<pid>"`` of the master with a
TTL (LOCK_TIMEOUT, 180 s). Every loop each scheduler runs the acquire script (SETNX, then EXPIRE on
success) and, when that fails, the refresh script (EXPIRE if the value is its own): whichever
returns 1 makes it master for that loop. The master releases the key when it stops; a killed
master's key expires, and a follower takes over on its first loop after that.
"""

from __future__ import annotations

import logging
import os
import socket

from pyresque.scheduler import scripts
from pyresque.scheduler.store import ScheduleStore

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 180  # resque-scheduler's LOCK_TIMEOUT


def lock_hostname() -> str:
    """The host part of the lock value: the host name.

    Ruby uses the canonical name of the host name's first address, which is ``localhost`` on many
    machines (the fixture's, and containers whose host name maps to 127.0.0.1): two containers
    whose scheduler runs as PID 1 would then write the same ``localhost:1`` and both believe they
    hold the lock. The host name is unique per container, pod and dyno, and keeps Ruby's
    ``host:pid`` shape (Ruby only ever compares the value with its own).
    """
    return socket.gethostname()


class MasterLock:
    """This process's side of the master lock."""

    def __init__(
        self,
        store: ScheduleStore,
        *,
        timeout: int = DEFAULT_TIMEOUT,
        prefix: str = "",
        value: str | None = None,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.key = store.keys.scheduler_lock(prefix)
        self.value = value or f"{lock_hostname()}:{os.getpid()}"
        self._acquire = store.lock_script(scripts.acquire_lock_script(timeout))
        self._refresh = store.lock_script(scripts.refresh_lock_script(timeout))
        self.held = False

    def try_acquire(self) -> bool:
        """Take the lock if it is free, else extend it if it is ours: True while we are master.

        One call per loop, as Ruby's ``master?``; it must come more often than ``timeout``.
        """
        was_held = self.held
        self.held = self.store.run_lock_script(
            self._acquire, self.key, self.value
        ) or self.store.run_lock_script(self._refresh, self.key, self.value)
        if self.held and not was_held:
            log.info("scheduler lock: master (%s holds %s)", self.value, self.key)
        elif was_held and not self.held:
            log.warning("scheduler lock: lost to %s", self.store.lock_holder(self.key))
        return self.held

    def release(self) -> None:
        """Give the lock up if we hold it, so another scheduler takes over on its next loop."""
        if self.store.release_lock(self.key, self.value):
            log.info("scheduler lock: released")
        self.held = False
