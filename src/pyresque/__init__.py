"""pyresque: Resque-compatible background jobs and worker pool for Python.

Public API::

    @pyresque.job(queue="mail")
    def send_welcome(user_id): ...

    pyresque.enqueue(send_welcome, 42)
    pyresque.enqueue_to("high", "Archive", 44, "main")
"""

from __future__ import annotations

import os as _os
import sys as _sys

# Before anything slow (redis-py's import): a Redis password given on the command line of
# `pyresque`, `resque-pool` or `python -m pyresque` is readable in /proc/<pid>/cmdline by every user
# of the host until the process hides it. Only those commands' own command lines are touched.
if _os.path.basename(_sys.argv[0] if _sys.argv else "") in ("pyresque", "resque-pool", "-m"):
    from pyresque.wire.redaction import scrub_argv as _scrub_argv

    _scrub_argv()

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pyresque._version import __version__
from pyresque.errors import (
    ConfigError,
    DirtyExit,
    DontPerform,
    JobTimeout,
    PayloadError,
    PyresqueError,
    TermException,
    UnknownJobClass,
)
from pyresque.jobs.client import (
    Batch,
    Client,
    batch,
    configure,
    default_client,
    dequeue,
    enqueue,
    enqueue_many,
    enqueue_to,
)
from pyresque.jobs.registry import JobSpec, default_name, default_registry
from pyresque.jobs.retry import Retry, policy_of
from pyresque.worker.child import shutdown_requested
from pyresque.worker.hooks import (
    after_fork,
    after_job,
    after_pause,
    before_first_fork,
    before_fork,
    before_job,
    before_pause,
    job_failed,
    queue_empty,
    worker_exit,
)

if TYPE_CHECKING:  # imported on first use (see __getattr__); the types are the same
    from pyresque.scheduler import (
        delayed_count,
        delayed_jobs,
        enqueue_at,
        enqueue_at_with_queue,
        enqueue_in,
        enqueue_in_with_queue,
        remove_delayed,
    )

# The scheduler package (croniter, dateutil, zoneinfo: ~1 MB) is imported on first use of one
# of these names, not by every ``import pyresque``: a pool worker that never schedules a job then
# does not carry it, nor copy its pages.
_SCHEDULER_NAMES = frozenset(
    (
        "delayed_count",
        "delayed_jobs",
        "enqueue_at",
        "enqueue_at_with_queue",
        "enqueue_in",
        "enqueue_in_with_queue",
        "remove_delayed",
    )
)


def __getattr__(name: str) -> Any:
    if name in _SCHEDULER_NAMES:
        from pyresque import scheduler

        value = getattr(scheduler, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pyresque' has no attribute {name!r}")


F = TypeVar("F", bound=Callable[..., Any])


def job(
    queue: str | None = None,
    name: str | None = None,
    *,
    timeout: float | None = None,
    retry: Retry | int | None = None,
) -> Callable[[F], F]:
    """Register a function or a class with ``perform`` as a job.

    ``name`` is the payload's ``class`` (default ``module.qualname``; give a Ruby class name to share
    a queue with Ruby); ``queue`` is where :func:`enqueue` puts it (default: the target's ``queue``
    attribute); ``timeout`` is its time limit in seconds (it then fails as :class:`JobTimeout`);
    ``retry`` retries a failure later through the delayed queue (a :class:`Retry` policy, or a
    number of retries: runs after the first failure).
    """

    def register_job(target: F) -> F:
        default_registry().register(
            name or default_name(target), target, queue, timeout, policy_of(retry)
        )
        return target

    return register_job


def register(name: str, target: Callable[..., Any] | str, queue: str | None = None) -> JobSpec:
    """Make payloads whose class is ``name`` run ``target`` (a callable or a registered name)."""
    return default_registry().register(name, target, queue)


def allow_job_module(prefix: str) -> None:
    """Let payloads name callables by import path under ``prefix`` (e.g. ``myapp.jobs``)."""
    default_registry().allow_module(prefix)


__all__ = [
    "Batch",
    "Client",
    "ConfigError",
    "DirtyExit",
    "DontPerform",
    "JobTimeout",
    "PayloadError",
    "PyresqueError",
    "Retry",
    "TermException",
    "UnknownJobClass",
    "__version__",
    "after_fork",
    "after_job",
    "after_pause",
    "allow_job_module",
    "batch",
    "before_first_fork",
    "before_fork",
    "before_job",
    "before_pause",
    "configure",
    "default_client",
    "delayed_count",
    "delayed_jobs",
    "dequeue",
    "enqueue",
    "enqueue_at",
    "enqueue_at_with_queue",
    "enqueue_in",
    "enqueue_in_with_queue",
    "enqueue_many",
    "enqueue_to",
    "job",
    "job_failed",
    "queue_empty",
    "register",
    "remove_delayed",
    "shutdown_requested",
    "worker_exit",
]
