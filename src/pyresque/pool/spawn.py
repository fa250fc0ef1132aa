"""Forking a pool worker, and what runs in it until it exits.

The master masks its signals across ``fork``; the child installs the worker's own handlers before
unmasking, so a signal can never run master code in a worker. The child never returns into the
master's code (:func:`pyresque.worker.forking.fork` ends it with ``os._exit``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

from pyresque.jobs.client import use_default_client
from pyresque.pool.clients import PoolClients
from pyresque.pool.hooks import PoolHooks
from pyresque.pool.options import PoolOptions
from pyresque.settings import WorkerSettings
from pyresque.worker import forking
from pyresque.worker.loop import Worker
from pyresque.worker.queues import QueueSelector

log = logging.getLogger(__name__)

# A worker that could not boot (its after_prefork hook raised): the master backs off instead of
# respawning at once, as gunicorn's WORKER_BOOT_ERROR tells a crash loop from a crash.
WORKER_BOOT_ERROR = 3

_PR_SET_PDEATHSIG = 1

# the master's signals that mean nothing to a worker
WORKER_IGNORED = (signal.SIGHUP, signal.SIGWINCH, signal.SIGIO, signal.SIGTTIN, signal.SIGTTOU)


@dataclass(frozen=True)
class SpawnOptions:
    own_process_group: bool = True
    # sent to the worker when its master dies, even by SIGKILL: QUIT, so a busy worker finishes
    # its job first and an idle one leaves at once
    parent_death_signal: int = signal.SIGQUIT


def _set_parent_death_signal(signum: int) -> None:
    """Linux's PR_SET_PDEATHSIG; elsewhere the worker's own getppid() check covers it."""
    prctl = libc_prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


@functools.cache
def libc_prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux), looked up once in the master, before any fork.

    The running program's symbols include libc's, so no search for the library is needed:
    ``ctypes.util.find_library`` runs ``ldconfig -p`` in a subprocess and parses its output, which
    cost each forked worker 1.4 MB of private memory when the worker looked it up itself.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


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
    libc_prctl()  # resolved before the fork, so that no worker resolves it again
    ready_r, ready_w = os.pipe()
    boot = _Boot(make_worker, hooks, options, master_signals, in_child, ready_w)

    def body(child: forking.InChild) -> int:  # in the child
        os.close(ready_r)
        return _boot_and_work(boot, child)

    try:
        pid = forking.fork(body, block=master_signals, on_error=_crashed)
    except OSError:
        os.close(ready_r)
        os.close(ready_w)
        raise
    os.close(ready_w)
    os.set_blocking(ready_r, False)
    return pid, ready_r


@dataclass(frozen=True)
class _Boot:
    """What a freshly forked worker needs to become a worker."""

    make_worker: Callable[[], Worker]
    hooks: PoolHooks
    options: SpawnOptions
    master_signals: tuple[int, ...]
    in_child: Callable[[], None]
    ready_w: int


def _crashed(exc: BaseException) -> int:
    """In the child: a worker that raised out of its loop."""
    with contextlib.suppress(BaseException):
        log.error("worker %d crashed", os.getpid(), exc_info=exc)
    return 1


def _boot_and_work(boot: _Boot, child: forking.InChild) -> int:
    if boot.options.own_process_group:
        os.setpgid(0, 0)
    _set_parent_death_signal(boot.options.parent_death_signal)
    if os.getppid() != child.parent_pid:
        return 0  # the master died before we could ask to be told
    boot.in_child()
    for signum in boot.master_signals:
        signal.signal(signum, signal.SIG_DFL)
    for signum in WORKER_IGNORED:
        signal.signal(signum, _ignore)  # not SIG_IGN, which programs a job execs would inherit
    worker = boot.make_worker()
    worker.on_ready = lambda: _tell_ready(boot.ready_w)
    worker.install_signals()
    child.unblock()
    try:
        boot.hooks.run("after_prefork", worker)
    except Exception:
        log.exception("after_prefork hook failed; worker %d cannot boot", os.getpid())
        return WORKER_BOOT_ERROR
    return worker.work()


def worker_factory(
    options: PoolOptions, settings: WorkerSettings, group: str, clients: PoolClients
) -> Callable[[], Worker]:
    """What a new worker for ``group`` runs in the child to become a worker: import the app
    (unless preloaded), build the Worker on its own Redis connection.

    Called in the master just before the fork. With the app preloaded, the worker's Redis client,
    its store and the default client for ``pyresque.enqueue`` are built here, unconnected: built
    in the child, their few dozen objects would land in free slots of the inherited memory and
    make a private copy of every page they touch (about 1.5 MB a worker). Each worker still opens
    connections of its own: redis-py's pool notices the new pid and starts empty. The store and
    the default client share one client (:meth:`PoolClients.for_worker`).
    """
    settings = replace(settings, queues=group)
    master_pid = os.getpid()
    prebuilt = clients.for_worker() if options.preload else None

    def make_worker() -> Worker:  # in the child
        if not options.preload:
            from pyresque.jobs.apps import import_apps

            import_apps(options.apps)
        store, default = prebuilt or clients.for_worker()
        use_default_client(default)
        return Worker(
            store,
            QueueSelector.parse(group),
            settings,
            redis_label=options.redis_label,
            parent_pid=master_pid,
        )

    return make_worker
