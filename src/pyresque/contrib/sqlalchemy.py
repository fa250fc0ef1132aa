"""SQLAlchemy engines across the pool's forks: one line, ``pyresque.contrib.sqlalchemy.install()``.

A pooled connection the master opened is inherited by every worker; two processes using one socket
corrupt each other's queries. SQLAlchemy's answer is ``engine.dispose(close=False)`` in the child:
forget the inherited pool without closing its connections (closing would say goodbye on the
master's socket), so the child's first query opens its own. :func:`install` does that for every
engine the app created, whenever it was created, with the pool's hooks:

- master, ``setup``: ``engine.dispose()``, so workers fork with no pooled connection at all;
- worker, ``after_prefork``, and job child, ``after_fork``: ``engine.dispose(close=False)``, for
  whatever a later hook opened;
- job child, ``after_job``: ``engine.dispose()``, so the child's own connections end with a proper
  goodbye rather than a reset when it exits.

Engines are found by listening for every engine's first connection (an engine that never connected
holds nothing to inherit) and, for engines that connected before :func:`install`, by one scan of the
heap at install time. ``install(engine, ...)`` also takes engines explicitly.
"""

from __future__ import annotations

import gc
import logging
import weakref
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

import pyresque
import pyresque.pool
from pyresque.processwide import ProcessWide

log = logging.getLogger(__name__)


@dataclass
class _Engines:
    """The engines of this process, weakly held (an engine the app drops is not kept alive)."""

    known: weakref.WeakSet[Engine] = field(default_factory=weakref.WeakSet)
    installed: bool = False
    in_job_child: bool = False


_STATE: Final = ProcessWide(_Engines, "the SQLAlchemy engines of this process")


def _track(conn: Connection) -> None:
    _STATE.get().known.add(conn.engine)


def engines() -> list[Engine]:
    """Every engine known to have connected in this process (or given to :func:`install`)."""
    return list(_STATE.get().known)


def dispose_all(*_: object) -> None:
    """Close every pooled connection properly (in the master before forking, in a job child
    before it exits)."""
    for engine in engines():
        engine.dispose()


def forget_inherited(*_: object) -> None:
    """Drop every inherited pool without closing its connections: they belong to the parent."""
    for engine in engines():
        engine.dispose(close=False)
    log.debug("inherited pools of %d engine(s) forgotten", len(_STATE.get().known))


def _enter_job_child(job: object) -> None:
    _STATE.get().in_job_child = True
    forget_inherited()


def _after_job(job: object) -> None:
    if _STATE.get().in_job_child:
        dispose_all()


def install(*explicit: Engine) -> None:
    """Make every engine of the app fork-safe in the pool (call once, where the app is loaded)."""
    state = _STATE.get()
    for engine in explicit:
        state.known.add(engine)
    if state.installed:
        return
    state.installed = True
    event.listen(Engine, "engine_connect", _track)
    for obj in gc.get_objects():  # engines that connected before this call
        if isinstance(obj, Engine):
            state.known.add(obj)
    pyresque.pool.setup(dispose_all)
    pyresque.pool.after_prefork(forget_inherited)
    pyresque.after_fork(_enter_job_child)
    pyresque.after_job(_after_job)
