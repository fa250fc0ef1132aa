"""Worker hooks, with Resque's names and moments.

``before_first_fork`` (worker, once), ``before_fork(job)`` and ``after_fork(job)`` (fork mode: in the
worker, and in the job child), ``before_pause(worker)`` / ``after_pause(worker)``, ``queue_empty``
(the busy -> idle transition) and ``worker_exit``; ``before_job(job)`` and ``after_job(job)`` run
around every job in the process that runs it (the job child in fork mode, the worker in-process),
so that an integration can do what a web framework does around each request (Django's
``close_old_connections``). ``after_job`` runs however the job ended. ``job_failed(job, exc)`` runs
there too, between them, when the job raised (after the job's own ``on_failure`` hooks): what an
error tracker needs to report the exception itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from pyresque.processwide import ProcessWide

log = logging.getLogger(__name__)

HOOK_NAMES = (
    "before_first_fork",
    "before_fork",
    "after_fork",
    "before_pause",
    "after_pause",
    "queue_empty",
    "worker_exit",
    "before_job",
    "job_failed",
    "after_job",
)

Hook = Callable[..., Any]


class NamedHooks:
    """Named lists of callables, run in registration order; subclasses say which names exist."""

    names: tuple[str, ...] = ()
    kind = "hook"

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {name: [] for name in self.names}

    def add(self, name: str, hook: Hook) -> Hook:
        if name not in self._hooks:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names)}")
        self._hooks[name].append(hook)
        return hook

    def remove(self, name: str, hook: Hook) -> None:
        """Take ``hook`` out of ``name``'s list, if it is there (an integration turned off)."""
        self._hooks[name] = [h for h in self._hooks[name] if h is not hook]

    def has(self, name: str) -> bool:
        """Whether any hook of ``name`` is registered."""
        return bool(self._hooks[name])

    def run(self, name: str, *args: Any) -> None:
        """Run every hook of ``name``; the first exception propagates (the caller decides)."""
        for hook in self._hooks[name]:
            hook(*args)

    def run_logged(self, name: str, *args: Any) -> bool:
        """Run hooks whose failure must not stop the process: log it with its traceback.
        False if one failed."""
        try:
            self.run(name, *args)
        except Exception:
            log.exception("%s hook failed", name)
            return False
        return True


def decorator_for(registry: Callable[[], NamedHooks], name: str) -> Callable[[Hook], Hook]:
    """``@registry.<name>``: a decorator that adds the function to the process-wide registry."""

    def register(hook: Hook) -> Hook:
        return registry().add(name, hook)

    register.__name__ = name
    register.__doc__ = f"Register a ``{name}`` hook."
    return register


class WorkerHooks(NamedHooks):
    names = HOOK_NAMES
    kind = "worker hook"


DEFAULT_HOOKS: Final = ProcessWide(WorkerHooks, "the worker hooks @pyresque.before_fork & co fill")


def default_hooks() -> WorkerHooks:
    return DEFAULT_HOOKS.get()


def _decorator(name: str) -> Callable[[Hook], Hook]:
    return decorator_for(default_hooks, name)


before_first_fork = _decorator("before_first_fork")
before_fork = _decorator("before_fork")
after_fork = _decorator("after_fork")
before_pause = _decorator("before_pause")
after_pause = _decorator("after_pause")
queue_empty = _decorator("queue_empty")
worker_exit = _decorator("worker_exit")
before_job = _decorator("before_job")
job_failed = _decorator("job_failed")
after_job = _decorator("after_job")
