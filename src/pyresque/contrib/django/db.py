"""Django's database connections across the pool's forks and around every job.

- master, ``setup`` (after preload): close every connection, so that no worker inherits one;
- worker, ``after_prefork`` and job child, ``after_fork``: drop whatever was inherited anyway (an
  app's own setup hook that ran later, a connection opened by a worker hook) without a word on the
  shared socket (see :mod:`pyresque.contrib.forksafe`), so the first query opens a connection of
  this process's own;
- ``before_job`` / ``after_job``: :func:`django.db.close_old_connections`, what Django does around
  every request: a connection past ``CONN_MAX_AGE``, broken, or left in a transaction by a job that
  raised is closed, so the next job starts clean. A forked job child closes all of its connections
  after its job instead: it exits next, and a persistent connection would end without a goodbye.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Final

from django.db import close_old_connections, connections

import pyresque
import pyresque.pool
from pyresque.contrib.forksafe import silence_connection
from pyresque.processwide import ProcessWide

log = logging.getLogger(__name__)


@dataclass
class _Process:
    """What this process is: set in a forked job child by the ``after_fork`` hook."""

    in_job_child: bool = False
    installed: bool = False


_STATE: Final = ProcessWide(_Process, "whether this process is a job child (Django)")


def close_all_connections(*_: object) -> None:
    """Close every connection this process opened (in the master: before the workers fork)."""
    connections.close_all()


def drop_inherited_connections(*_: object) -> None:
    """Forget every connection inherited from the parent without sending anything on it."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if silence_connection(conn.connection):
            with contextlib.suppress(Exception):  # the client finds its socket gone
                conn.close()
        conn.connection = None
        conn.in_atomic_block = False
        conn.needs_rollback = False
        conn.closed_in_transaction = False


def enter_job_child(job: object) -> None:
    _STATE.get().in_job_child = True
    drop_inherited_connections()


def before_job(job: object) -> None:
    close_old_connections()


def after_job(job: object) -> None:
    if _STATE.get().in_job_child:
        connections.close_all()
    else:
        close_old_connections()


def install() -> None:
    """Register the hooks once per process (``AppConfig.ready`` may run more than once in tests)."""
    if _STATE.get().installed:
        return
    _STATE.get().installed = True
    pyresque.pool.setup(close_all_connections)
    pyresque.pool.after_prefork(drop_inherited_connections)
    pyresque.after_fork(enter_job_child)
    pyresque.before_job(before_job)
    pyresque.after_job(after_job)
