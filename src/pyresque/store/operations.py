"""Typed Redis operations on Resque's schema; nothing above this module calls redis-py directly.

Each method is one round trip (a pipeline or a script) unless its docstring says otherwise: the
worker's hot path is :meth:`Store.cycle`, one script call per job.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace

import redis

from pyresque.errors import NoSuchFailure
from pyresque.store.blocking import LandingMove, WakeupSubscription
from pyresque.store.cycle import (
    HELD,
    PAUSED,
    REDELIVERY_MEMORY,
    Ack,
    CyclePacker,
    CycleRequest,
    RequeueRequest,
    Reservation,
    RetryRequest,
    as_bytes,
    as_text,
    cycle_packer,
    read_reply,
    reserve_from,
)
from pyresque.store.dashboard import DashboardStore
from pyresque.store.scriptcall import ScriptCall
from pyresque.wire import protocol, scripts
from pyresque.wire.jobmetrics import METRICS_TTL, MinuteFigures
from pyresque.wire.keys import Keys

__all__ = ["HELD", "PAUSED", "Ack", "Reservation", "Store", "read_reply"]

_REHEARSAL_PAYLOAD = '{"class":"Rehearsal","args":[]}'


class Store:
    """Resque's Redis layout under one namespace.

    The dashboard's reads and writes (pages, samples, published pool states) are
    :attr:`dashboard`, a part of the store that the worker never calls.
    """

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self.redis = client
        self.keys = keys or Keys()
        self._cycle = ScriptCall(client, scripts.CYCLE)  # the hot path: see store.scriptcall
        self._last_packer: tuple[str, Sequence[str] | None, CyclePacker] | None = None
        self._requeue = ScriptCall(client, scripts.REQUEUE)  # runs when full
        self._remove_failure = client.register_script(scripts.REMOVE_FAILURE)
        self._return_landed = ScriptCall(client, scripts.RETURN_LANDED)  # runs when full
        self._retry_failure = client.register_script(scripts.RETRY_FAILURE)
        self._push = client.register_script(scripts.PUSH)
        self._push_many = client.register_script(scripts.PUSH_MANY)
        self._retry = ScriptCall(client, scripts.RETRY)  # runs when full
        self._prune_redeliveries = client.register_script(scripts.PRUNE_REDELIVERIES)
        self._forget_token = ScriptCall(client, scripts.FORGET_TOKEN)  # runs when full
        self._forget_owner = ScriptCall(client, scripts.FORGET_OWNER)  # runs when full
        self._heartbeat = ScriptCall(client, scripts.HEARTBEAT)  # runs when full
        self.dashboard = DashboardStore(client, self.keys)

    # --- queues --------------------------------------------------------------------------------

    def push(self, queue: str, payload: str) -> None:
        """Enqueue as Resque does (SADD queues, RPUSH), then wake idle pyresque workers."""
        self._push(
            keys=[self.keys.queues, self.keys.queue(queue)], args=[queue, payload, self.keys.wakeup]
        )

    def push_many(self, jobs: Sequence[tuple[str, str]], chunk: int = 1000) -> int:
        """Enqueue many (queue, payload) pairs with the bytes of :meth:`push`, one script call per
        ``chunk`` jobs (one round trip for a batch of up to ``chunk``)."""
        pushed = 0
        for start in range(0, len(jobs), chunk):
            part = jobs[start : start + chunk]
            keys = [self.keys.queues, *(self.keys.queue(q) for q, _ in part)]
            args = [self.keys.wakeup, *(x for pair in part for x in pair)]
            pushed += int(self._push_many(keys=keys, args=args))
        return pushed

    def queue_names(self) -> list[str]:
        return sorted(as_text(q) for q in self.redis.smembers(self.keys.queues))

    def queue_size(self, queue: str) -> int:
        return int(self.redis.llen(self.keys.queue(queue)))

    def queue_sizes(self, queues: Sequence[str]) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for q in queues:
            pipe.llen(self.keys.queue(q))
        return {q: int(n) for q, n in zip(queues, pipe.execute(), strict=True)}

    def all_payloads(self, queue: str) -> list[str]:
        return [as_text(p) for p in self.redis.lrange(self.keys.queue(queue), 0, -1)]

    def remove_payloads(self, queue: str, payloads: Iterable[str]) -> int:
        """LREM every copy of each payload (Resque's dequeue); returns how many were removed."""
        pipe = self.redis.pipeline(transaction=False)
        for payload in payloads:
            pipe.lrem(self.keys.queue(queue), 0, payload)
        return sum(int(n) for n in pipe.execute())

    def remove_queue(self, queue: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.srem(self.keys.queues, queue)
        pipe.delete(self.keys.queue(queue))
        pipe.execute()

    def wakeup_subscription(self) -> WakeupSubscription:
        """A subscription on the wake-up channel: enqueuers publish the queue name on each push."""
        return WakeupSubscription(self.redis, self.keys.wakeup)

    def landing_move(self, worker_id: str, queue: str) -> LandingMove:
        """The blocking move of an idle single-queue worker into its landing list."""
        return LandingMove(self.redis, self.keys, worker_id, queue)

    # --- the job cycle -------------------------------------------------------------------------

    def cycle(
        self,
        worker_id: str,
        now: float,
        *,
        ack: Ack | None = None,
        queues: Sequence[str] | None = None,
        token: str = "",
        landing: bool = True,
    ) -> Reservation | str | None:
        """Acknowledge ``ack`` and reserve the first job of ``queues`` in priority order.

        The worker's landing list is looked at first unless ``landing`` is False: a worker that
        knows nothing can have landed there since it last looked saves the server that command.
        Returns a Reservation, :data:`PAUSED`, :data:`HELD`, or None when every queue is empty (or
        ``queues`` is None: acknowledge only).
        """
        run_at = protocol.run_at_time(now)
        if self._cycle.fast:
            packer = self._packer(worker_id, queues)
            reserve = "0" if queues is None else "1" if landing else "2"  # see reserve_from
            reply = self._cycle.call_packed(*packer.pack(run_at, ack, reserve, token))
        else:
            request = CycleRequest(worker_id, run_at, ack, queues, token, landing)
            reply = self._cycle(request.keys(self.keys), request.argv(self.keys))
        return read_reply(reply, token)

    def _packer(self, worker_id: str, queues: Sequence[str] | None) -> CyclePacker:
        """The packer of a worker's calls: the last one used when the worker and its queue list
        (the same list object: a worker keeps its own) are the same, else made or found."""
        last = self._last_packer
        if last is not None and last[1] is queues and last[0] == worker_id:
            return last[2]
        packer = cycle_packer(self.keys, worker_id, tuple(queues or ()))
        self._last_packer = (worker_id, queues, packer)
        return packer

    def record_metrics(self, figures: Sequence[MinuteFigures]) -> None:
        """Add a worker's per-job figures to their minutes' hashes, giving each hash its expiry
        (one pipeline; a worker writes about once a second, see :mod:`pyresque.wire.jobmetrics`)."""
        if not figures:
            return
        pipe = self.redis.pipeline(transaction=False)
        for minute_figures in figures:
            key = self.keys.metrics_jobs(minute_figures.minute)
            for field, amount in minute_figures.increments.items():
                pipe.hincrby(key, field, amount)
            pipe.expire(key, METRICS_TTL)
        pipe.execute()

    def cycle_ahead(self, worker_id: str, queues: Sequence[str], token: str) -> bytes | None:
        """A reserving ``CYCLE`` call (no acknowledgement), as RESP, to send behind a blocking
        move: the server runs it the moment the move returns, and its reply comes with the
        move's, so an idle worker's pickup takes one round trip, not two. The busy record's
        ``run_at`` is the server's clock then. None on the generic path (cluster, durable)."""
        if not self._cycle.fast:
            return None
        packed = self._packer(worker_id, queues).pack("", None, reserve_from(queues, True), token)
        return self._cycle.command(*packed)

    def rehearse_cycle(self, worker_id: str, queues: Sequence[str]) -> None:
        """Walk the path of the next :meth:`cycle` without changing anything: pack a call like
        it (not sent) and ``PING`` on the connection it will use. A worker with a warm child does
        this while a job runs, right after a fork, so that the pages the call writes are copied
        (copy-on-write) then rather than between two jobs. A no-op on the generic path."""
        if not self._cycle.fast:
            return
        ack = Ack(Reservation(queues[0] if queues else "", _REHEARSAL_PAYLOAD, 0, "rehearsal"))
        run_at = protocol.run_at_time(time.time())
        reserve = reserve_from(queues, False)
        self._packer(worker_id, queues).pack(run_at, ack, reserve, "rehearsal")
        self._cycle.ping()

    def requeue(
        self,
        worker_id: str,
        queue: str,
        payload: str,
        *,
        count_delivery: bool,
        max_deliveries: int = 3,
        failure_record: str = "",
    ) -> str:
        """Put an in-flight job back at the front of its queue: 'requeued', 'failed' or 'gone'."""
        request = RequeueRequest(
            worker_id,
            queue,
            payload,
            count_delivery,
            max_deliveries,
            failure_record,
            self.server_time() if count_delivery else 0.0,
        )
        return as_text(self._requeue(keys=request.keys(self.keys), args=request.argv()))

    def retry_attempts(self, counter: str) -> str:
        """What a job's attempt counter holds ('' when it has none)."""
        value = self.redis.get(counter)
        return "" if value is None else as_text(value)

    def retry_later(self, request: RetryRequest) -> str:
        """Delay a failed job's retry or fail it, acknowledging it in the same call: 'retried',
        'failed', 'stale' (no longer our reservation) or 'changed' (read the counter again)."""
        request = replace(request, wakeup_channel=self.keys.scheduler_wakeup)
        return as_text(self._retry(keys=request.keys(self.keys), args=request.argv()))

    def prune_redeliveries(self, max_age: float = REDELIVERY_MEMORY) -> int:
        """Forget redelivery counts not raised for ``max_age`` seconds (a job finished elsewhere,
        or one that never reached the limit); returns how many were forgotten."""
        now = self.server_time()
        return int(
            self._prune_redeliveries(
                keys=[self.keys.redeliveries], args=[int(now), int(now - max_age)]
            )
        )

    def return_landed(self, worker_id: str, queue: str) -> int:
        """Put what a worker's landing list holds back at the front of ``queue``."""
        return int(self._return_landed(keys=[self.keys.landing(worker_id), self.keys.queue(queue)]))

    def landed(self, worker_id: str) -> list[str]:
        """What a worker's landing list holds: a job its blocking move took that it has not
        reserved yet (normally for microseconds; for as long as the worker is stalled)."""
        return [as_text(p) for p in self.redis.lrange(self.keys.landing(worker_id), 0, -1)]

    def mark_inflight_owner(self, worker_id: str) -> None:
        """List a worker among those that may hold a job (before its first blocking move)."""
        self.redis.sadd(self.keys.inflight_workers, worker_id)

    def inflight(self, worker_id: str) -> dict[str, str]:
        """The jobs a worker holds, queue -> raw payload."""
        return self.held(worker_id)[1]

    def held(self, worker_id: str) -> tuple[str | None, dict[str, str]]:
        """The token of a worker's current reservation, and its jobs (queue -> raw payload)."""
        raw = {
            as_text(k): as_text(v)
            for k, v in self.redis.hgetall(self.keys.inflight(worker_id)).items()
        }
        token = raw.pop("", None)
        return token, raw

    def forget_token(self, worker_id: str, token: str) -> bool:
        """Drop a reservation token a worker's in-flight hash holds with no job beside it, while
        it is still that one and alone (a job reserved meanwhile keeps its token)."""
        key = self.keys.inflight(worker_id)
        return bool(self._forget_token(keys=[key], args=[token]))

    def inflight_owners(self) -> set[str]:
        return {as_text(w) for w in self.redis.smembers(self.keys.inflight_workers)}

    def forget_inflight_owner(self, worker_id: str) -> None:
        """Drop a worker from the in-flight index once its hash and landing list are empty.

        Called for a worker that unregistered itself or that was found dead. The check and the
        removal are one script: a worker that holds a reservation token is never dropped, since
        its calls that acknowledge by token do not list it again.
        """
        self._forget_owner(
            keys=[
                self.keys.inflight_workers,
                self.keys.inflight(worker_id),
                self.keys.landing(worker_id),
            ],
            args=[worker_id],
        )

    # --- workers -------------------------------------------------------------------------------

    def register_worker(self, worker_id: str, now: float) -> None:
        """SADD workers, SET started and a first heartbeat, as a Ruby worker's start does."""
        server_now = self.server_time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(self.keys.workers, worker_id)
        pipe.set(self.keys.worker_started(worker_id), protocol.started_time(now))
        pipe.hset(self.keys.heartbeats, worker_id, protocol.heartbeat_time(server_now))
        pipe.execute()

    def heartbeat(self, worker_ids: Iterable[str]) -> None:
        """Stamp heartbeats with the Redis server's clock (as Ruby does), for many workers at once.

        The workers are added to ``workers`` again too (a no-op when they are there): a live worker
        that a prune took for dead (it stalled past the prune interval) registers itself again.
        """
        ids = list(worker_ids)
        if not ids:
            return
        stamp = protocol.heartbeat_time(self.server_time())
        self._heartbeat(keys=[self.keys.heartbeats, self.keys.workers], args=[stamp, *ids])

    def unregister_worker(self, worker_id: str) -> None:
        """Remove every trace of a worker, as Ruby's unregister_worker does (stats included).

        Not a MULTI: under ``maxmemory`` Redis refuses every command queued in a transaction,
        while these deletions on their own are allowed (they free memory)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(self.keys.workers, worker_id)
        pipe.delete(self.keys.worker(worker_id))
        pipe.delete(self.keys.worker_started(worker_id))
        pipe.hdel(self.keys.heartbeats, worker_id)
        pipe.delete(self.keys.worker_processed(worker_id))
        pipe.delete(self.keys.worker_failed_count(worker_id))
        pipe.execute()

    def is_registered(self, worker_id: str) -> bool:
        return bool(self.redis.sismember(self.keys.workers, worker_id))

    def worker_ids(self) -> list[str]:
        return sorted(as_text(w) for w in self.redis.smembers(self.keys.workers))

    def busy_record(self, worker_id: str) -> str | None:
        value = self.redis.get(self.keys.worker(worker_id))
        return None if value is None else as_text(value)

    def heartbeats(self) -> dict[str, str]:
        return {as_text(k): as_text(v) for k, v in self.redis.hgetall(self.keys.heartbeats).items()}

    def acquire_prune_lock(self, worker_id: str, ttl: int) -> bool:
        return bool(self.redis.set(self.keys.prune_lock, worker_id, nx=True, ex=ttl))

    def server_time(self) -> float:
        seconds, micros = self.redis.time()
        return float(seconds) + float(micros) / 1e6

    def push_failure(self, record: str) -> None:
        """Record a failure that belongs to no running job (a pruned Ruby worker's job)."""
        self.redis.rpush(self.keys.failed, record)  # Ruby's Job#fail counts no stats here

    # --- pause and stats -----------------------------------------------------------------------

    def paused_all(self) -> bool:
        value = self.redis.get(self.keys.pause_all)
        return value is not None and as_text(value).strip().lower() == "true"

    def set_paused_all(self, paused: bool) -> None:
        if paused:
            self.redis.set(self.keys.pause_all, "true")
        else:
            self.redis.delete(self.keys.pause_all)

    def stats(self) -> tuple[int, int]:
        """(processed, failed) totals."""
        processed, failed = self.redis.mget(self.keys.processed, self.keys.failed_count)
        return int(processed or 0), int(failed or 0)

    # --- failures ------------------------------------------------------------------------------

    def failure_count(self) -> int:
        return int(self.redis.llen(self.keys.failed))

    def failures(self, start: int = 0, count: int = -1) -> list[str]:
        end = -1 if count < 0 else start + count - 1
        return [as_text(r) for r in self.redis.lrange(self.keys.failed, start, end)]

    def retry_failure(self, index: int, now: float) -> str:
        """Mark record ``index`` retried and push its payload back to its queue, atomically;
        returns the queue. A record changed meanwhile (removed, retried) is read again."""
        for _ in range(10):
            raw = self.redis.lindex(self.keys.failed, index)
            if raw is None:
                raise NoSuchFailure(f"no failure record at index {index}")
            record = protocol.mark_retried(raw, now)
            data = protocol.decode_failure(record)
            payload = data["payload"]
            queue = str(data["queue"])
            text = payload if isinstance(payload, str) else protocol.dumps(payload)
            done = self._retry_failure(
                keys=[self.keys.failed, self.keys.queues, self.keys.queue(queue)],
                args=[index, raw, record, as_bytes(text), queue, self.keys.wakeup],
            )
            if done:
                return queue
        raise NoSuchFailure(f"failure record {index} keeps changing; try again")

    def remove_failure(self, index: int) -> bool:
        marker = f"__pyresque_delete__{uuid.uuid4().hex}"
        return bool(self._remove_failure(keys=[self.keys.failed], args=[index, marker]))

    def clear_failures(self) -> int:
        return int(self.redis.delete(self.keys.failed))

    # --- pool: bounded stores (pool master) ------------------------------------------------------

    def bounded(self, timeout: float) -> Store:
        """A store on new connections to the same server whose every call fails after about
        ``timeout`` seconds, with no retries: for the master's clean-ups, which have their own
        backoff, and whose shutdown must end by an absolute deadline (redis-py otherwise retries
        a timed-out command several times)."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        pool = self.redis.connection_pool
        kwargs = {
            **pool.connection_kwargs,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        client = redis.Redis(
            connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        )
        return Store(client, self.keys)

    def close(self) -> None:
        """Close this store's connections (a bounded store made for one clean-up)."""
        self._cycle.close()
        self.redis.close()
        self.redis.connection_pool.disconnect()
