"""The process-wide tracers that follow a job across the queue: what a tracing integration
(``pyresque.contrib.otel``, ``pyresque.contrib.sentry``) registers to see a job enqueued, put back
for a retry, or moved by the scheduler.

A job's own run is seen through the worker hooks (``before_job``, ``job_failed``, ``after_job``), in
the process that runs it; these are the moments outside it. With no tracer registered, the only
cost is one test of an empty tuple on the enqueue, retry and move paths, and none on a worker's
path from one job to the next.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pyresque.jobs.job import Job
from pyresque.processwide import ProcessWide
from pyresque.wire.protocol import Payload

log = logging.getLogger(__name__)


class Tracer:
    """What a tracing integration does at each moment; every method does nothing by default."""

    @contextlib.contextmanager
    def enqueue(
        self, queue: str, class_name: str, args: Sequence[Any], carrier: dict[str, str]
    ) -> Iterator[None]:
        """Around one enqueue: on entry, put the trace context to carry into ``carrier``; the
        block pushes the job (a batch's job is pushed later, with the batch)."""
        yield

    def retried(self, queue: str, payload: Payload, attempt: int, at: float) -> None:
        """In the worker: the job failed its ``attempt`` and will run again at ``at`` (epoch
        seconds), through the delayed queue."""

    def moved(self, queue: str, payload: Payload, started: float) -> None:
        """In the scheduler: a delayed job was moved to ``queue`` (the move began at
        ``started``, epoch seconds)."""

    def failed_outside(self, job: Job, exc: BaseException) -> None:
        """In the worker: the job failed without raising in its process (``exc`` is the
        JobTimeout of a time limit, or the DirtyExit of a kill or of a process that died too
        often), after its on_failure hooks."""


@dataclass
class _Tracers:
    tracers: tuple[Tracer, ...] = ()


# what the integrations registered in this process (a fork copies them: a worker's job children
# trace as it does)
_TRACERS: Final = ProcessWide(_Tracers, "the tracers of the tracing integrations")


def add_tracer(tracer: Tracer) -> None:
    """Register ``tracer`` for this process (and the processes it forks from now on)."""
    state = _TRACERS.get()
    state.tracers = (*state.tracers, tracer)


def remove_tracer(tracer: Tracer) -> None:
    state = _TRACERS.get()
    state.tracers = tuple(t for t in state.tracers if t is not tracer)


def tracers() -> tuple[Tracer, ...]:
    return _TRACERS.get().tracers


@contextlib.contextmanager
def traced_enqueue(
    active: tuple[Tracer, ...], queue: str, class_name: str, args: Sequence[Any]
) -> Iterator[dict[str, str]]:
    """Every tracer's ``enqueue`` around the block; yields the carrier they filled."""
    carrier: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for tracer in active:
            stack.enter_context(tracer.enqueue(queue, class_name, args, carrier))
        yield carrier


def notify(method: str, *args: Any) -> None:
    """Call ``method`` of every tracer; one that raises is logged and skipped (a tracer must not
    fail a retry or a move)."""
    for tracer in _TRACERS.get().tracers:
        try:
            getattr(tracer, method)(*args)
        except Exception:
            log.exception("tracer %s failed in %s", type(tracer).__name__, method)


def merge_into(carrier: dict[str, str], entries: dict[str, str]) -> None:
    """Add ``entries`` to ``carrier``; a second ``baggage`` (W3C's, and Sentry's, which writes its
    entries in the same header) is joined to the first, as HTTP joins repeated headers."""
    for key, value in entries.items():
        if key == "baggage" and carrier.get(key):
            carrier[key] = f"{carrier[key]},{value}"
        else:
            carrier[key] = value
