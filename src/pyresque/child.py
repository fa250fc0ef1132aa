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
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from pyresque import signals as sig
from pyresque.errors import TermException
from pyresque.forking import InChild, fork
from pyresque.job import Outcome, Result
from pyresque.protocol import Failure

INTERRUPT = b"T"


class _ShutdownState:
    """Whether this process was asked to shut down (readable by jobs), and whether the job is
    running (only then may the worker's interrupt raise in it)."""

    requested = False
    job_running = False


def shutdown_requested() -> bool:
    """True once the process running the job received TERM or INT: a long job may stop early."""
    return _ShutdownState.requested


@dataclass
class JobChild:
    """The parent's view of a running job child."""

    pid: int
    result_fd: int
    control_fd: int
    buffer: bytes = b""
    interrupted: bool = False
    killed: bool = False

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

    def close(self) -> None:
        for fd in (self.result_fd, self.control_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


CHILD_HANDLED = (signal.SIGTERM, signal.SIGINT)
CHILD_IGNORED = (signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT, signal.SIGHUP)


def spawn(
    run: Callable[[], Result],
    blocked: tuple[int, ...],
    in_child: Callable[[], None] = lambda: None,
    freeze: bool = True,
) -> JobChild:
    """Fork a child that runs ``run`` and reports its Result; return the parent's handle.

    ``blocked`` signals stay masked across the fork (:func:`pyresque.forking.fork`), so a signal
    meant for the worker cannot run the worker's handler in the child; ``in_child`` runs first in
    the child (closing inherited state).
    """
    result_r, result_w = os.pipe()
    control_r, control_w = os.pipe()

    def body(child: InChild) -> int:  # in the child: it never returns into the worker's code
        os.close(result_r)
        os.close(control_w)
        if freeze:
            gc.freeze()  # keep the collector off the pages shared with the worker
        _install_child_signals(control_r)
        child.unblock()
        in_child()
        _ShutdownState.job_running = True
        try:
            result = run()
        finally:
            _ShutdownState.job_running = False
        _write_all(result_w, json.dumps(result.to_wire()).encode() + b"\n")
        return 0

    def report(exc: BaseException) -> int:  # in the child
        # interrupted before or around the job proper (an after_fork hook): it goes back
        result = (
            Result(Outcome.INTERRUPTED)
            if isinstance(exc, TermException)
            else Result(Outcome.FAILED, Failure.from_exception(exc))
        )
        with contextlib.suppress(BaseException):
            _write_all(result_w, json.dumps(result.to_wire()).encode() + b"\n")
        return 1

    try:
        pid = fork(body, block=blocked, on_error=report, block_at_exit=CHILD_HANDLED)
    except OSError:
        for fd in (result_r, result_w, control_r, control_w):
            os.close(fd)
        raise
    os.close(result_w)
    os.close(control_r)
    os.set_blocking(result_r, False)
    return JobChild(pid, result_r, control_w)


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
