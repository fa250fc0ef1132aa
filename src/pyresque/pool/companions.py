"""Work the master does between its own duties: the scheduler and the state publisher.

Each is a :class:`Companion`: the master ticks it once a loop (not while shutting down), sleeps no
longer than it asks, watches its file descriptors, stops it when a shutdown begins, and lets a
forked worker drop what it inherited. The master's loop stays the same however many there are,
and it never imports what they are built from (the scheduler sits above the pool).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Protocol

from pyresque.pool.children import WorkerProcess
from pyresque.pool.publisher import GroupState, MasterView, PoolPublisher, WorkerState

log = logging.getLogger("pyresque.pool")


class Companion(Protocol):
    def tick(self, now: float) -> float | None:
        """Do what is due at ``now`` (wall-clock); the wall-clock time to be ticked next."""
        ...

    def fds(self) -> list[int]:
        """Descriptors whose readiness should wake the master (its next tick reads them)."""
        ...

    def readable(self, fd: int) -> None: ...

    def stop(self) -> None:
        """A shutdown began: give up what others may take over (the scheduler's lock)."""
        ...

    def close_in_child(self) -> None:
        """In a freshly forked worker: drop inherited sockets."""
        ...

    def close(self, time_left: float | None = None) -> None:
        """The master is exiting; ``time_left``: seconds before its shutdown deadline (None: no
        deadline). No Redis call may outlast it: what is not done then is left to expire."""
        ...


class Ticking(Protocol):
    """What :class:`pyresque.scheduler.service.SchedulerService` offers the master."""

    def tick(self, now: float) -> float: ...

    def fileno(self) -> int | None: ...

    def stop(self) -> None: ...


class SchedulerCompanion:
    """The scheduler, running inside the master (``--no-scheduler`` leaves it out)."""

    def __init__(self, scheduler: Ticking) -> None:
        self.scheduler = scheduler
        self._stopped = False

    def tick(self, now: float) -> float | None:
        if self._stopped:
            return None
        try:
            return self.scheduler.tick(now)
        except Exception:  # the scheduler must never take the pool down
            log.exception("scheduler tick failed; trying again in a second")
            return now + 1.0

    def fds(self) -> list[int]:
        fd = None if self._stopped else self.scheduler.fileno()
        return [] if fd is None else [fd]

    def readable(self, fd: int) -> None:
        """Its next tick reads the wake-up."""

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            try:
                self.scheduler.stop()
            except Exception:
                log.exception("scheduler: releasing its lock failed; it expires on its own")

    def close_in_child(self) -> None:
        """The worker never uses the scheduler's connection."""

    def close(self, time_left: float | None = None) -> None:
        self.stop()  # already done when the shutdown began


# --- the state publisher ------------------------------------------------------------------------


class PublisherCompanion:
    def __init__(self, publisher: PoolPublisher, state: Callable[[float], MasterView]) -> None:
        self.publisher = publisher
        self.state = state

    def tick(self, now: float) -> float | None:
        try:
            self.publisher.tick(now, self.state(now))
        except Exception:
            log.exception("publishing the pool's state failed; trying again later")
        return self.publisher.next_at()

    def fds(self) -> list[int]:
        return self.publisher.wait_fds()

    def readable(self, fd: int) -> None:
        self.publisher.serve_pending()

    def stop(self) -> None:
        """Publishing goes on until exit (the dashboard shows the shutdown)."""

    def close(self, time_left: float | None = None) -> None:
        self.publisher.close(time_left)

    def close_in_child(self) -> None:
        self.publisher.close_in_child()


def worker_states(
    workers: list[WorkerProcess], usage: dict[int, tuple[int, int]]
) -> list[WorkerState]:
    """The publisher's view of the master's workers, with USS/PSS from the last memory sample."""
    out = []
    for w in workers:
        state = "stopping" if w.stopping_since is not None else "running" if w.ready else "starting"
        uss, pss = usage.get(w.pid, (0, 0))
        out.append(WorkerState(w.pid, w.group, state, uss, pss, None))
    return out


def master_view(
    *,
    app: str,
    config_source: str,
    started_at: float,
    groups: list[GroupState],
    workers: list[WorkerState],
    memory_limit: int | None,
    restarts: int,
    shutting_down: bool,
) -> MasterView:
    return MasterView(
        host=socket.gethostname(),
        pid=os.getpid(),
        app=app,
        config_source=config_source,
        started_at=started_at,
        groups=groups,
        workers=workers,
        memory_limit=memory_limit,
        restarts=restarts,
        shutting_down=shutting_down,
    )


def wall_to_monotonic(wall: float, clock: Callable[[], float]) -> float:
    """A wall-clock time as a time of the master's clock (for its sleep)."""
    return clock() + (wall - time.time())
