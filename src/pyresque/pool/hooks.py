"""Pool hooks, the Python spelling of ``Resque::Pool.after_prefork do … end``.

``setup`` (master, once, after preload: close sockets and database connections the workers must not
share), ``after_prefork(worker)`` (worker, before it works: reconnect), ``after_spawn(worker, pid)``
(master), ``child_exit(worker, status)`` (master), ``siginfo`` (master, on SIGIO/SIGINFO).
A master-side hook that raises is logged, never fatal; a raising ``after_prefork`` is a worker boot
failure, which the master answers with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

POOL_HOOK_NAMES = ("setup", "after_prefork", "after_spawn", "child_exit", "siginfo")

Hook = Callable[..., Any]


class PoolHooks:
    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {name: [] for name in POOL_HOOK_NAMES}

    def add(self, name: str, hook: Hook) -> Hook:
        if name not in self._hooks:
            raise ValueError(f"unknown pool hook {name!r}; known: {', '.join(POOL_HOOK_NAMES)}")
        self._hooks[name].append(hook)
        return hook

    def run(self, name: str, *args: Any) -> None:
        """Run the hooks of ``name``; the first exception propagates."""
        for hook in self._hooks[name]:
            hook(*args)

    def run_logged(self, name: str, *args: Any) -> bool:
        """Run master-side hooks: a failure is logged with its traceback. False if one failed."""
        try:
            self.run(name, *args)
        except Exception:
            log.exception("%s hook failed", name)
            return False
        return True


class _DefaultPoolHooks:
    """The process-wide pool hooks that ``@pyresque.pool.after_prefork`` and friends fill."""

    hooks = PoolHooks()


def default_pool_hooks() -> PoolHooks:
    return _DefaultPoolHooks.hooks


def _decorator(name: str) -> Callable[[Hook], Hook]:
    def register(hook: Hook) -> Hook:
        return default_pool_hooks().add(name, hook)

    register.__name__ = name
    register.__doc__ = f"Register a ``{name}`` pool hook."
    return register


setup = _decorator("setup")
after_prefork = _decorator("after_prefork")
after_spawn = _decorator("after_spawn")
child_exit = _decorator("child_exit")
siginfo = _decorator("siginfo")
