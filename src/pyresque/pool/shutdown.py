"""How the master shuts down: a pure decision from the signal, the TERM mode and the clock.

The master only acts on what :func:`begin_shutdown` returns: which signal its workers get, whether
it waits for them, and the absolute deadlines (kill what is left; end every Redis clean-up).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from pyresque.pool.options import TermMode


@dataclass(frozen=True)
class Shutdown:
    """A shutdown in progress: how it was asked for and when the master must be gone."""

    signal_name: str
    deadline: float | None  # kill what is left then (monotonic); None: wait however long it takes
    started: float = 0.0


@dataclass(frozen=True)
class ShutdownStart:
    """What to do on a shutdown signal."""

    shutdown: Shutdown
    worker_signal: int  # sent to every worker
    wait: bool  # False: the master leaves at once, the workers finish on their own
    clean_up_by: float | None  # no Redis I/O after this (monotonic)
    message: str


def begin_shutdown(name: str, mode: TermMode, now: float, timeout: float) -> ShutdownStart:
    """``name`` is TERM, INT or QUIT; ``mode`` is how TERM is meant (INT always uses DEADLINE)."""
    if name == "QUIT" or (name == "TERM" and mode is TermMode.GRACEFUL_WAIT):
        return ShutdownStart(
            Shutdown(name, None, now),
            signal.SIGQUIT,
            wait=True,
            clean_up_by=None,
            message=f"{name}: waiting for every worker to finish its job",
        )
    if name == "TERM" and mode in (TermMode.GRACEFUL, TermMode.IMMEDIATE):
        signum = signal.SIGQUIT if mode is TermMode.GRACEFUL else signal.SIGTERM
        return ShutdownStart(
            Shutdown(name, now, now),
            signum,
            wait=False,
            clean_up_by=now,
            message=f"{name}: signalling workers with {signum.name} and exiting",
        )
    # kill what is left a little before the deadline, so reaping and clean-up fit under it;
    # clean-up ends before the deadline whatever Redis does (the next prune does the rest)
    margin = min(1.0, timeout * 0.1)
    exit_by = now + timeout
    return ShutdownStart(
        Shutdown(name, exit_by - margin, now),
        signal.SIGTERM,
        wait=True,
        clean_up_by=exit_by - margin / 2,
        message=(
            f"{name}: shutting down within {timeout:.1f}s "
            "(workers interrupt their jobs and put them back)"
        ),
    )
