"""Pool hooks, the Python spelling of ``Resque::Pool.after_prefork do … end``.

``setup`` (master, once, after preload: close sockets and database connections the workers must not
share), ``after_prefork(worker)`` (worker, before it works: reconnect), ``after_spawn(worker, pid)``
(master), ``child_exit(worker, status)`` (master), ``siginfo`` (master, on SIGIO/SIGINFO).
A master-side hook that raises is logged, never fatal; a raising ``after_prefork`` is a worker boot
failure, which the master answers with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from pyresque.processwide import ProcessWide
from pyresque.worker.hooks import Hook, NamedHooks, decorator_for

POOL_HOOK_NAMES = ("setup", "after_prefork", "after_spawn", "child_exit", "siginfo")


class PoolHooks(NamedHooks):
    names = POOL_HOOK_NAMES
    kind = "pool hook"


DEFAULT_POOL_HOOKS: Final = ProcessWide(
    PoolHooks, "the pool hooks @pyresque.pool.after_prefork & co fill"
)


def default_pool_hooks() -> PoolHooks:
    return DEFAULT_POOL_HOOKS.get()


def _decorator(name: str) -> Callable[[Hook], Hook]:
    return decorator_for(default_pool_hooks, name)


setup = _decorator("setup")
after_prefork = _decorator("after_prefork")
after_spawn = _decorator("after_spawn")
child_exit = _decorator("child_exit")
siginfo = _decorator("siginfo")
