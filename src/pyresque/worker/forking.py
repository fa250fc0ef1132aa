"""Forking a child that runs one body and never returns into its parent's code.

Every fork in pyresque (a pool worker, a job child, the ``--advise`` sample worker) needs the same
care, and getting one detail wrong is a bug that shows only under load:

- the parent flushes stdio first, or the child prints the parent's buffered lines a second time;
- the given signals stay blocked across ``fork``, so a signal meant for the parent cannot run the
  parent's handler in the child before the child installs its own (the body unblocks them with
  :meth:`InChild.unblock` once it has);
- the body's exception is reported (logged with its traceback, or handed to ``on_error``), never
  lost and never unwound into the parent's stack, which lives on in the child;
- the child flushes stdio (``os._exit`` skips it) and ends with ``os._exit`` in a ``finally``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NoReturn

from pyresque.worker import signals as sig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InChild:
    """What a freshly forked child knows: its parent, and the signal mask to restore."""

    parent_pid: int
    previous_mask: frozenset[int | signal.Signals]

    def unblock(self) -> None:
        """Restore the mask the parent had before the fork (after installing own handlers)."""
        sig.restore_mask(self.previous_mask)


def report_exception(exc: BaseException) -> int:
    """The default ``on_error``: log the exception with its traceback; exit with 1 (or the code
    of a ``SystemExit``). If logging itself fails, the traceback still reaches stderr."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    try:
        log.error("process %d failed", os.getpid(), exc_info=exc)
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exception(exc, file=sys.stderr)
    return 1


def flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


def fork(
    body: Callable[[InChild], int],
    *,
    block: Iterable[int] = (),
    on_error: Callable[[BaseException], int] = report_exception,
    block_at_exit: Iterable[int] = (),
) -> int:
    """Fork; in the child run ``body`` and exit with the code it returns; return the child's pid.

    ``block``: signals masked across the fork (in the parent until ``fork`` returns, in the child
    until the body calls :meth:`InChild.unblock`). ``on_error`` runs in the child when the body
    raises, reports the exception and returns the exit code. ``block_at_exit``: signals masked
    before the child's last flush, so that no handler can raise between the body and the exit.
    Raises ``OSError`` in the parent when ``fork`` fails (the mask is restored first).
    """
    parent_pid = os.getpid()
    flush_stdio()
    previous = sig.block(block)
    try:
        pid = os.fork()
    except BaseException:
        sig.restore_mask(previous)
        raise
    if pid:
        sig.restore_mask(previous)
        return pid
    _run_in_child(body, InChild(parent_pid, frozenset(previous)), on_error, tuple(block_at_exit))


def _run_in_child(
    body: Callable[[InChild], int],
    child: InChild,
    on_error: Callable[[BaseException], int],
    block_at_exit: tuple[int, ...],
) -> NoReturn:
    """In the child: run the body, report what it raised, and leave with ``os._exit``."""
    code = 1
    try:
        code = body(child)
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            code = on_error(exc)
    finally:
        try:
            if block_at_exit:
                sig.block(block_at_exit)
            flush_stdio()
        finally:
            os._exit(code)
