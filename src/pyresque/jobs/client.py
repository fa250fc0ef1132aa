"""The application-facing API: enqueue and dequeue jobs, with Resque's enqueue hooks."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis

from pyresque.errors import ConfigError, PayloadError, UnknownJobClass
from pyresque.jobs import tracing
from pyresque.jobs.registry import JobSpec, Registry, default_registry
from pyresque.processwide import ProcessWide
from pyresque.settings import connection_settings
from pyresque.store.connection import connect
from pyresque.store.operations import Store
from pyresque.wire import protocol
from pyresque.wire.keys import Keys, queue_name_problem

JobRef = Callable[..., Any] | str

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A job ready to push: its queue, its payload, and the after_enqueue hooks to run then."""

    queue: str
    payload: str
    after: list[Callable[[], object]]


def check_queue_name(queue: str) -> None:
    """ConfigError when no worker's queue list could name ``queue`` (see ``queue_name_problem``)."""
    problem = queue_name_problem(queue)
    if problem is not None:
        raise ConfigError(problem)


class Client:
    """Enqueues jobs to one Redis under one namespace."""

    def __init__(
        self,
        redis_client: redis.Redis | None = None,
        *,
        url: str | None = None,
        namespace: str | None = None,
        registry: Registry | None = None,
    ) -> None:
        resolved = connection_settings(url, namespace)
        self.url, self.namespace = resolved.redis_url, resolved.namespace
        self.redis = redis_client if redis_client is not None else connect(self.url)
        self.store = Store(self.redis, Keys(self.namespace))
        self.registry = registry or default_registry()

    def _spec(self, job: JobRef) -> tuple[str, JobSpec | None]:
        """The payload class name for ``job`` and its spec when it is a registered Python job."""
        if isinstance(job, str):
            try:
                return job, self.registry.resolve(job)
            except UnknownJobClass as exc:  # e.g. a Ruby class: enqueue by name without hooks
                log.debug("job %s is not a Python job here, so no hooks run: %s", job, exc)
                return job, None
        spec = self.registry.spec_for(job)
        if spec is None:
            raise ConfigError(
                f"{getattr(job, '__qualname__', job)!r} is not a registered job: "
                "decorate it with @pyresque.job or enqueue it by name"
            )
        return spec.name, spec

    def default_queue(self, job: JobRef) -> str:
        """The queue a registered job names; ConfigError when it names none."""
        name, spec = self._spec(job)
        if not spec or not spec.queue:
            raise ConfigError(f"job {name} has no default queue: use enqueue_to(queue, ...)")
        return spec.queue

    def prepare(
        self,
        queue: str,
        job: JobRef,
        args: tuple[Any, ...],
        trace: dict[str, str] | None = None,
    ) -> Prepared | None:
        """The payload for ``job(*args)`` after its ``before_enqueue`` hooks (None: a hook said
        no), and the ``after_enqueue`` hooks to run once it is pushed. Single and batched
        enqueues share it, so both write the same bytes and run the same hooks. ``trace``: the
        trace context a tracing integration gave, carried in the payload."""
        check_queue_name(queue)
        name, spec = self._spec(job)
        if spec is not None:
            problem = spec.arguments_problem(args)
            if problem is not None:
                raise PayloadError(problem)
        payload = protocol.encode_payload(name, args, trace)
        hooks = spec.hooks if spec else (lambda _prefix: ())
        if any(hook(*args) is False for hook in hooks("before_enqueue")):
            return None
        return Prepared(
            queue, payload, [functools.partial(h, *args) for h in hooks("after_enqueue")]
        )

    def enqueue(self, job: JobRef, *args: Any) -> bool:
        """Push ``job(*args)`` to the job's own queue; False if a before_enqueue hook said no."""
        return self.enqueue_to(self.default_queue(job), job, *args)

    def enqueue_to(self, queue: str, job: JobRef, *args: Any) -> bool:
        """Push ``job(*args)`` to ``queue``; False if a before_enqueue hook returned False."""
        active = tracing.tracers()
        if active:
            return self._enqueue_traced(active, queue, job, args)
        return self._push(self.prepare(queue, job, args))

    def _enqueue_traced(
        self, active: tuple[tracing.Tracer, ...], queue: str, job: JobRef, args: tuple[Any, ...]
    ) -> bool:
        """An enqueue inside the tracers' producer spans, their trace context in the payload."""
        with tracing.traced_enqueue(active, queue, self._spec(job)[0], args) as carrier:
            return self._push(self.prepare(queue, job, args, carrier))

    def _push(self, prepared: Prepared | None) -> bool:
        if prepared is None:
            return False
        self.store.push(prepared.queue, prepared.payload)
        for hook in prepared.after:
            hook()
        return True

    def dequeue(self, job: JobRef, *args: Any, queue: str | None = None) -> int:
        """Remove queued copies of ``job`` (only those with these args when any are given).

        Returns how many were removed; 0 if a before_dequeue hook returned False.
        """
        name, spec = self._spec(job)
        queue = queue or (spec.queue if spec else None)
        if not queue:
            raise ConfigError(f"job {name} has no default queue: pass queue=")
        hooks = spec.hooks if spec else (lambda _prefix: ())
        if any(hook(*args) is False for hook in hooks("before_dequeue")):
            return 0
        # compared as the queue holds them: a tuple was queued as a JSON list, and so on
        wanted = protocol.decode_payload(protocol.encode_payload(name, list(args))).args
        matches = []
        for raw in self.store.all_payloads(queue):
            try:
                payload = protocol.decode_payload(raw)
            except PayloadError as exc:  # not a job at all: nothing of ours to match, kept
                log.warning(
                    "dequeue: skipping an entry of queue %s that is not a job: %s", queue, exc
                )
                continue
            if payload.class_name == name and (not args or payload.args == wanted):
                matches.append(raw)
        removed = self.store.remove_payloads(queue, set(matches))
        for hook in hooks("after_dequeue"):
            hook(*args)
        return removed

    def batch(self) -> Batch:
        """A batch of enqueues written in one round trip when the ``with`` block ends."""
        return Batch(self)

    def enqueue_many(self, job: JobRef, arg_lists: Iterable[Sequence[Any]]) -> int:
        """Push ``job(*args)`` for each ``args`` to the job's queue in one round trip (per 1,000
        jobs); the bytes and hooks of :meth:`enqueue`. Returns how many were pushed."""
        with self.batch() as batch:
            for args in arg_lists:
                batch.enqueue(job, *args)
        return batch.pushed


class Batch:
    """Enqueues collected and written together: ``before_enqueue`` hooks run as each job is added
    (and may cancel it), the jobs are pushed in one script call when the block ends, then the
    ``after_enqueue`` hooks run. A block left by an exception pushes nothing."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pushed = 0
        self._jobs: list[tuple[str, str]] = []
        self._after: list[Callable[[], object]] = []

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.flush()

    def enqueue(self, job: JobRef, *args: Any) -> bool:
        return self.enqueue_to(self.client.default_queue(job), job, *args)

    def enqueue_to(self, queue: str, job: JobRef, *args: Any) -> bool:
        active = tracing.tracers()
        if active:  # each job's span ends here: the batch pushes them all later
            with tracing.traced_enqueue(active, queue, self.client._spec(job)[0], args) as carrier:
                prepared = self.client.prepare(queue, job, args, carrier)
        else:
            prepared = self.client.prepare(queue, job, args)
        if prepared is None:
            return False
        self._jobs.append((queue, prepared.payload))
        self._after += prepared.after
        return True

    def flush(self) -> None:
        """Push what was collected (one round trip) and run the after_enqueue hooks."""
        jobs, after = self._jobs, self._after
        self._jobs, self._after = [], []
        if jobs:
            self.pushed += self.client.store.push_many(jobs)
        for hook in after:
            hook()


DEFAULT_CLIENT: Final = ProcessWide(Client, "the client behind pyresque.enqueue (REDIS_URL)")


def configure(
    url: str | None = None,
    *,
    redis_client: redis.Redis | None = None,
    namespace: str | None = None,
) -> Client:
    """Set the Redis connection and namespace that ``pyresque.enqueue`` and workers use."""
    client = Client(redis_client, url=url, namespace=namespace)
    DEFAULT_CLIENT.replace(client)
    return client


def use_default_client(client: Client) -> None:
    """Make ``client`` the one ``pyresque.enqueue`` uses (a pool builds it before forking)."""
    DEFAULT_CLIENT.replace(client)


def default_client() -> Client:
    return DEFAULT_CLIENT.get()


def enqueue(job: JobRef, *args: Any) -> bool:
    return default_client().enqueue(job, *args)


def enqueue_to(queue: str, job: JobRef, *args: Any) -> bool:
    return default_client().enqueue_to(queue, job, *args)


def dequeue(job: JobRef, *args: Any, queue: str | None = None) -> int:
    return default_client().dequeue(job, *args, queue=queue)


def batch() -> Batch:
    """``with pyresque.batch() as b: b.enqueue(job, 1); ...``: one round trip for them all."""
    return default_client().batch()


def enqueue_many(job: JobRef, arg_lists: Iterable[Sequence[Any]]) -> int:
    return default_client().enqueue_many(job, arg_lists)
