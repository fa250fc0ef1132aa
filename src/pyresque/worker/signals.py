"""Signal handling that only records: the loop that owns the process acts on what arrived.

A :class:`SignalInbox` installs handlers that append the signal number to a list; the C-level
wake-up fd (``signal.set_wakeup_fd``) makes the arrival visible to ``select``, so a loop can wait on
Redis, a child's pipe and signals at once without ever doing work inside a handler.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType

SIGNAL_NAMES = {s.value: s.name for s in signal.Signals}


def signal_name(signum: int) -> str:
    return SIGNAL_NAMES.get(signum, f"signal {signum}")


class WaitInterrupted(BaseException):
    """A signal arrived during an :meth:`SignalInbox.interruptible` wait.

    A BaseException, so no ``except Exception`` on the way (in redis-py) can swallow it.
    """


class SignalInbox:
    """Records the given signals until :meth:`drain` is called."""

    def __init__(
        self, signals: Iterable[int], on_signal: Callable[[int], None] | None = None
    ) -> None:
        """``on_signal``, if given, also runs in signal context: keep it to flag-setting (the
        in-process worker uses it to arm the timer that interrupts a running job)."""
        self.signals = tuple(signals)
        self._on_signal = on_signal
        self._pending: list[int] = []
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._interruptible = False

    def install(self) -> None:
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in self.signals:
            signal.signal(signum, self._record)

    def close_fds(self) -> None:
        """In a forked child that will install its own inbox: drop this one's pipe."""
        os.close(self._read_fd)
        os.close(self._write_fd)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        # in signal context: record, nothing else
        self._pending.append(signum)
        if self._on_signal is not None:
            self._on_signal(signum)
        if self._interruptible:
            self._interruptible = False
            raise WaitInterrupted(signum)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[bool]:
        """A block in which a recorded signal also ends a blocking call by raising
        :class:`WaitInterrupted` from the handler.

        For waits inside a library (redis-py's ``can_read``) that cannot also watch this inbox's
        pipe: Python retries a system call a signal interrupted, so only an exception ends it. The
        one other place, besides interrupting an in-process job, where a handler raises; the
        caller abandons what it was waiting for (closes the connection). Yields False when a signal
        is already waiting: then the caller should not block at all.
        """
        self._interruptible = True
        try:
            yield not self._pending
        finally:
            self._interruptible = False

    def fileno(self) -> int:
        return self._read_fd

    def drain(self) -> list[int]:
        """The signals that arrived since the last call, oldest first.

        The list is the record; the pipe only wakes :meth:`wait`, which empties it. So the usual
        call (nothing arrived; an in-process worker makes one per job) is no system call."""
        if not self._pending:
            return []
        self._empty_pipe()
        pending, self._pending = self._pending, []
        return pending

    def wait(self, timeout: float, fds: Sequence[int] = ()) -> list[int]:
        """Block until a signal arrives, one of ``fds`` is readable, or ``timeout`` passes.

        Returns the readable fds among ``fds``.
        """
        if self._pending:
            timeout = 0
        readable, _, _ = select.select([self._read_fd, *fds], [], [], max(0.0, timeout))
        if self._read_fd in readable:
            # any handled signal writes here (one of ours, or a job's own SIGALRM): emptied, or
            # the next wait would return at once
            self._empty_pipe()
        return [fd for fd in readable if fd != self._read_fd]

    def _empty_pipe(self) -> None:
        try:
            while os.read(self._read_fd, 512):
                pass
        except BlockingIOError:
            pass


def block(signals: Iterable[int]) -> set[int | signal.Signals]:
    """Block signals (across a fork, so the child installs its own handlers first)."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, signals)


def restore_mask(previous: Iterable[int]) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, previous)
