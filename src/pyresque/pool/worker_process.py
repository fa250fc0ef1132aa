"""The master's worker processes: what it knows of each, and how it signals, kills and reaps
them. Everything here is a system call; the decisions are made in :mod:`pyresque.pool.plan`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from pyresque.pool.plan import Child
from pyresque.pool.spawn import WORKER_BOOT_ERROR, libc_prctl
from pyresque.worker.deadline import JobDeadline
from pyresque.worker.queues import QueueSelector
from pyresque.worker.signals import signal_name

_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class WorkerProcess:
    """What the master knows of one worker it forked."""

    pid: int
    group: str
    generation: int
    started_at: float
    stopping_since: float | None = None
    killed_at: float | None = None
    ready: bool = False
    for_memory: bool = False  # retired or killed by the memory governor
    ready_fd: int | None = None  # closed once the worker said it is ready, or died
    deadline: JobDeadline | None = None  # its in-process job's deadline, shared with it
    timed_out: float | None = None  # the limit of the job it was killed for (past its deadline)

    def read_ready(self) -> None:
        """Read the readiness pipe: one byte means ready; end of file means it never will be."""
        if self.ready_fd is None:
            return
        try:
            data = os.read(self.ready_fd, 1)
        except BlockingIOError:
            return
        self.ready = self.ready or bool(data)
        self.close_ready_fd()

    def close_ready_fd(self) -> None:
        if self.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.ready_fd)
            self.ready_fd = None

    @property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}:{self.pid}:{QueueSelector.parse(self.group)}"

    def as_child(self) -> Child:
        return Child(
            self.pid,
            self.group,
            self.generation,
            self.started_at,
            stopping_since=self.stopping_since,
            ready=self.ready,
            killed_at=self.killed_at,
        )


def describe_status(status: int, cause: str = "") -> str:
    """``exited with status N`` or ``killed by SIGNAME``, with ``cause`` when one is known (the
    kernel's OOM killer, the memory governor): a SIGKILL alone does not say why."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return f"killed by {signal_name(signum)}" + (f" — {cause}" if cause else "")
    code = os.waitstatus_to_exitcode(status)
    if code == WORKER_BOOT_ERROR:
        return f"exited with status {code} (boot failure)"
    return f"exited with status {code}"


def signal_pid(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def kill_worker(pid: int, own_process_group: bool) -> None:
    """SIGKILL a worker and, when it leads its own process group, its job child with it."""
    if own_process_group:
        try:
            os.killpg(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            pass
    signal_pid(pid, signal.SIGKILL)


def reap_children() -> Iterator[tuple[int, int]]:
    """(pid, status) of every child that has exited, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def become_subreaper() -> None:
    """Adopt orphaned job children, so the master reaps them and no zombie is left (Linux)."""
    prctl = libc_prctl()
    if prctl is not None:
        prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
