"""Redis clean-up after worker deaths: unregister dead workers and put their jobs back.

The master reports each unclean death at once; what cannot be done while Redis is down is kept and
retried. Now and then it also prunes as any Resque worker does, so jobs of workers that died with a
previous master (or on another host, heartbeat expired) are found too.

Every call has a short timeout and no driver retries: the master must keep reaping and answering
signals while Redis is down. Once a shutdown deadline is set (:meth:`Janitor.finish_by`), each call
takes its timeout from the time left, and nothing is tried after it: what is left undone, the next
pool's prune recovers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from pyresque.pool.clients import PoolClients
from pyresque.settings import WorkerSettings
from pyresque.store.connection import RETRYABLE_ERRORS
from pyresque.store.operations import Store
from pyresque.wire import protocol
from pyresque.wire.protocol import Failure
from pyresque.worker.queues import QueueSelector
from pyresque.worker.recovery import PRUNE_RETRY, WorkerId, prune, recover_worker
from pyresque.worker.runner import timeout_failure

log = logging.getLogger("pyresque.pool")

RETRY_FIRST = 0.5
RETRY_MAX = 30.0
CALL_TIMEOUT = 2.0  # a Redis that accepts but never answers must not hang the master
MIN_CALL_TIME = 0.05  # below this, a call to Redis cannot usefully fit before the deadline


@dataclass(frozen=True)
class _Cleanup:
    """A dead worker to clean up after, and when to try (again)."""

    worker_id: str
    why: str
    count_delivery: bool
    due: float = 0.0  # monotonic, by the janitor's clock
    delay: float = RETRY_FIRST  # before the attempt after this one
    timed_out: float | None = None  # killed for its job's time limit (this one): fail the job

    def later(self, now: float) -> _Cleanup:
        """The next attempt, after a failed one: each waits twice as long, up to RETRY_MAX."""
        return replace(self, due=now + self.delay, delay=min(self.delay * 2, RETRY_MAX))


class Janitor:
    def __init__(
        self,
        clients: PoolClients,
        settings: WorkerSettings,
        clock: Callable[[], float] = time.monotonic,
        stop_pending: Callable[[], bool] = lambda: False,
    ) -> None:
        """``stop_pending``: whether the master has a shutdown signal to handle first; no
        clean-up starts meanwhile (each may wait its whole timeout on a frozen Redis)."""
        self.clients = clients
        self.settings = settings
        self.clock = clock
        self.stop_pending = stop_pending
        self.deadline: float | None = None  # monotonic, by the clock: no Redis I/O after it
        self._store: Store | None = None
        self._pending: list[_Cleanup] = []
        self._next_prune = 0.0

    @property
    def store(self) -> Store:
        """The store for clean-ups outside a shutdown: every call fails after CALL_TIMEOUT."""
        if self._store is None:
            self._store = self.clients.master.bounded(CALL_TIMEOUT)
        return self._store

    def finish_by(self, deadline: float) -> None:
        """From now on, every Redis call ends by ``deadline`` (by the clock), and none starts
        after it."""
        self.deadline = deadline

    def time_left(self) -> float | None:
        """Seconds until the deadline, or None when there is none."""
        return None if self.deadline is None else self.deadline - self.clock()

    @contextlib.contextmanager
    def _session(self) -> Iterator[Store | None]:
        """A store whose calls end within the time left, or None when no call fits any more."""
        left = self.time_left()
        if left is None:
            yield self.store
            return
        if left < MIN_CALL_TIME:
            yield None
            return
        store = self.clients.master.bounded(min(CALL_TIMEOUT, left))
        try:
            yield store
        finally:
            store.close()

    def worker_died(self, worker_id: str, why: str, count_delivery: bool) -> None:
        """Clean up after a worker that died uncleanly; ``count_delivery`` is False when the
        master itself killed it (its job did not cause the death)."""
        self._pending.append(_Cleanup(worker_id, why, count_delivery))
        self.retry_pending()

    def job_timed_out(self, worker_id: str, limit: float) -> None:
        """Clean up after a worker the master killed because its job outlived its time limit and
        the grace: the job fails as a timeout (as the worker would have failed it), not put back
        to hold the next worker's slot the same way."""
        self._pending.append(_Cleanup(worker_id, "job past its time limit", False, timed_out=limit))
        self.retry_pending()

    def retry_pending(self) -> None:
        """Clean up what is due; what fails waits longer each time (Redis may stay down a while,
        and the master must keep reaping and answering signals meanwhile)."""
        pending, self._pending = self._pending, []
        for cleanup in pending:
            if cleanup.due > self.clock() or self.stop_pending() or not self._try_recover(cleanup):
                self._pending.append(cleanup)

    def _try_recover(self, cleanup: _Cleanup) -> bool:
        """One attempt; False when no call fits before the deadline (kept as it is)."""
        with self._session() as store:
            if store is None:
                return False
            try:
                self._recover(store, cleanup)
            except RETRYABLE_ERRORS as exc:
                log.error(
                    "Redis unreachable or refusing (%s); cleaning up %s in %.1fs",
                    exc,
                    cleanup.worker_id,
                    cleanup.delay,
                )
                self._pending.append(cleanup.later(self.clock()))
            except Exception:  # malformed data must not take the master down
                log.exception(
                    "cleaning up dead worker %s failed; giving up on it", cleanup.worker_id
                )
        return True

    def _recover(self, store: Store, cleanup: _Cleanup) -> None:
        worker_id = cleanup.worker_id
        reason = Failure(protocol.DIRTY_EXIT, f"Worker {worker_id} died: {cleanup.why}")
        deliveries, count = self.settings.max_deliveries, cleanup.count_delivery
        if cleanup.timed_out is not None:  # one counted delivery out of one: failed at once
            timeout = timeout_failure(cleanup.timed_out)
            error = f"{timeout.error}; its worker did not stop it, so the pool master killed it"
            reason, deliveries, count = Failure(timeout.exception, error), 1, True
        outcomes = recover_worker(
            store, worker_id, time.time(), reason, deliveries, count_delivery=count
        )
        if outcomes:
            log.info("cleaned up dead worker %s: job %s", worker_id, ", ".join(outcomes))

    def left_undone(self) -> list[str]:
        """Dead workers not cleaned up yet (the next prune, by any pool or worker, recovers them)."""
        return [cleanup.worker_id for cleanup in self._pending]

    def prune(self, now: float) -> None:
        """Every heartbeat interval: Resque's prune, under its lock, as if by a '*' worker."""
        if now < self._next_prune:
            return
        self._next_prune = now + self.settings.heartbeat_interval
        identity = WorkerId(socket.gethostname(), os.getpid(), "*")
        with self._session() as store:
            if store is None:
                return
            try:
                prune(store, identity, QueueSelector.parse("*"), self.settings, now=time.time())
            except RETRYABLE_ERRORS as exc:
                log.warning("prune: Redis unreachable or refusing (%s); trying again soon", exc)
                self._next_prune = now + min(PRUNE_RETRY, self.settings.heartbeat_interval)
            except Exception:  # malformed data written by someone else must not stop the master
                log.exception("prune failed; trying again later")

    def busy_records(self, worker_ids: list[str]) -> dict[str, str]:
        """worker id -> its busy record, for the INFO log (empty if Redis is unreachable)."""
        with self._session() as store:
            if store is None:
                return {}
            try:
                records = [store.busy_record(i) for i in worker_ids]
            except RETRYABLE_ERRORS:
                return {}
        return {w: r for w, r in zip(worker_ids, records, strict=True) if r}
