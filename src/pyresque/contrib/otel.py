"""OpenTelemetry tracing of jobs: a producer span at enqueue, a consumer span around each run, and
spans for a retry and for the scheduler's move, all in the trace the enqueue belonged to.

    from pyresque.contrib.otel import instrument
    instrument()  # after the OpenTelemetry SDK is set up; tracer_provider= to use another

The trace context crosses the queue in the payload, under ``trace_context`` (written after ``class``
and ``args``; see docs/protocol.md), injected and extracted with the globally configured
propagators (W3C trace context by default). Attribute names follow OpenTelemetry's messaging
semantic conventions (``messaging.system`` is ``resque``); Resque jobs have no message id, so
``messaging.message.id`` is not set. Arguments are never recorded.

The consumer span runs in the process that runs the job (the job child, or the worker
in-process); a job child ends with ``os._exit``, so its spans are flushed before that, and a worker
flushes its own when it exits. Until :func:`instrument` is called nothing here runs, and pyresque
itself never imports OpenTelemetry.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import Token
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from pyresque._version import __version__
from pyresque.jobs import tracing
from pyresque.jobs.job import Job
from pyresque.processwide import ProcessWide
from pyresque.wire.protocol import Payload
from pyresque.worker.hooks import WorkerHooks, default_hooks
from pyresque.worker.loop import Worker

SYSTEM = "resque"
FLUSH_TIMEOUT_MS = 5000  # how long a job child may wait for its spans to be exported


def _attributes(queue: str, operation: str, kind: str, class_name: str) -> dict[str, Any]:
    return {
        "messaging.system": SYSTEM,
        "messaging.destination.name": queue,
        "messaging.operation.name": operation,
        "messaging.operation.type": kind,
        "pyresque.job.class": class_name,
    }


@dataclass
class _Running:
    span: trace.Span
    token: Token[context.Context]


class _Instrumentation(tracing.Tracer):
    """The tracer of the enqueue, retry and move moments, and the worker hooks of a job's run."""

    def __init__(self, tracer: trace.Tracer, hooks: WorkerHooks) -> None:
        self.tracer = tracer
        self.hooks = hooks
        self.worker_id = ""
        self.forked = False  # this process is a job child: flush before it exits
        self.running: dict[int, _Running] = {}
        self.registered: dict[str, Callable[..., Any]] = {
            "before_first_fork": self.before_first_fork,
            "after_fork": self.after_fork,
            "before_job": self.before_job,
            "job_failed": self.job_failed,
            "after_job": self.after_job,
            "worker_exit": flush,
        }

    # --- moments outside a job's run (jobs.tracing.Tracer) -------------------------------------

    @contextlib.contextmanager
    def enqueue(
        self, queue: str, class_name: str, args: Sequence[Any], carrier: dict[str, str]
    ) -> Iterator[None]:
        with self.tracer.start_as_current_span(
            f"send {queue}",
            kind=SpanKind.PRODUCER,
            attributes=_attributes(queue, "send", "send", class_name),
        ):
            injected: dict[str, str] = {}
            propagate.inject(injected)
            tracing.merge_into(carrier, injected)
            yield

    def retried(self, queue: str, payload: Payload, attempt: int, at: float) -> None:
        attributes = _attributes(queue, "retry", "send", payload.class_name)
        attributes["pyresque.retry.attempt"] = attempt
        attributes["pyresque.retry.at"] = at
        self._instant(f"retry {queue}", payload, attributes, time.time())

    def moved(self, queue: str, payload: Payload, started: float) -> None:
        attributes = _attributes(queue, "move", "send", payload.class_name)
        self._instant(f"move {queue}", payload, attributes, started)

    def _instant(
        self, name: str, payload: Payload, attributes: dict[str, Any], started: float
    ) -> None:
        """A span that ended now, in the trace the job was enqueued in."""
        parent = propagate.extract(payload.trace_context)
        span = self.tracer.start_span(
            name,
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            start_time=int(started * 1e9),
        )
        span.end()

    # --- a job's run (worker hooks, in the process that runs it) -------------------------------

    def before_first_fork(self, worker: Worker) -> None:
        self.worker_id = str(worker.id)

    def after_fork(self, job: Job) -> None:
        self.forked = True  # in the job child

    def before_job(self, job: Job) -> None:
        parent = propagate.extract(job.payload.trace_context)
        attributes = _attributes(job.queue, "process", "process", job.payload.short_class)
        if self.worker_id:
            attributes["messaging.client.id"] = self.worker_id
        span = self.tracer.start_span(
            f"process {job.queue}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        self.running[id(job)] = _Running(span, token)

    def job_failed(self, job: Job, exc: BaseException) -> None:
        running = self.running.get(id(job))
        if running is not None:
            running.span.record_exception(exc)
            running.span.set_status(Status(StatusCode.ERROR, type(exc).__name__))

    def after_job(self, job: Job) -> None:
        running = self.running.pop(id(job), None)
        if running is None:
            return
        running.span.end()
        context.detach(running.token)
        if self.forked:
            flush()

    def install(self) -> None:
        for name, hook in self.registered.items():
            self.hooks.add(name, hook)
        tracing.add_tracer(self)

    def uninstall(self) -> None:
        for name, hook in self.registered.items():
            self.hooks.remove(name, hook)
        tracing.remove_tracer(self)


def flush() -> None:
    """Export the spans ended so far (the SDK's provider; the API alone has nothing to flush)."""
    force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if force_flush is not None:
        force_flush(FLUSH_TIMEOUT_MS)


@dataclass
class _Installed:
    instrumentation: _Instrumentation | None = None


_STATE: Final = ProcessWide(_Installed, "the OpenTelemetry instrumentation of pyresque")


def instrument(
    tracer_provider: trace.TracerProvider | None = None, hooks: WorkerHooks | None = None
) -> None:
    """Trace pyresque's jobs in this process and the processes it forks from now on (a worker
    or pool loads the app that calls it before forking). Calling it again does nothing."""
    state = _STATE.get()
    if state.instrumentation is not None:
        return
    tracer = trace.get_tracer("pyresque", __version__, tracer_provider)
    state.instrumentation = _Instrumentation(tracer, hooks or default_hooks())
    state.instrumentation.install()


def uninstrument() -> None:
    """Stop tracing (the hooks and the enqueue tracer are removed)."""
    state = _STATE.get()
    if state.instrumentation is not None:
        state.instrumentation.uninstall()
        state.instrumentation = None
