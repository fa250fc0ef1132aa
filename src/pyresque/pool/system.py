"""The master's process layer: the system calls behind spawning, signalling, killing and reaping
workers, behind one small interface.

The master decides; this layer acts. Tests give the master a fake layer (no fork, no signals) and a
stepped clock, and check its decisions directly; :class:`SystemProcesses` is the real one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from pyresque.pool.hooks import PoolHooks
from pyresque.pool.memory import child_pids
from pyresque.pool.spawn import SpawnOptions, spawn_worker
from pyresque.pool.worker_process import kill_worker, reap_children, signal_pid
from pyresque.worker.loop import Worker


class ProcessLayer(Protocol):
    """What the master asks of the operating system about its workers."""

    def spawn(self, make_worker: Callable[[], Worker]) -> tuple[int, int | None]:
        """Fork a worker that runs ``make_worker()``'s loop; its pid and readiness fd (if any).
        Raises OSError when it cannot fork."""
        ...

    def signal(self, pid: int, signum: int) -> None:
        """Send a signal; a process already gone is no error."""
        ...

    def kill(self, pid: int, with_group: bool) -> None:
        """SIGKILL a worker and, ``with_group``, its process group (its job child)."""
        ...

    def reap(self) -> Iterable[tuple[int, int]]:
        """(pid, wait status) of each child that has exited, without blocking."""
        ...

    def children(self, pid: int) -> list[int]:
        """Direct children of ``pid`` (a worker's job child; the master's orphans)."""
        ...


class SystemProcesses:
    """The real layer: fork, kill, waitpid, /proc."""

    def __init__(
        self,
        hooks: PoolHooks,
        options: SpawnOptions,
        master_signals: tuple[int, ...],
        in_child: Callable[[], None],
    ) -> None:
        self.hooks = hooks
        self.options = options
        self.master_signals = master_signals
        self.in_child = in_child

    def spawn(self, make_worker: Callable[[], Worker]) -> tuple[int, int | None]:
        return spawn_worker(
            make_worker, self.hooks, self.options, self.master_signals, self.in_child
        )

    def signal(self, pid: int, signum: int) -> None:
        signal_pid(pid, signum)

    def kill(self, pid: int, with_group: bool) -> None:
        kill_worker(pid, with_group)

    def reap(self) -> Iterable[tuple[int, int]]:
        return reap_children()

    def children(self, pid: int) -> list[int]:
        return child_pids(pid)
