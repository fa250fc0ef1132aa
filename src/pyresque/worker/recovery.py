"""Finding dead workers and putting their jobs back.

Pruning follows Ruby Resque 3.0 (take the lock; prune workers whose heartbeat expired; prune
same-host workers with the same queues whose pid is gone), so mixed Ruby and Python fleets keep
each other's registries clean, but prunes only what is surely dead: the pid test applies only to a
worker that writes Resque's heartbeats (Ruby's and ours). Other clients register workers too
(node-resque on the same host, with a ``node`` process and its own ``worker:ping:`` keys), and a pid
that is not a Resque process by ``ps`` is no proof of death for them. Where Ruby fails a
dead worker's job, we put a pyresque worker's in-flight job back at the front of its queue and count
the delivery (SPEC section 4): at least once, and a job that keeps killing its worker ends as a
failure after ``max_deliveries``.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from dataclasses import dataclass
from typing import Any

import psutil

from pyresque.errors import ConfigError
from pyresque.settings import WorkerSettings
from pyresque.store.connection import RETRYABLE_ERRORS
from pyresque.store.operations import Store
from pyresque.wire import protocol
from pyresque.wire.protocol import Failure
from pyresque.worker.queues import QueueSelector

log = logging.getLogger(__name__)

_RESQUE_TITLE = re.compile(r"resque-[0-9]")
_PID = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class WorkerId:
    """``host:pid:queues``; queue names may contain ``:``, so only the first two colons split."""

    host: str
    pid: int
    queues: str

    @classmethod
    def parse(cls, text: str) -> WorkerId | None:
        parts = text.split(":", 2)
        if len(parts) != 3 or not _PID.fullmatch(parts[1]):
            return None  # not ours to read; a pid like 042 or ٤٢ would print back as another id
        return cls(parts[0], int(parts[1]), parts[2])

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.queues}"


def local_resque_pids() -> set[int]:
    """Pids of processes whose title matches ``resque-<digit>`` (Ruby's ``ps`` check)."""
    pids = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if _RESQUE_TITLE.search(" ".join(cmdline)):
            pids.add(proc.info["pid"])
    return pids


def recover_worker(
    store: Store,
    worker_id: str,
    now: float,
    reason: Failure,
    max_deliveries: int,
    *,
    count_delivery: bool = True,
    fail_busy_record: bool = True,
) -> list[str]:
    """Put a dead worker's in-flight jobs back, record a Ruby worker's lost job, unregister it.

    Returns what happened to each job ('requeued', 'failed' or 'gone', when another recoverer won).
    ``fail_busy_record=False`` when the worker is known to be ours (it held in-flight jobs): then
    its in-flight hash is the whole truth, and a busy record left without one (the job already put
    back by a racing recoverer) must not become a failure record.
    """
    outcomes = []
    parsed = WorkerId.parse(worker_id)
    if (
        parsed is not None
        and _blocks_on_one_queue(parsed.queues)
        and store.return_landed(worker_id, parsed.queues)
    ):
        outcomes.append("requeued")
    jobs = store.inflight(worker_id)
    for queue, payload in jobs.items():
        record = protocol.failure_record(payload, reason, worker_id, queue, now)
        outcome = store.requeue(
            worker_id,
            queue,
            payload,
            count_delivery=count_delivery,
            max_deliveries=max_deliveries,
            failure_record=record,
        )
        log.warning("recovered job of dead worker %s from %s: %s", worker_id, queue, outcome)
        outcomes.append(outcome)
    if not jobs and fail_busy_record and _fail_busy_job(store, worker_id, reason, now):
        outcomes.append("failed")
    store.unregister_worker(worker_id)
    store.forget_inflight_owner(worker_id)
    return outcomes


def _fail_busy_job(store: Store, worker_id: str, reason: Failure, now: float) -> bool:
    """A Ruby worker's job (a busy record, no in-flight hash): Ruby fails it, and so do we."""
    busy = store.busy_record(worker_id)
    if not busy:
        return False
    data: Any
    try:
        data = protocol.loads(busy)  # never fails on content: too deep or 1e999 is ValueError
    except ValueError:
        data = None
    if not isinstance(data, dict):  # not what Resque writes: keep it as it is
        data = {"payload": busy, "queue": "unknown"}
    payload = data.get("payload")
    payload_text = payload if isinstance(payload, str) else protocol.dumps(payload)
    store.push_failure(
        protocol.failure_record(payload_text, reason, worker_id, str(data.get("queue")), now)
    )
    return True


def _blocks_on_one_queue(queues: str) -> bool:
    """Whether a worker with this queue list waits in BLMOVE (so it may have a landing list)."""
    try:
        return QueueSelector.parse(queues).blocks_on_one_queue
    except ConfigError:
        return False


def _job_class(store: Store, worker_id: str) -> str:
    busy = store.busy_record(worker_id)
    if busy:
        try:
            return protocol.shorten(str(protocol.loads(busy)["payload"]["class"]))
        except (ValueError, KeyError, TypeError):
            pass
    for payload in store.inflight(worker_id).values():
        try:
            return protocol.decode_payload(payload).class_name
        except Exception:
            return "<Unknown Job>"
    return "<Unknown Job>"


@dataclass
class _Survey:
    """What a prune reads of the registry, in this order: owners first, so that a worker that
    registers and reserves after this read is left alone."""

    owners: set[str]
    registered: list[str]
    heartbeats: dict[str, str]
    server_now: float

    @classmethod
    def take(cls, store: Store) -> _Survey:
        owners = store.inflight_owners()
        return cls(owners, store.worker_ids(), store.heartbeats(), store.server_time())


class _Judge:
    """Ruby's three tests of death, and the failure each gives a dead worker's job."""

    def __init__(
        self, me: WorkerId, selector: QueueSelector, survey: _Survey, prune_interval: float
    ) -> None:
        self.me = me
        self.selector = selector
        self.survey = survey
        self.prune_interval = prune_interval
        self._registered = set(survey.registered)
        self._local_pids: set[int] | None = None

    def heartbeat_age(self, worker_id: str) -> float | None:
        beat = self.survey.heartbeats.get(worker_id)
        beat_time = protocol.parse_heartbeat(beat) if beat else None
        return None if beat_time is None else self.survey.server_now - beat_time

    def death(self, store: Store, worker_id: str) -> Failure | None:
        """Why ``worker_id`` counts as dead, or None while it may live."""
        if worker_id == str(self.me):
            return None
        age = self.heartbeat_age(worker_id)
        if worker_id not in self._registered:  # unregistered (a prune took it for dead)
            if age is not None and age <= self.prune_interval:
                return None  # alive, though unregistered: it registers again
            log.info("Recovering in-flight jobs of unregistered worker %s", worker_id)
            return Failure(
                protocol.DIRTY_EXIT, f"Worker {worker_id} was unregistered while holding a job"
            )
        if age is not None and age > self.prune_interval:
            log.info("Pruning dead worker: %s (heartbeat expired)", worker_id)
            cls = _job_class(store, worker_id)
            return Failure(
                protocol.PRUNE_DIRTY_EXIT,
                f"Worker {worker_id} did not gracefully exit while processing {cls}",
            )
        gone = self._gone_from_this_host(worker_id, writes_heartbeats=age is not None)
        if gone is not None:
            log.info("Pruning dead worker: %s (%s)", worker_id, gone)
            return Failure(protocol.DIRTY_EXIT, "Job still being processed")
        return None

    def _gone_from_this_host(self, worker_id: str, *, writes_heartbeats: bool) -> str | None:
        """What shows a worker of this host dead ("no such process", "not a resque process"), or
        None. Ruby's rule (my queues, and a pid that runs no resque process), for a worker that
        writes Resque's heartbeats or holds our in-flight jobs only: a foreign client's worker
        (node-resque's, which never writes one) runs under a title Ruby's ``ps`` test does not
        know, so its live workers would be pruned and their running jobs failed."""
        parsed = WorkerId.parse(worker_id)
        if parsed is None or parsed.host != self.me.host or parsed.pid == self.me.pid:
            return None
        if not self.selector.includes_all and set(parsed.queues.split(",")) != set(
            self.selector.patterns
        ):
            return None
        if not writes_heartbeats and worker_id not in self.survey.owners:
            return None
        if self._local_pids is None:
            self._local_pids = local_resque_pids()
        if parsed.pid in self._local_pids:
            return None
        return "not a resque process" if psutil.pid_exists(parsed.pid) else "no such process"


def prune_dead_workers(
    store: Store,
    me: WorkerId,
    selector: QueueSelector,
    *,
    now: float,
    lock_ttl: int = 60,
    prune_interval: float = 300.0,
    max_deliveries: int = 3,
    locked: bool = False,
) -> list[str]:
    """Ruby's prune_dead_workers, plus recovery of in-flight jobs. Returns the pruned ids.

    Two passes. Dead workers holding in-flight jobs (ours) are recovered whether or not the prune
    lock is free: putting a job back is a compare-and-move, safe when two recoverers race, and a
    Ruby worker's prune holds the lock for 60 s. Only the rest of the registry (Ruby's workers and
    ours without a job) is pruned under Ruby's lock, as Ruby does. ``locked``: the caller holds
    the lock already.
    """
    survey = _Survey.take(store)
    judge = _Judge(me, selector, survey, prune_interval)
    pruned = []
    for owner in sorted(survey.owners):
        reason = judge.death(store, owner)
        if reason is not None:
            recover_worker(store, owner, now, reason, max_deliveries, fail_busy_record=False)
            pruned.append(owner)
    if not locked and not store.acquire_prune_lock(str(me), lock_ttl):
        return pruned
    for worker_id in survey.registered:
        if worker_id in survey.owners:
            continue  # judged above
        reason = judge.death(store, worker_id)
        if reason is not None:
            recover_worker(store, worker_id, now, reason, max_deliveries)
            pruned.append(worker_id)
    return pruned


PRUNE_RETRY = 5.0  # after a prune Redis refused, sooner than the next heartbeat interval


def prune(
    store: Store,
    me: WorkerId,
    selector: QueueSelector,
    settings: WorkerSettings,
    *,
    now: float,
    lock_first: bool = False,
) -> list[str]:
    """One round of what a pruner does (a worker at its start and then about every heartbeat
    interval, a pool master's janitor every heartbeat interval): Resque's prune, putting back the
    in-flight jobs of the dead, then forgetting redelivery counts gone stale. Logs what it did;
    returns the ids of the workers it pruned.

    ``lock_first``: do nothing unless Resque's prune lock is free, so that a fleet of plain
    workers, each pruning about every heartbeat interval, reads the registry once an interval
    between them, not once a worker."""
    lock_ttl = max(1, int(settings.heartbeat_interval))
    if lock_first and not store.acquire_prune_lock(str(me), lock_ttl):
        return []
    pruned = prune_dead_workers(
        store,
        me,
        selector,
        now=now,
        lock_ttl=lock_ttl,
        prune_interval=settings.prune_interval,
        max_deliveries=settings.max_deliveries,
        locked=lock_first,
    )
    forgotten = store.prune_redeliveries()
    if forgotten:
        log.info("prune: forgot %d stale redelivery counts", forgotten)
    if pruned:
        log.info("prune: recovered dead workers %s", ", ".join(pruned))
    return pruned


class PeriodicPrune:
    """A worker outside a pool prunes dead workers as a pool's master does: as it starts, then
    about every heartbeat interval, so a fleet of plain workers recovers the jobs of a dead host
    without waiting for a worker to (re)start; whichever worker finds Resque's prune lock free does
    it for the fleet. A failed prune never stops the worker. A pool's worker does not
    (``settings.prunes`` is off): its master prunes."""

    def __init__(
        self, store: Store, me: WorkerId, selector: QueueSelector, redis_label: str
    ) -> None:
        self.store, self.me, self.selector = store, me, selector
        self.redis_label = redis_label
        self._next = math.inf  # monotonic

    def run_at_start(self, settings: WorkerSettings, now: float) -> None:
        """The prune of a starting worker (Redis errors are the start-up's to retry)."""
        if settings.prunes:
            prune(self.store, self.me, self.selector, settings, now=now)
            self._schedule(settings, time.monotonic())

    def _schedule(self, settings: WorkerSettings, now: float) -> None:
        """The next prune about a heartbeat interval from ``now`` (up to 10 % later, so that the
        workers of a fleet started together do not all prune at the same instant)."""
        self._next = now + settings.heartbeat_interval * (1 + random.random() / 10)

    def run_if_due(self, settings: WorkerSettings) -> None:
        """Prune if it is time, by the worker's ``settings`` as they are now."""
        if not settings.prunes:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._schedule(settings, now)
        try:
            prune(self.store, self.me, self.selector, settings, now=time.time(), lock_first=True)
        except RETRYABLE_ERRORS as exc:
            log.warning(
                "Worker %s: prune failed, %s unreachable (%s); trying again soon",
                self.me,
                self.redis_label,
                exc,
            )
            self._next = now + min(PRUNE_RETRY, settings.heartbeat_interval)
        except Exception:  # malformed data written by someone else must not stop the worker
            log.exception("Worker %s: prune failed; trying again later", self.me)
