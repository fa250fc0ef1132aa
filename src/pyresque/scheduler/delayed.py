"""Delayed jobs: run a job at a time, in resque-scheduler's layout, so Ruby can read them too.

``enqueue_at(when, job, *args)`` writes what Ruby's ``Resque.enqueue_at`` writes, byte for byte:
the item ``{"class":…,"args":[…],"queue":…}`` RPUSHed to ``delayed:<ts>``, its ``timestamps:``
set, and the integer timestamp in ``delayed_queue_schedule``. Times are whole seconds, rounded up
so that a job never runs early (Ruby's ``Time#to_i`` truncates); a time not after now enqueues at
once, as Ruby does. A scheduler (ours or Ruby's) moves each item to its queue when its second
comes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyresque.errors import ConfigError, PayloadError, PyresqueError
from pyresque.jobs.client import Client, JobRef, check_queue_name, default_client
from pyresque.jobs.registry import JobSpec
from pyresque.scheduler.store import ScheduleStore
from pyresque.wire import protocol

When = float | int | datetime


def seconds_of(when: When) -> float:
    """Epoch seconds of ``when`` (an epoch number or an aware/local datetime)."""
    return when.timestamp() if isinstance(when, datetime) else float(when)


def timestamp_of(when: When) -> int:
    """The whole epoch second a job delayed to ``when`` is stored under: rounded up, so that it
    never runs before ``when`` (Ruby's ``to_i`` truncates: ``enqueue_in(1, …)`` could run 0.2 s
    after the call). Ruby's scheduler reads any whole second, so the rounding is ours alone."""
    return math.ceil(seconds_of(when))


def encode_item(class_name: str, args: list[Any] | tuple[Any, ...], queue: str) -> str:
    """The delayed item, keys in Ruby's order; PayloadError if the args are not JSON (or have a
    key JSON would change)."""
    protocol.check_keys(class_name, args)
    try:
        return protocol.dumps({"class": class_name, "args": list(args), "queue": queue})
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"arguments of {class_name} are not JSON-serialisable: {exc}") from exc


payload_item = protocol.delayed_item  # also what a worker's retry writes


def delay_payload(
    store: ScheduleStore, when: When, queue: str, payload: str, now: float
) -> int | None:
    """Put a raw queue payload back on ``queue`` at ``when`` (retries use this); returns the
    timestamp, or None when ``when`` is not after ``now`` and it was pushed at once.

    No hooks run and the job need not be registered: the payload is already a job. It is stored
    as any delayed job, so resque-web, Ruby's scheduler and ``pyresque schedule delayed`` see it,
    and it survives restarts.
    """
    item = payload_item(queue, payload)
    if seconds_of(when) <= now:
        store.push_now(queue, payload)
        return None
    ts = timestamp_of(when)
    store.push_delayed(ts, item)
    return ts


@dataclass(frozen=True)
class DelayedJob:
    """One delayed item as listed: when, where to, what, and the raw item."""

    timestamp: int
    queue: str
    class_name: str
    args: list[Any]
    item: str


def parse_item(timestamp: int, item: str) -> DelayedJob:
    """A delayed item read back; PayloadError if it is not one."""
    payload = protocol.decode_payload(item)
    queue = payload.extra.get("queue")
    return DelayedJob(timestamp, str(queue or ""), payload.class_name, payload.args, item)


class Delayed:
    """Delayed-job operations of one :class:`~pyresque.jobs.client.Client` (its Redis, namespace and
    job registry)."""

    def __init__(
        self, client: Client | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client or default_client()
        self.store = ScheduleStore(self.client.redis, self.client.store.keys)
        self.clock = clock

    def _resolve(self, job: JobRef, queue: str | None) -> tuple[str, str, JobSpec | None]:
        """The payload class name, the queue and the job's spec (None for a job by name only)."""
        spec: JobSpec | None
        if isinstance(job, str):
            name = job
            try:
                spec = self.client.registry.resolve(job)
            except PyresqueError:
                spec = None  # e.g. a Ruby class: scheduled by name, without hooks
        else:
            spec = self.client.registry.spec_for(job)
            if spec is None:
                raise ConfigError(
                    f"{getattr(job, '__qualname__', job)!r} is not a registered job: "
                    "decorate it with @pyresque.job or schedule it by name"
                )
            name = spec.name
        queue = queue or (spec.queue if spec else None)
        if not queue:
            raise ConfigError(f"job {name} has no default queue: use enqueue_at_with_queue")
        return name, queue, spec

    def enqueue_at(self, when: When, job: JobRef, *args: Any) -> bool:
        """Run ``job(*args)`` on its own queue at ``when``."""
        return self.enqueue_at_with_queue(None, when, job, *args)

    def enqueue_in(self, seconds: float, job: JobRef, *args: Any) -> bool:
        return self.enqueue_at_with_queue(None, self.clock() + seconds, job, *args)

    def enqueue_in_with_queue(
        self, queue: str | None, seconds: float, job: JobRef, *args: Any
    ) -> bool:
        return self.enqueue_at_with_queue(queue, self.clock() + seconds, job, *args)

    def enqueue_at_with_queue(self, queue: str | None, when: When, job: JobRef, *args: Any) -> bool:
        """Run ``job(*args)`` on ``queue`` at ``when``; False if a before_schedule hook said no.

        The job's ``before_schedule*``/``after_schedule*`` hooks run around it, as
        resque-scheduler's do; a time not after now enqueues at once. Enqueue hooks
        do not run, on this path or when the scheduler moves the job (Ruby's ``Job.create``).
        """
        name, queue, spec = self._resolve(job, queue)
        check_queue_name(queue)
        problem = spec.arguments_problem(args) if spec else None
        if problem is not None:
            raise PayloadError(problem)
        hooks = spec.hooks if spec else (lambda _prefix: ())
        if any(hook(*args) is False for hook in hooks("before_schedule")):
            return False
        if seconds_of(when) <= self.clock():
            self.store.push_now(queue, protocol.encode_payload(name, args))  # as Job.create
        else:
            self.store.push_delayed(timestamp_of(when), encode_item(name, args, queue))
        for hook in hooks("after_schedule"):
            hook(*args)
        return True

    def enqueue_payload_at(self, when: When, queue: str, payload: str) -> int | None:
        """Put a raw queue payload back on ``queue`` at ``when``: see :func:`delay_payload`."""
        return delay_payload(self.store, when, queue, payload, self.clock())

    def remove_delayed(self, job: JobRef, *args: Any, queue: str | None = None) -> int:
        """Remove every delayed copy of ``job(*args)`` on its queue (or ``queue``); how many."""
        name, queue, _spec = self._resolve(job, queue)
        return self.store.remove_item(encode_item(name, args, queue))

    def remove_delayed_at(
        self, when: When, job: JobRef, *args: Any, queue: str | None = None
    ) -> int:
        """Remove the copies of ``job(*args)`` delayed to ``when`` only; how many."""
        name, queue, _spec = self._resolve(job, queue)
        return self.store.remove_item_at(timestamp_of(when), encode_item(name, args, queue))

    def delay_or_enqueue_at(self, when: When, job: JobRef, *args: Any) -> bool:
        """Move already-delayed copies of ``job(*args)`` to ``when`` (Ruby's
        ``delay_or_enqueue_at``): remove them, then delay one."""
        self.remove_delayed(job, *args)
        return self.enqueue_at(when, job, *args)

    def find_selection(
        self, matches: Callable[[list[Any]], bool], class_name: str | None = None
    ) -> list[DelayedJob]:
        """Delayed jobs whose args ``matches`` accepts (of ``class_name`` only, when given)."""
        return [
            job
            for job in self.jobs()
            if job.class_name and (class_name is None or job.class_name == class_name)
            if matches(job.args)
        ]

    def remove_selection(
        self, matches: Callable[[list[Any]], bool], class_name: str | None = None
    ) -> int:
        """Remove the delayed jobs :meth:`find_selection` finds; how many were removed."""
        return sum(self.store.remove_item(job.item) for job in self._distinct(matches, class_name))

    def enqueue_selection(
        self, matches: Callable[[list[Any]], bool], class_name: str | None = None
    ) -> int:
        """Enqueue the selected delayed jobs now (removing them from the schedule); how many."""
        count = 0
        for job in self._distinct(matches, class_name):
            for _ in range(self.store.remove_item(job.item)):
                self.store.push_now(job.queue, protocol.encode_payload(job.class_name, job.args))
                count += 1
        return count

    def _distinct(
        self, matches: Callable[[list[Any]], bool], class_name: str | None
    ) -> list[DelayedJob]:
        seen: dict[str, DelayedJob] = {}
        for job in self.find_selection(matches, class_name):
            seen.setdefault(job.item, job)
        return list(seen.values())

    def scheduled_at(self, job: JobRef, *args: Any, queue: str | None = None) -> list[int]:
        """The timestamps ``job(*args)`` is delayed to (only byte-identical items match)."""
        name, queue, _spec = self._resolve(job, queue)
        return self.store.timestamps_of(encode_item(name, args, queue))

    def is_delayed(self, job: JobRef, *args: Any, queue: str | None = None) -> bool:
        return bool(self.scheduled_at(job, *args, queue=queue))

    def count(self) -> int:
        """Delayed jobs in all (Ruby's ``count_all_scheduled_jobs``)."""
        return self.store.count_items()

    def timestamp_count(self) -> int:
        """Timestamps with delayed jobs (Ruby's ``delayed_queue_schedule_size``)."""
        return self.store.schedule_size()

    def jobs(self, start: int = 0, count: int = -1) -> list[DelayedJob]:
        """Delayed jobs, soonest first, of the timestamps ``start`` .. ``start+count-1``;
        an unreadable item is listed with an empty class name."""
        timestamps = self.store.timestamps(start, count)
        out = []
        for ts, items in zip(timestamps, self.store.items_by_timestamp(timestamps), strict=True):
            for item in items:
                try:
                    out.append(parse_item(ts, item))
                except PayloadError:
                    out.append(DelayedJob(ts, "", "", [], item))
        return out

    def next_timestamp(self) -> int | None:
        return self.store.next_timestamp()

    def reset(self) -> None:
        """Drop every delayed job (Ruby's ``reset_delayed_queue``)."""
        self.store.reset()
