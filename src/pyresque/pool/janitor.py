"""Redis clean-up after worker deaths: unregister dead workers and put their jobs back.

The master reports each unclean death at once; what cannot be done while Redis is down is kept and
retried. Now and then it also prunes as any Resque worker does, so jobs of workers that died with a
previous master (or on another host, heartbeat expired) are found too.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from pyresque import protocol
from pyresque.connection import RETRYABLE_ERRORS, connect
from pyresque.keys import Keys
from pyresque.protocol import Failure
from pyresque.queues import QueueSelector
from pyresque.recovery import WorkerId, prune_dead_workers, recover_worker
from pyresque.settings import WorkerSettings
from pyresque.store import Store

log = logging.getLogger("pyresque.pool")

RETRY_FIRST = 0.5
RETRY_MAX = 30.0


class Janitor:
    def __init__(self, redis_url: str, namespace: str, settings: WorkerSettings) -> None:
        self.redis_url = redis_url
        self.namespace = namespace
        self.settings = settings
        self._store: Store | None = None
        # worker id, why it died, count a delivery, next attempt (monotonic), delay before the next
        self._pending: list[tuple[str, str, bool, float, float]] = []
        self._next_prune = 0.0

    @property
    def store(self) -> Store:
        if self._store is None:
            # a short timeout: the master must not hang on a Redis that accepts but never answers
            self._store = Store(connect(self.redis_url, socket_timeout=2.0), Keys(self.namespace))
        return self._store

    def worker_died(self, worker_id: str, why: str, count_delivery: bool) -> None:
        """Clean up after a worker that died uncleanly; ``count_delivery`` is False when the
        master itself killed it (its job did not cause the death)."""
        self._pending.append((worker_id, why, count_delivery, 0.0, RETRY_FIRST))
        self.retry_pending()

    def retry_pending(self) -> None:
        """Clean up what is due; what fails waits longer each time (Redis may stay down a while,
        and the master must keep reaping and answering signals meanwhile)."""
        pending, self._pending = self._pending, []
        now = time.monotonic()
        for worker_id, why, count, due, delay in pending:
            if due > now:
                self._pending.append((worker_id, why, count, due, delay))
                continue
            try:
                outcomes = recover_worker(
                    self.store,
                    worker_id,
                    time.time(),
                    Failure(protocol.DIRTY_EXIT, f"Worker {worker_id} died: {why}"),
                    self.settings.max_deliveries,
                    count_delivery=count,
                )
                if outcomes:
                    log.info("cleaned up dead worker %s: job %s", worker_id, ", ".join(outcomes))
            except RETRYABLE_ERRORS as exc:
                log.error(
                    "Redis unreachable or refusing (%s); cleaning up %s in %.1fs",
                    exc,
                    worker_id,
                    delay,
                )
                self._pending.append(
                    (worker_id, why, count, time.monotonic() + delay, min(delay * 2, RETRY_MAX))
                )
            except Exception:  # malformed data must not take the master down
                log.exception("cleaning up dead worker %s failed; giving up on it", worker_id)

    def prune(self, now: float) -> None:
        """Every heartbeat interval: Resque's prune, under its lock, as if by a '*' worker."""
        if now < self._next_prune:
            return
        self._next_prune = now + self.settings.heartbeat_interval
        identity = WorkerId(socket.gethostname(), os.getpid(), "*")
        try:
            pruned = prune_dead_workers(
                self.store,
                identity,
                QueueSelector.parse("*"),
                now=time.time(),
                lock_ttl=max(1, int(self.settings.heartbeat_interval)),
                prune_interval=self.settings.prune_interval,
                max_deliveries=self.settings.max_deliveries,
            )
        except RETRYABLE_ERRORS as exc:
            log.warning("prune: Redis unreachable or refusing (%s); trying again later", exc)
            return
        except Exception:  # malformed data written by someone else must not stop the master
            log.exception("prune failed; trying again later")
            return
        if pruned:
            log.info("prune: recovered dead workers %s", ", ".join(pruned))

    def busy_records(self, worker_ids: list[str]) -> dict[str, str]:
        """worker id -> its busy record, for the INFO log (empty if Redis is unreachable)."""
        try:
            records = [self.store.busy_record(i) for i in worker_ids]
        except RETRYABLE_ERRORS:
            return {}
        return {w: r for w, r in zip(worker_ids, records, strict=True) if r}
