"""Keeping time: delayed jobs, the scheduler that moves them, recurring schedules.

Compatible with resque-scheduler 5.0 on the same Redis: Ruby's ``Resque.enqueue_at`` items are
run by pyresque and ours by Ruby, and one master lock elects one scheduler per namespace, ours or
Ruby's. The functions here use the default client (``pyresque.configure``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyresque.jobs.client import JobRef, default_client
from pyresque.scheduler.delayed import Delayed, DelayedJob, When
from pyresque.scheduler.recurring import parse_entry
from pyresque.wire import protocol


def delayed() -> Delayed:
    """Delayed-job operations on the default client."""
    return Delayed(default_client())


def enqueue_at(when: When, job: JobRef, *args: Any) -> bool:
    """Run ``job(*args)`` on its queue at ``when`` (epoch seconds or a datetime)."""
    return delayed().enqueue_at(when, job, *args)


def enqueue_in(seconds: float, job: JobRef, *args: Any) -> bool:
    return delayed().enqueue_in(seconds, job, *args)


def enqueue_at_with_queue(queue: str, when: When, job: JobRef, *args: Any) -> bool:
    return delayed().enqueue_at_with_queue(queue, when, job, *args)


def enqueue_in_with_queue(queue: str, seconds: float, job: JobRef, *args: Any) -> bool:
    return delayed().enqueue_in_with_queue(queue, seconds, job, *args)


def remove_delayed(job: JobRef, *args: Any, queue: str | None = None) -> int:
    """Remove every delayed copy of ``job(*args)``; returns how many."""
    return delayed().remove_delayed(job, *args, queue=queue)


def delayed_jobs(start: int = 0, count: int = -1) -> list[DelayedJob]:
    """Delayed jobs, soonest first (of the timestamps ``start`` .. ``start+count-1``)."""
    return delayed().jobs(start, count)


def delayed_count() -> int:
    """How many jobs are delayed in all."""
    return delayed().count()


def set_schedule(name: str, config: Mapping[str, Any]) -> None:
    """Add or replace a dynamic recurring schedule (``persistent_schedules``), in
    resque-scheduler's format; a running scheduler (ours, or Ruby's with DYNAMIC_SCHEDULE) picks
    it up within a poll. ConfigError if the entry is not valid."""
    parse_entry(name, config)
    body = {str(k): v for k, v in config.items() if k != "persist"}
    delayed().store.set_persistent_schedule(name, protocol.dumps(body))


def remove_schedule(name: str) -> None:
    """Remove a dynamic recurring schedule."""
    delayed().store.remove_persistent_schedule(name)


__all__ = [
    "Delayed",
    "DelayedJob",
    "delayed",
    "delayed_count",
    "delayed_jobs",
    "enqueue_at",
    "enqueue_at_with_queue",
    "enqueue_in",
    "enqueue_in_with_queue",
    "remove_delayed",
    "remove_schedule",
    "set_schedule",
]
