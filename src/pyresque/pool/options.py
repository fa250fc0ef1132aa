"""The pool's settings, as one frozen dataclass, and how TERM is treated."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pyresque.wire.keys import DEFAULT_NAMESPACE


class TermMode(enum.Enum):
    """What TERM to the master means (Ruby's --term-* options, and ours by default)."""

    DEADLINE = "deadline"  # workers interrupt and put back their jobs; gone before the deadline
    GRACEFUL_WAIT = "graceful-wait"  # as QUIT: wait for every job to finish
    GRACEFUL = "graceful"  # QUIT the workers, and the master exits at once
    IMMEDIATE = "immediate"  # TERM the workers, and the master exits at once


@dataclass(frozen=True)
class PoolOptions:
    app_name: str = ""
    redis_url: str = "redis://localhost:6379/0"
    redis_label: str = "Redis"
    namespace: str = DEFAULT_NAMESPACE
    # TERM and INT: the master has exited, every worker gone and every job put back, before this
    shutdown_timeout: float = 25.0
    # a worker asked to stop (scale down, HUP) is killed if still running this long after
    kill_timeout: float = 60.0
    spawn_delay: float = 0.0
    single_process_group: bool = False
    term_mode: TermMode = TermMode.DEADLINE
    handle_winch: bool = False
    # with --daemon: where stdout and stderr go; reopened on HUP (log rotation)
    stdout_path: str | None = None
    stderr_path: str | None = None
    # import the app in the master before forking (shared copy-on-write), or in each worker
    preload: bool = True
    apps: tuple[str, ...] = ()
    # gc.freeze() before forking, so collections in workers do not dirty the shared pages
    gc_freeze: bool = True
