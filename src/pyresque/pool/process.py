"""Forking a pool worker, and what runs in it until it exits.

The master masks its signals across ``fork``; the child installs the worker's own handlers before
unmasking, so a signal can never run master code in a worker. The child never returns into the
master's code: it ends with ``os._exit`` in a ``finally``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from pyresque import signals as sig
from pyresque.pool.hooks import PoolHooks
from pyresque.worker import Worker

log = logging.getLogger(__name__)

# A worker that could not boot (its after_prefork hook raised): the master backs off instead of
# respawning at once, as gunicorn's WORKER_BOOT_ERROR tells a crash loop from a crash.
WORKER_BOOT_ERROR = 3

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class SpawnOptions:
    own_process_group: bool = True
    # sent to the worker when its master dies, even by SIGKILL: QUIT, so a busy worker finishes
    # its job first and an idle one leaves at once
    parent_death_signal: int = signal.SIGQUIT


def _set_parent_death_signal(signum: int) -> None:
    """Linux's PR_SET_PDEATHSIG; elsewhere the worker's own getppid() check covers it."""
    if not sys.platform.startswith("linux"):
        return
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _ignore(signum: int, frame: object) -> None:
    """In signal context: the master's signals mean nothing to a worker."""


def _tell_ready(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, b"R")
        os.close(fd)


def spawn_worker(
    make_worker: Callable[[], Worker],
    hooks: PoolHooks,
    options: SpawnOptions,
    master_signals: tuple[int, ...],
    in_child: Callable[[], None],
) -> tuple[int, int]:
    """Fork one worker; returns its pid and the read end of its readiness pipe, on which it
    writes one byte once it is registered and working. Raises OSError if fork fails."""
    master_pid = os.getpid()
    ready_r, ready_w = os.pipe()
    previous = sig.block(master_signals)
    try:
        pid = os.fork()
    except OSError:
        sig.restore_mask(previous)
        os.close(ready_r)
        os.close(ready_w)
        raise
    if pid:
        sig.restore_mask(previous)
        os.close(ready_w)
        os.set_blocking(ready_r, False)
        return pid, ready_r
    os.close(ready_r)  # in the child from here on
    _run_child(
        _Boot(make_worker, hooks, options, master_signals, in_child, master_pid, ready_w, previous)
    )


@dataclass(frozen=True)
class _Boot:
    """What a freshly forked worker needs to become a worker."""

    make_worker: Callable[[], Worker]
    hooks: PoolHooks
    options: SpawnOptions
    master_signals: tuple[int, ...]
    in_child: Callable[[], None]
    master_pid: int
    ready_w: int
    previous_mask: set[int | signal.Signals]


def _run_child(boot: _Boot) -> NoReturn:
    """In the child: become a worker, work, and leave with ``os._exit`` whatever happens."""
    code = 1
    try:
        code = _boot_and_work(boot)
    except BaseException:
        with contextlib.suppress(BaseException):
            log.exception("worker %d crashed", os.getpid())
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _boot_and_work(boot: _Boot) -> int:
    if boot.options.own_process_group:
        os.setpgid(0, 0)
    _set_parent_death_signal(boot.options.parent_death_signal)
    if os.getppid() != boot.master_pid:
        return 0  # the master died before we could ask to be told
    boot.in_child()
    for signum in boot.master_signals:
        signal.signal(signum, signal.SIG_DFL)
    for signum in (signal.SIGHUP, signal.SIGWINCH, signal.SIGIO, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(signum, _ignore)  # not SIG_IGN, which programs a job execs would inherit
    worker = boot.make_worker()
    worker.on_ready = lambda: _tell_ready(boot.ready_w)
    worker.install_signals()
    sig.restore_mask(boot.previous_mask)
    try:
        boot.hooks.run("after_prefork", worker)
    except Exception:
        log.exception("after_prefork hook failed; worker %d cannot boot", os.getpid())
        return WORKER_BOOT_ERROR
    return worker.work()
