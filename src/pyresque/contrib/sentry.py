"""Sentry for pyresque: a job's exception reported once, with its job as context; a span per job
when the SDK traces; the trace continued from the request that enqueued the job.

    import sentry_sdk
    from pyresque.contrib.sentry import PyresqueIntegration
    sentry_sdk.init(dsn=..., integrations=[PyresqueIntegration()])

Like the SDK's own integrations (RQ, arq, Celery), it hooks into the worker rather than asking the
job to: ``before_job`` opens an isolation scope with the job's tags and context, ``job_failed``
captures the exception, ``after_job`` ends the job's span and, in a job child (which ends with
``os._exit``), flushes the client so that no event is lost. A failure the job's retry policy will
retry is not reported (its last attempt is), unless ``report_retries=True``; the attempt is read from
resque-retry's counter in Redis, which only a failure pays for.

Arguments follow the worker's logs: a digest, unless the worker shows arguments in its log lines
(``--log-args``) or ``include_args=True``; never when the SDK's ``data_collection`` turns queue data
off. Scrub further with the SDK's ``before_send``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sentry_sdk
from sentry_sdk.consts import OP
from sentry_sdk.integrations import Integration
from sentry_sdk.tracing_utils import has_tracing_enabled
from sentry_sdk.utils import capture_internal_exceptions, event_from_exception

from pyresque.errors import JobTimeout
from pyresque.jobs import tracing
from pyresque.jobs.job import Job
from pyresque.jobs.retry import Retry, retry_identifier
from pyresque.store.operations import Store
from pyresque.wire.redaction import redact_argv
from pyresque.worker.hooks import WorkerHooks, default_hooks
from pyresque.worker.loop import Worker

log = logging.getLogger(__name__)

FLUSH_TIMEOUT = 5.0  # seconds a job child may wait for its events to be sent


class PyresqueIntegration(Integration):
    """``report_retries``: report every failed attempt, not only the last; ``include_args``: put
    the arguments in the report (None: as the worker's log lines do)."""

    identifier = "pyresque"
    origin = f"auto.queue.{identifier}"

    def __init__(self, report_retries: bool = False, include_args: bool | None = None) -> None:
        self.report_retries = report_retries
        self.include_args = include_args

    @staticmethod
    def setup_once() -> None:
        _Hooks(default_hooks()).install()


def _integration() -> PyresqueIntegration | None:
    """The integration when the current client has it (the SDK's own test for being on)."""
    return sentry_sdk.get_client().get_integration(PyresqueIntegration)


@dataclass
class _WorkerContext:
    """What the job's process knows of its worker (set before it forks its first job)."""

    worker_id: str = ""
    store: Store | None = None
    retry_attempts: int = 0  # the worker's retries for a job with no policy of its own
    log_args: bool = False
    forked: bool = False  # this process is a job child
    running: dict[int, contextlib.ExitStack] = field(default_factory=dict)


class _Hooks(tracing.Tracer):
    def __init__(self, hooks: WorkerHooks) -> None:
        self.hooks = hooks
        self.worker = _WorkerContext()

    def install(self) -> None:
        registered: dict[str, Callable[..., Any]] = {
            "before_first_fork": self.before_first_fork,
            "after_fork": self.after_fork,
            "before_job": self.before_job,
            "job_failed": self.job_failed,
            "after_job": self.after_job,
            "worker_exit": self.worker_exit,
        }
        for name, hook in registered.items():
            self.hooks.add(name, hook)
        tracing.add_tracer(self)

    # --- the enqueue (jobs.tracing.Tracer) ------------------------------------------------------

    @contextlib.contextmanager
    def enqueue(
        self, queue: str, class_name: str, args: Sequence[Any], carrier: dict[str, str]
    ) -> Iterator[None]:
        """Inside a traced request: a publish span, and its trace headers into the payload."""
        if _integration() is None or sentry_sdk.get_current_span() is None:
            yield
            return
        with sentry_sdk.start_span(
            name=class_name,
            attributes={
                "sentry.op": OP.QUEUE_PUBLISH,
                "sentry.origin": PyresqueIntegration.origin,
                "messaging.system": "resque",
                "messaging.destination.name": queue,
            },
        ):
            scope = sentry_sdk.get_current_scope()
            tracing.merge_into(carrier, dict(scope.iter_trace_propagation_headers()))
            yield

    # --- a job's run (worker hooks) --------------------------------------------------------------

    def before_first_fork(self, worker: Worker) -> None:
        self.worker.worker_id = str(worker.id)
        self.worker.store = worker.store
        self.worker.retry_attempts = int(worker.settings.retry_attempts or 0)
        self.worker.log_args = bool(worker.settings.log_args)

    def after_fork(self, job: Job) -> None:
        self.worker.forked = True  # in the job child

    def before_job(self, job: Job) -> None:
        integration = _integration()
        if integration is None:
            return
        stack = contextlib.ExitStack()
        scope = stack.enter_context(sentry_sdk.isolation_scope())
        scope.clear_breadcrumbs()
        # tags and context are added to an event when there is one: a job that ends well
        # pays for none of them
        scope.add_event_processor(
            _job_processor(job, self.worker.worker_id, show_args=self._shows_args(integration))
        )
        options = sentry_sdk.get_client().options
        if has_tracing_enabled(options):
            sentry_sdk.continue_trace(job.payload.trace_context)
            stack.enter_context(
                sentry_sdk.start_span(
                    name=job.payload.short_class,
                    attributes={
                        "sentry.op": OP.QUEUE_PROCESS,
                        "sentry.origin": PyresqueIntegration.origin,
                        "messaging.system": "resque",
                        "messaging.destination.name": job.queue,
                    },
                    parent_span=None,
                )
            )
        self.worker.running[id(job)] = stack

    def _shows_args(self, integration: PyresqueIntegration) -> bool:
        """Whether a report shows the arguments: as the worker's log lines do, unless the
        integration says otherwise; never when the SDK's data collection leaves queues out."""
        show = (
            self.worker.log_args if integration.include_args is None else integration.include_args
        )
        collection = sentry_sdk.get_client().options.get("data_collection") or {}
        return show and bool(collection.get("queues", True))

    def failed_outside(self, job: Job, exc: BaseException) -> None:
        """In the worker: a timeout, a kill or a dead process, reported as a job's exception is
        (with no frames: it was not raised in the job)."""
        integration = _integration()
        if integration is None:
            return
        with sentry_sdk.isolation_scope() as scope:
            show = self._shows_args(integration)
            scope.add_event_processor(_job_processor(job, self.worker.worker_id, show_args=show))
            # only a timeout goes through the retry policy; a kill or a dead process does not
            self._report(job, exc, integration, may_retry=isinstance(exc, JobTimeout))

    def job_failed(self, job: Job, exc: BaseException) -> None:
        integration = _integration()
        if integration is not None:
            self._report(job, exc, integration, may_retry=True)

    def _report(
        self, job: Job, exc: BaseException, integration: PyresqueIntegration, *, may_retry: bool
    ) -> None:
        """Capture ``exc`` as the job's failure, unless a retry follows and only last attempts
        are reported."""
        attempt, last = self._attempt(job, exc) if may_retry else (0, True)
        if not last and not integration.report_retries:
            return
        with capture_internal_exceptions():
            event, hint = event_from_exception(
                exc, mechanism={"type": "pyresque", "handled": False}
            )
            if attempt:
                event.setdefault("tags", {})["pyresque.attempt"] = str(attempt)
            sentry_sdk.capture_event(event, hint=hint)

    def _attempt(self, job: Job, exc: BaseException) -> tuple[int, bool]:
        """Which attempt failed (0: not known), and whether it was the last one: the job's retry
        policy, or the worker's, against resque-retry's counter (which the worker raises after
        this, once the job's process is done)."""
        policy = job.spec.retry
        if policy is None and self.worker.retry_attempts:
            policy = Retry(retries=self.worker.retry_attempts)
        if policy is None or not policy.covers(exc):
            return 1, True
        store = self.worker.store
        if store is None:
            return 0, True
        counter = store.keys.retry_attempts(job.payload.class_name, retry_identifier(job.args))
        try:
            seen = store.retry_attempts(counter)
        except Exception as exc_read:  # Redis away: report rather than lose the failure
            log.warning("sentry: attempt of %s unknown (%s); reported", job, exc_read)
            return 0, True
        done = int(seen) if seen.isdigit() else 0
        return done + 1, done >= policy.retries

    def after_job(self, job: Job) -> None:
        stack = self.worker.running.pop(id(job), None)
        if stack is None:
            return
        stack.close()
        if self.worker.forked:
            sentry_sdk.flush(FLUSH_TIMEOUT)

    def worker_exit(self) -> None:
        if _integration() is not None:
            sentry_sdk.flush(FLUSH_TIMEOUT)


REDACTED = "[a job argument: not shown]"


def _job_processor(job: Job, worker_id: str, *, show_args: bool) -> Callable[[Any, Any], Any]:
    """The event processor of a job's scope: the job's tags and context; passwords out of the
    command line (the SDK reports ``sys.argv``, which may hold a Redis URL); unless the arguments
    are shown, pyresque's own frames without their local variables (they hold the arguments) and
    the job function's parameters replaced."""

    def process(event: Any, hint: Any) -> Any:
        with capture_internal_exceptions():
            tags = event.setdefault("tags", {})
            tags["pyresque.queue"] = job.queue
            tags["pyresque.job_class"] = job.payload.short_class
            if worker_id:
                tags["pyresque.worker"] = worker_id
            event.setdefault("contexts", {})["pyresque job"] = {
                "queue": job.queue,
                "class": job.payload.short_class,
                "args": job.shown_args(show_args),
                "worker": worker_id,
            }
            extra = event.get("extra") or {}
            if isinstance(extra.get("sys.argv"), list):
                extra["sys.argv"] = redact_argv([str(a) for a in extra["sys.argv"]])
            if not show_args:
                for value in (event.get("exception") or {}).get("values") or []:
                    _redact_frames((value.get("stacktrace") or {}).get("frames") or [], job)
        return event

    return process


def _redact_frames(frames: list[dict[str, Any]], job: Job) -> None:
    """pyresque's frames lose their variables; the frame ``innermost`` calls (the job's own
    ``perform``) has its parameters replaced."""
    called_by_pyresque = False
    for frame in frames:
        if str(frame.get("module") or "").startswith("pyresque."):
            frame.pop("vars", None)
            called_by_pyresque = frame.get("function") == "innermost"
            continue
        variables = frame.get("vars")
        if called_by_pyresque and isinstance(variables, dict):
            for name in _parameters(job) & variables.keys():
                variables[name] = REDACTED
        called_by_pyresque = False


def _parameters(job: Job) -> set[str]:
    try:
        return set(inspect.signature(job.spec.performer()).parameters)
    except (TypeError, ValueError):
        return set()
