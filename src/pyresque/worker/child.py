"""Fork-per-job: the job child and the parent's handle on it.

The child does as little as possible: it installs its own signal table, runs the after_fork hooks
and the job, writes the result to a pipe as one JSON line, and leaves with ``os._exit`` so no parent
state (atexit handlers, buffered output) runs twice. The parent, which already holds a Redis
connection, records the outcome.

Signals in the child: TERM and INT only note that shutdown was requested (Heroku sends TERM to every
process at once; the job must not die on the spot). The worker interrupts the job on purpose by
writing a byte to the control pipe before it sends TERM; only then does the handler raise
:class:`TermException` in the job. QUIT, USR1, USR2 and CONT are the worker's business and ignored.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from pyresque.errors import TermException
from pyresque.jobs.job import Outcome, Result
from pyresque.wire.protocol import Failure
from pyresque.worker import signals as sig
from pyresque.worker.forking import InChild, fork

INTERRUPT = b"T"


class _ShutdownState:
    """Whether this process was asked to shut down (readable by jobs), and whether the job is
    running (only then may the worker's interrupt raise in it)."""

    requested = False
    job_running = False
    result_fd = -1  # where the running job's result goes, until it is reported


def report_result(result: Result) -> None:
    """In a job's child: report ``result`` now, once the job's work is done and before the
    ``after_job`` hooks run; once only, and a no-op outside a job's child.

    Why: the worker kills the child on USR1, and a child killed after its work but before its
    report left a ``DirtyExit`` record for a job that had run (retrying it ran the job twice)."""
    fd, _ShutdownState.result_fd = _ShutdownState.result_fd, -1
    if fd >= 0:
        _report(fd, result, idle_exit=False)


def shutdown_requested() -> bool:
    """True once the process running the job received TERM or INT: a long job may stop early."""
    return _ShutdownState.requested


@dataclass
class JobChild:
    """The parent's view of a job child: running its job, or (forked ahead) waiting for one."""

    pid: int
    result_fd: int
    control_fd: int
    job_fd: int = -1  # a child forked ahead reads its job here (-1: it was given one at fork)
    exit_fd: int = -1  # a pidfd: readable once the child has exited (-1: none on this system)
    buffer: bytes = b""
    interrupted: bool = False
    killed: bool = False

    def hand(self, queue: str, payload: str) -> bool:
        """Give a child forked ahead its job; False if it is gone (it cannot have started it)."""
        message = _job_message(queue, payload)
        try:
            _write_all(self.job_fd, message)
        except BrokenPipeError:
            return False
        finally:
            self._close_job_fd()
        return True

    def exited(self) -> bool:
        """Whether the child has ended (reaping it if so)."""
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return True
        return pid != 0

    def discard(self, timeout: float = 1.0) -> None:
        """End a child forked ahead that will get no job: it sees the end of its job pipe and
        exits; it is killed if it has not within ``timeout``. Reaps it."""
        self._close_job_fd()
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while not self.exited():
            if time.monotonic() >= deadline:
                self.kill()
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                break
            time.sleep(delay)  # a bounded wait for a process to exit, not a synchronisation
            delay = min(delay * 2, 0.05)
        self.close()

    def _close_job_fd(self) -> None:
        if self.job_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.job_fd)
            self.job_fd = -1

    def interrupt(self) -> None:
        """Raise TermException in the job (the control byte tells the child this TERM is ours)."""
        if not self.interrupted:
            self.interrupted = True
            with contextlib.suppress(OSError):
                os.write(self.control_fd, INTERRUPT)
            self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.killed = True
        self.signal(signal.SIGKILL)

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    @property
    def reported(self) -> bool:
        """Whether the child's whole result line has arrived."""
        return b"\n" in self.buffer

    def read_available(self) -> bool:
        """Read what the child wrote; False at end of file."""
        try:
            data = os.read(self.result_fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.buffer += data
        return True

    def result(self) -> Result | None:
        """The result the child reported, if it got that far (call once it has exited)."""
        with contextlib.suppress(BlockingIOError):
            while data := os.read(self.result_fd, 65536):
                self.buffer += data
        line = self.buffer.split(b"\n", 1)[0]
        if not line:
            return None
        try:
            return Result.from_wire(json.loads(line))
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def fds(self) -> tuple[int, ...]:
        """The parent's ends of this child's pipes (a child forked later closes them)."""
        fds = (self.result_fd, self.control_fd, self.job_fd, self.exit_fd)
        return tuple(fd for fd in fds if fd >= 0)

    def close(self) -> None:
        """Close the parent's ends (once: a closed number may soon name another file)."""
        self._close_job_fd()
        for fd in (self.result_fd, self.control_fd, self.exit_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.result_fd = self.control_fd = self.exit_fd = -1


CHILD_HANDLED = (signal.SIGTERM, signal.SIGINT)
CHILD_IGNORED = (signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT, signal.SIGHUP)


def spawn(
    run: Callable[[], Result],
    blocked: tuple[int, ...],
    in_child: Callable[[], None] = lambda: None,
    freeze: bool = True,
) -> JobChild:
    """Fork a child that runs ``run`` and reports its Result; return the parent's handle.

    ``blocked`` signals stay masked across the fork (:func:`pyresque.worker.forking.fork`), so a signal
    meant for the worker cannot run the worker's handler in the child; ``in_child`` runs first in
    the child (closing inherited state).
    """
    return _spawn(lambda _job: run(), blocked, in_child, freeze, ahead=False)


def spawn_ahead(
    run: Callable[[str, str], Result],
    blocked: tuple[int, ...],
    in_child: Callable[[], None] = lambda: None,
    freeze: bool = True,
) -> JobChild:
    """Fork a child before its job is known (a warm child): it sets itself up, then waits for
    :meth:`JobChild.hand` to give it a queue and a raw payload, runs ``run(queue, payload)`` and
    reports its Result. If its job pipe ends without a job (:meth:`JobChild.discard`, or the worker
    died), it exits quietly."""

    def run_handed(job: tuple[str, str] | None) -> Result:
        assert job is not None
        return run(*job)

    return _spawn(run_handed, blocked, in_child, freeze, ahead=True)


def _spawn(
    run: Callable[[tuple[str, str] | None], Result],
    blocked: tuple[int, ...],
    in_child: Callable[[], None],
    freeze: bool,
    *,
    ahead: bool,
) -> JobChild:
    result_r, result_w = os.pipe()
    control_r, control_w = os.pipe()
    job_r, job_w = os.pipe() if ahead else (-1, -1)

    def body(child: InChild) -> int:  # in the child: it never returns into the worker's code
        os.close(result_r)
        os.close(control_w)
        if ahead:
            os.close(job_w)
        if freeze:
            gc.freeze()  # keep the collector off the pages shared with the worker
        _install_child_signals(control_r)
        child.unblock()
        in_child()
        return _run_job(run, result_w, job_r)

    def report(exc: BaseException) -> int:  # in the child
        # interrupted before or around the job proper (an after_fork hook): it goes back
        result = (
            Result(Outcome.INTERRUPTED)
            if isinstance(exc, TermException)
            else Result(Outcome.FAILED, Failure.from_exception(exc))
        )
        with contextlib.suppress(BaseException):
            _report(result_w, result, idle_exit=ahead)
        return 1

    ours = [result_r, result_w, control_r, control_w, job_r, job_w]
    try:
        pid = fork(body, block=blocked, on_error=report, block_at_exit=CHILD_HANDLED)
    except OSError:
        for fd in ours:
            if fd >= 0:
                os.close(fd)
        raise
    os.close(result_w)
    os.close(control_r)
    if ahead:
        os.close(job_r)
    os.set_blocking(result_r, False)
    return JobChild(pid, result_r, control_w, job_w, _pidfd(pid))


def _run_job(run: Callable[[tuple[str, str] | None], Result], result_w: int, job_r: int) -> int:
    """In the child: wait for its job when forked ahead (``job_r`` >= 0), run it, report how it
    ended on ``result_w`` (unless the job's path reported it already, see :func:`report_result`).
    Returns the child's exit status."""
    ahead = job_r >= 0
    job = None
    if ahead:
        message = _read_to_end(job_r)
        os.close(job_r)
        if not message:
            return 0  # discarded: no job is coming
        job = _parse_job_message(message)
    _ShutdownState.job_running, _ShutdownState.result_fd = True, result_w
    try:
        result = run(job)
    finally:
        _ShutdownState.job_running = False
    if _ShutdownState.result_fd >= 0:  # not reported by report_result
        _ShutdownState.result_fd = -1
        _report(result_w, result, idle_exit=ahead)
    elif ahead:
        _exit_when_idle()
    return 0


def _pidfd(pid: int) -> int:
    """A pidfd for the child (its exit wakes a ``select``, with no signal), or -1."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return -1


def _job_message(queue: str, payload: str) -> bytes:
    """A job for a child forked ahead: the queue's length, the queue, the raw payload (bytes
    that are not UTF-8 cross as they are)."""
    name = queue.encode("utf-8", "surrogateescape")
    return len(name).to_bytes(4, "big") + name + payload.encode("utf-8", "surrogateescape")


def _parse_job_message(message: bytes) -> tuple[str, str]:
    size = int.from_bytes(message[:4], "big")
    queue = message[4 : 4 + size].decode("utf-8", "surrogateescape")
    return queue, message[4 + size :].decode("utf-8", "surrogateescape")


def _read_to_end(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _report(fd: int, result: Result, *, idle_exit: bool) -> None:
    """Write the result line. With ``idle_exit`` (a child forked ahead), first make the rest of
    this process's life (its exit and the teardown of its memory, about a millisecond) wait for an
    idle CPU (SCHED_IDLE): the write wakes the worker, which then runs at once, not after the exit,
    on a CPU they share; the next child, already forked, runs its job while this one's memory is
    torn down. Without a warm child the worker forks next, and a fork while this process still
    shares its pages costs more than the wait (measured: 14 % fewer no-op jobs a second)."""
    line = json.dumps(result.to_wire()).encode() + b"\n"
    if idle_exit:
        _exit_when_idle()
    _write_all(fd, line)


def _exit_when_idle() -> None:
    """The rest of this process's life waits for an idle CPU (SCHED_IDLE), see :func:`_report`."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _ignore(signum: int, frame: FrameType | None) -> None:
    """In signal context: nothing to do."""


def _install_child_signals(control_fd: int) -> None:
    signal.set_wakeup_fd(-1)
    os.set_blocking(control_fd, False)

    def on_term(signum: int, frame: FrameType | None) -> None:
        # in signal context, in the job child
        _ShutdownState.requested = True
        try:
            ours = os.read(control_fd, 1) == INTERRUPT
        except (BlockingIOError, OSError):
            ours = False
        if ours and _ShutdownState.job_running:
            raise TermException(f"job interrupted by shutdown ({sig.signal_name(signum)})")

    for signum in CHILD_HANDLED:
        signal.signal(signum, on_term)
    for signum in CHILD_IGNORED:
        # a handler that does nothing, not SIG_IGN: ignored signals would stay ignored in any
        # program the job execs, while handled ones go back to their defaults there
        signal.signal(signum, _ignore)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
