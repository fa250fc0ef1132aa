"""The running in-process job's deadline, on a page shared with the pool master.

An in-process worker enforces a job's time limit with a signal handler (the interrupt) and a
watchdog thread (the last resort), and both need the GIL: a job stuck in C code that holds it
(``sum(range(6 * 10**8))``, a C call that never returns) held its slot for as long as it liked.
So the worker also writes, when a job with a limit starts, the time by which it must be over
(its limit plus ``RESQUE_TERM_TIMEOUT``) on a page its pool master reads on each pass of its loop;
past it, the master kills the worker and fails the job as a timeout.

Writing is a store into shared memory: no system call, nothing on a job without a limit. A
worker outside a pool writes on a page of its own that nobody reads.
"""

from __future__ import annotations

import mmap
import struct
import time
from typing import Final

from pyresque.processwide import ProcessWide

_LAYOUT = struct.Struct("dd")  # deadline (monotonic seconds; 0: no job with a limit), the limit


class JobDeadline:
    """One worker's deadline page: written by the worker, read by its master (``time.monotonic``
    is one clock for every process of the host)."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, _LAYOUT.size)  # anonymous and shared: a fork sees the same

    def arm(self, deadline: float, limit: float) -> None:
        """The running job must be over by ``deadline`` (monotonic); ``limit`` is its own limit."""
        _LAYOUT.pack_into(self._page, 0, deadline, limit)

    def disarm(self) -> None:
        _LAYOUT.pack_into(self._page, 0, 0.0, 0.0)

    def overdue(self, now: float | None = None) -> float | None:
        """The limit of a job past its deadline at ``now`` (monotonic), else None."""
        deadline, limit = _LAYOUT.unpack_from(self._page, 0)
        now = time.monotonic() if now is None else now
        return limit if deadline and now >= deadline else None

    def due(self) -> float | None:
        """The deadline armed now, if any (for the master's sleep)."""
        deadline: float = _LAYOUT.unpack_from(self._page, 0)[0]
        return deadline or None

    def close(self) -> None:
        self._page.close()


# The page this worker process writes: a pool master puts the one it reads here in the child.
JOB_DEADLINE: Final = ProcessWide(JobDeadline, "the running job's deadline, shared with the master")
