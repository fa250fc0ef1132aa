"""A value that exists once per process: what decorators register into and what the job API uses.

``@pyresque.job`` needs a registry to write to before any worker exists, ``@pyresque.before_fork``
a hook list, ``pyresque.enqueue`` a client: each is one object per process, made on first use.
:class:`ProcessWide` holds such an object and states its lifetime in one place:

- it is made by its factory the first time it is asked for (importing pyresque makes nothing);
- it lives as long as the process; ``fork`` gives the child a copy, so what a pool master's app
  registered at import time (jobs, hooks) is in every worker and job child without re-importing,
  and what a child registers later stays in that child;
- :meth:`replace` swaps it (a pool worker's client, built in the master before the fork; a test's
  fresh registry) and returns the previous one, so a test can put it back.

The module-level instances are declared ``Final`` where they live (``jobs.registry``,
``worker.hooks``, ``pool.hooks``, ``jobs.client``, the integrations in ``contrib``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ProcessWide(Generic[T]):
    """One ``T`` per process, made by ``factory`` on first use."""

    def __init__(self, factory: Callable[[], T], what: str) -> None:
        """``what`` says what the value is for, in the words a log line or a repr would use."""
        self._factory = factory
        self._value: T | None = None
        self.what = what

    def get(self) -> T:
        if self._value is None:
            self._value = self._factory()
        return self._value

    def replace(self, value: T | None) -> T | None:
        """Use ``value`` from now on (None: make a new one on next use); returns the previous."""
        previous, self._value = self._value, value
        return previous

    def __repr__(self) -> str:
        state = "made" if self._value is not None else "not made yet"
        return f"<ProcessWide {self.what}: {state}>"
