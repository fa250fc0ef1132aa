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
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from pyresque.pool.config import PoolConfig
from pyresque.pool.crew import Crew
from pyresque.pool.governor import MemoryGovernor
from pyresque.pool.options import PoolOptions
from pyresque.pool.publisher import GroupState, MasterView, PoolPublisher, WorkerState
from pyresque.pool.shutdown import Shutdown
from pyresque.pool.worker_process import WorkerProcess

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

    def close(self) -> None:
        """The master is exiting."""
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
            # in the background: the workers' shutdown goes on meanwhile, and a frozen Redis
            # cannot hold the master (the lock then expires on its own)
            bounded_call(self.scheduler.stop, 0.0)

    def close_in_child(self) -> None:
        """The worker never uses the scheduler's connection."""

    def close(self) -> None:
        self.stop()


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

    def close(self) -> None:
        bounded_call(self.publisher.close, STOP_BUDGET)  # else its key expires on its own

    def close_in_child(self) -> None:
        self.publisher.close_in_child()


STOP_BUDGET = 0.1  # seconds a companion's last Redis call may take out of a shutdown's time


def bounded_call(action: Callable[[], None], seconds: float) -> bool:
    """Run ``action`` for at most ``seconds``; False if it failed or did not finish.

    A shutdown's deadline is absolute and Redis may be frozen: the call runs in a daemon thread
    that the master abandons (it forks no more once shutting down, so a thread is harmless), and
    what it could not do expires on its own (a lock's TTL, a state key's expiry)."""
    done = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except Exception as exc:
            failed.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="companion-stop", daemon=True).start()
    if seconds <= 0:
        return True  # not waited for
    if done.wait(seconds) and not failed:
        return True
    if failed:
        log.warning("%s failed: %s", getattr(action, "__qualname__", action), failed[0])
    return False


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


class Described(Protocol):
    """The parts of the master its published state is made of."""

    options: PoolOptions
    config: PoolConfig
    started_wall: float
    crew: Crew
    governor: MemoryGovernor | None
    shutdown: Shutdown | None

    @property
    def workers(self) -> dict[int, WorkerProcess]: ...

    def clock(self) -> float: ...

    def desired(self) -> Mapping[str, int]: ...


def describe_master(master: Described, now: float) -> MasterView:
    """The master as the dashboard's pools page shows it."""
    running = [w for w in master.workers.values() if w.stopping_since is None]
    not_before = master.crew.backoff.not_before()
    groups = [
        GroupState(
            g,
            n,
            sum(1 for w in running if w.group == g),
            max(0.0, not_before.get(g, 0.0) - master.clock()),
        )
        for g, n in master.desired().items()
    ]
    governor = master.governor
    last = governor.last if governor is not None else None
    usage = {w.pid: (w.uss, w.pss) for w in last.workers} if last is not None else {}
    return MasterView(
        host=socket.gethostname(),
        pid=os.getpid(),
        app=master.options.app_name,
        config_source=master.config.source,
        started_at=master.started_wall,
        groups=groups,
        workers=worker_states(list(master.workers.values()), usage),
        memory_limit=governor.limit.bytes if governor is not None else None,
        restarts=master.crew.unexpected_deaths,
        shutting_down=master.shutdown is not None,
    )


def wall_to_monotonic(wall: float, clock: Callable[[], float]) -> float:
    """A wall-clock time as a time of the master's clock (for its sleep)."""
    return clock() + (wall - time.time())
