"""What a reservation is, and the typed requests of the job scripts.

A :class:`Reservation` is a job moved into a worker's in-flight hash; an :class:`Ack` says how it
ended. :class:`CycleRequest` and :class:`RequeueRequest` are the one place where a call's fields
meet its script's ``KEYS`` and ``ARGV`` order (documented in :mod:`pyresque.scripts`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.typing import EncodableT

from pyresque import protocol, scriptcall
from pyresque.jobmetrics import JobMetric
from pyresque.keys import Keys


def as_text(value: Any) -> str:
    """Text from Redis; bytes that are not UTF-8 survive as surrogates, so that :func:`_b` gives
    the exact bytes back (a payload must match its in-flight copy byte for byte)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Reservation:
    """A job moved into a worker's in-flight hash: its queue, raw payload and past deliveries."""

    queue: str
    payload: str
    deliveries: int
    token: str = ""  # which reservation this is, for acknowledging it exactly once

    @property
    def sha(self) -> str:
        return hashlib.sha1(as_bytes(self.payload)).hexdigest()


@dataclass(frozen=True)
class Ack:
    """How a reserved job ended, for :meth:`Store.cycle` to record."""

    reservation: Reservation
    failure_record: str = ""
    count_failed: bool = True
    metric: JobMetric | None = None  # recorded in the same call
    forget: str = ""  # a key deleted in the same call (a succeeded job's retry counter)


PAUSED = "paused"
HELD = "held"  # the worker's in-flight hash holds a reservation it never heard back about
REDELIVERY_MEMORY = 24 * 3600.0  # a redelivery count not raised for this long is forgotten


@dataclass(frozen=True)
class CycleRequest:
    """One CYCLE call: acknowledge ``ack`` (if any), then reserve from ``queues`` (None: don't),
    looking first in the worker's landing list unless ``landing`` is False.

    The one place where the call's fields meet the script's ``KEYS`` and ``ARGV`` order
    (:data:`pyresque.scripts.CYCLE` documents it).
    """

    worker_id: str
    run_at: str
    ack: Ack | None = None
    queues: Sequence[str] | None = None
    token: str = ""
    landing: bool = True

    def keys(self, k: Keys) -> list[str]:
        metric = self.ack.metric if self.ack is not None else None
        minute = metric.minute if metric is not None else 0
        fixed, queue_keys = _worker_keys(k, self.worker_id, tuple(self.queues or ()))
        forget = self.ack.forget if self.ack is not None and self.ack.forget else fixed[0]
        return [*fixed, k.metrics_jobs(minute), forget, *queue_keys]

    def argv(self) -> list[EncodableT]:
        queue_argv = _queue_argv(tuple(self.queues or ()))
        return [self.worker_id, self.run_at, *self._varying_argv(), *queue_argv]

    def _varying_argv(self) -> list[str | int]:
        """ARGV 3-14: what changes from one call to the next."""
        ack = self.ack
        if ack is None:
            return [
                "",
                "",
                "",
                "0",
                _reserve_from(self.queues, self.landing),
                "",
                self.token,
                "",
                0,
                0,
                0,
                "0",
            ]
        res = ack.reservation
        metric = ack.metric
        return [
            res.queue,
            res.sha if res.deliveries else "",
            ack.failure_record,
            "1" if ack.count_failed else "0",
            _reserve_from(self.queues, self.landing),
            res.token,
            self.token,
            *(
                (metric.class_name, metric.ms, metric.bucket, metric.expire)
                if metric
                else ("", 0, 0, 0)
            ),
            "1" if ack.forget else "0",
        ]

    def packed(self, k: Keys) -> tuple[int, int, bytes]:
        """(number of keys, number of arguments, their RESP): the same keys and arguments as
        :meth:`keys` and :meth:`argv`; see :func:`pack_cycle`."""
        return pack_cycle(
            k,
            self.worker_id,
            self.run_at,
            ack=self.ack,
            queues=self.queues,
            token=self.token,
            landing=self.landing,
        )


def _reserve_from(queues: Sequence[str] | None, landing: bool) -> str:
    """CYCLE's ARGV 7: '0' reserve nothing, '1' the landing list then the queues, '2' the queues."""
    if queues is None:
        return "0"
    return "1" if landing else "2"


def pack_cycle(
    k: Keys,
    worker_id: str,
    run_at: str,
    *,
    ack: Ack | None,
    queues: Sequence[str] | None,
    token: str,
    landing: bool = True,
) -> tuple[int, int, bytes]:
    """:meth:`CycleRequest.packed` without building the request: the worker's fixed keys and
    arguments come packed from a cache, the recurring values (queue, class, flags) from
    :func:`pyresque.scriptcall.bulks_repeated`; only the tokens are packed afresh."""
    fixed = _packed_fixed(k, worker_id, tuple(queues or ()))
    reserve = _reserve_from(queues, landing)
    head: tuple[str, ...]
    tail: tuple[str | int, ...]
    if ack is None:
        head, tail, forget = ("", "", "", "0", reserve), ("", 0, 0, 0, "0"), ""
        acked_token, minute = b"$0\r\n\r\n", 0
    else:
        res, metric, forget = ack.reservation, ack.metric, ack.forget
        sha = res.sha if res.deliveries else ""
        head = (res.queue, sha, ack.failure_record, "1" if ack.count_failed else "0", reserve)
        acked_token = scriptcall.bulk(res.token)
        if metric is None:
            tail, minute = ("", 0, 0, 0, "1" if forget else "0"), 0
        else:
            tail = (
                metric.class_name,
                metric.ms,
                metric.bucket,
                metric.expire,
                "1" if forget else "0",
            )
            minute = metric.minute
    body = b"".join(
        (
            fixed.keys,
            _packed_metrics_key(k, minute),
            scriptcall.bulk(forget) if forget else fixed.inflight,
            fixed.queue_keys,
            fixed.worker_id,
            _packed_run_at(run_at),
            scriptcall.bulks_repeated(head),
            acked_token,
            scriptcall.bulk(token),
            scriptcall.bulks_repeated(tail),
            fixed.queue_argv,
        )
    )
    return fixed.numkeys, fixed.numargs, body


@dataclass(frozen=True)
class _PackedFixed:
    """A worker's CYCLE keys and arguments that never change, as RESP."""

    inflight: bytes  # KEYS 1, packed again as KEYS 13 when no key is to be deleted
    keys: bytes  # KEYS 1-11
    queue_keys: bytes  # KEYS 14..
    worker_id: bytes  # ARGV 1
    queue_argv: bytes  # ARGV 15..
    numkeys: int
    numargs: int


@functools.lru_cache(maxsize=64)
def _packed_fixed(k: Keys, wid: str, queues: tuple[str, ...]) -> _PackedFixed:
    fixed, queue_keys = _worker_keys(k, wid, queues)
    queue_argv = _queue_argv(queues)
    return _PackedFixed(
        inflight=scriptcall.bulk(fixed[0]),
        keys=scriptcall.bulks(fixed),
        queue_keys=scriptcall.bulks(queue_keys),
        worker_id=scriptcall.bulk(wid),
        queue_argv=scriptcall.bulks(queue_argv),
        numkeys=len(fixed) + 2 + len(queue_keys),
        numargs=14 + len(queue_argv),
    )


@functools.lru_cache(maxsize=4)
def _packed_metrics_key(k: Keys, minute: int) -> bytes:
    return scriptcall.bulk(k.metrics_jobs(minute))  # changes once a minute


@functools.lru_cache(maxsize=4)
def _packed_run_at(run_at: str) -> bytes:
    return scriptcall.bulk(run_at)  # changes once a second


@functools.lru_cache(maxsize=64)
def _worker_keys(k: Keys, wid: str, queues: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """A worker's fixed CYCLE keys and its queue keys (the same for every call of a worker with
    a fixed queue list, so built once)."""
    return (
        [
            k.inflight(wid),
            k.worker(wid),
            k.redeliveries,
            k.failed,
            k.failed_count,
            k.worker_failed_count(wid),
            k.processed,
            k.worker_processed(wid),
            k.landing(wid),
            k.pause_all,
            k.inflight_workers,
        ],
        [k.queue(q) for q in queues],
    )


@functools.lru_cache(maxsize=64)
def _queue_argv(queues: tuple[str, ...]) -> list[str]:
    """Each queue's name and its name as JSON (for the busy record)."""
    return [part for q in queues for part in (q, protocol.dumps(q))]


@dataclass(frozen=True)
class RequeueRequest:
    """One REQUEUE call: put ``payload`` back from a worker's in-flight hash (compare-and-move)."""

    worker_id: str
    queue: str
    payload: str
    count_delivery: bool
    max_deliveries: int = 3
    failure_record: str = ""
    now: float = 0.0

    def keys(self, k: Keys) -> list[str]:
        wid = self.worker_id
        return [
            k.inflight(wid),
            k.worker(wid),
            k.redeliveries,
            k.failed,
            k.processed,
            k.queues,
            k.queue(self.queue),
        ]

    def argv(self) -> list[EncodableT]:
        return [
            self.queue,
            as_bytes(self.payload),
            "1" if self.count_delivery else "0",
            self.max_deliveries,
            self.failure_record,
            int(self.now),
        ]


@dataclass(frozen=True)
class RetryRequest:
    """One RETRY call: acknowledge a failed job by delaying its retry, or fail it for good."""

    worker_id: str
    reservation: Reservation
    counter: str  # the attempt counter's key
    seen: str  # the count read from it ('' when it did not exist)
    retry: bool
    item: str  # the delayed item
    timestamp: int
    failure_record: str
    wakeup_channel: str = ""  # the scheduler's, told the new timestamp
    counter_ttl: int = 86400

    def keys(self, k: Keys) -> list[str]:
        wid = self.worker_id
        return [
            k.inflight(wid),
            k.worker(wid),
            k.processed,
            k.worker_processed(wid),
            k.failed_count,
            k.worker_failed_count(wid),
            self.counter,
            k.failed,
            k.delayed(self.timestamp),
            k.timestamps(self.item),
            k.delayed_schedule,
        ]

    def argv(self) -> list[EncodableT]:
        return [
            self.reservation.queue,
            self.reservation.token,
            self.seen,
            "1" if self.retry else "0",
            self.item,
            self.timestamp,
            self.wakeup_channel,
            self.counter_ttl,
            self.failure_record,
        ]
