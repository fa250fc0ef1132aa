"""What a reservation is, and the typed requests of the job scripts.

A :class:`Reservation` is a job moved into a worker's in-flight hash; an :class:`Ack` says how it
ended. :class:`CycleRequest` and :class:`RequeueRequest` are the one place where a call's fields
meet its script's ``KEYS`` and ``ARGV`` order (documented in :mod:`pyresque.wire.scripts`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.typing import EncodableT

from pyresque.store import scriptcall
from pyresque.wire import protocol
from pyresque.wire.keys import Keys


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
    forget: str = ""  # a key deleted in the same call (a succeeded job's retry counter)

    @property
    def extras(self) -> str:
        """CYCLE's ARGV 8: what the call carries beyond a plain success."""
        failure = ("f" if self.count_failed else "u") if self.failure_record else ""
        return failure + ("d" if self.forget else "")


PAUSED = "paused"
HELD = "held"  # the worker's in-flight hash holds a reservation it never heard back about
REDELIVERY_MEMORY = 24 * 3600.0  # a redelivery count not raised for this long is forgotten


@dataclass(frozen=True)
class CycleRequest:
    """One CYCLE call: acknowledge ``ack`` (if any), then reserve from ``queues`` (None: don't),
    looking first in the worker's landing list unless ``landing`` is False.

    The one place where the call's fields meet the script's ``KEYS`` and ``ARGV`` order
    (:data:`pyresque.wire.scripts.CYCLE` documents it).
    """

    worker_id: str
    run_at: str
    ack: Ack | None = None
    queues: Sequence[str] | None = None
    token: str = ""
    landing: bool = True

    def keys(self, k: Keys) -> list[str]:
        fixed, queue_keys = _worker_keys(k, self.worker_id, tuple(self.queues or ()))
        out = [*fixed, *queue_keys]
        ack = self.ack
        if ack is not None:
            if ack.failure_record:
                out += _failure_keys(k, self.worker_id)
            if ack.forget:
                out.append(ack.forget)
        return out

    def argv(self) -> list[EncodableT]:
        queue_argv = _queue_argv(tuple(self.queues or ()))
        reserve = _reserve_from(self.queues, self.landing)
        ack = self.ack
        if ack is None:
            return [self.worker_id, self.run_at, "", "", reserve, "", self.token, "", *queue_argv]
        res = ack.reservation
        record = [ack.failure_record] if ack.failure_record else []
        return [
            self.worker_id,
            self.run_at,
            res.queue,
            res.sha if res.deliveries else "",
            reserve,
            res.token,
            self.token,
            ack.extras,
            *queue_argv,
            *record,
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
    """CYCLE's ARGV 5: '0' reserve nothing, '1' the landing list then the queues, '2' the queues."""
    if queues is None:
        return "0"
    return "1" if landing else "2"


_EMPTY = b"$0\r\n\r\n"


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
    arguments come packed from a cache, the recurring values (queue, flags) from
    :func:`pyresque.store.scriptcall.bulks_repeated`; only the tokens are packed afresh."""
    fixed = _packed_fixed(k, worker_id, tuple(queues or ()))
    reserve = _reserve_from(queues, landing)
    if ack is None:
        body = b"".join(
            (
                fixed.keys,
                fixed.worker_id,
                _packed_run_at(run_at),
                _EMPTY,
                _EMPTY,
                scriptcall.bulks_repeated((reserve,)),
                _EMPTY,
                scriptcall.bulk(token),
                _EMPTY,
                fixed.queue_argv,
            )
        )
        return fixed.numkeys, fixed.numargs, body
    res = ack.reservation
    numkeys, numargs = fixed.numkeys, fixed.numargs
    extra_keys = extra_argv = b""
    if ack.failure_record or ack.forget:
        parts = []
        if ack.failure_record:
            parts.append(_packed_failure_keys(k, worker_id))
            extra_argv = scriptcall.bulk(ack.failure_record)
            numkeys, numargs = numkeys + 3, numargs + 1
        if ack.forget:
            parts.append(scriptcall.bulk(ack.forget))
            numkeys += 1
        extra_keys = b"".join(parts)
    body = b"".join(
        (
            fixed.keys,
            extra_keys,
            fixed.worker_id,
            _packed_run_at(run_at),
            scriptcall.bulks_repeated((res.queue, res.sha if res.deliveries else "", reserve)),
            scriptcall.bulk(res.token),
            scriptcall.bulk(token),
            scriptcall.bulks_repeated((ack.extras,)),
            fixed.queue_argv,
            extra_argv,
        )
    )
    return numkeys, numargs, body


@dataclass(frozen=True)
class _PackedFixed:
    """A worker's CYCLE keys and arguments that never change, as RESP."""

    keys: bytes  # KEYS 1-8, then the queue keys
    worker_id: bytes  # ARGV 1
    queue_argv: bytes  # ARGV 9..
    numkeys: int
    numargs: int


@functools.lru_cache(maxsize=64)
def _packed_fixed(k: Keys, wid: str, queues: tuple[str, ...]) -> _PackedFixed:
    fixed, queue_keys = _worker_keys(k, wid, queues)
    queue_argv = _queue_argv(queues)
    return _PackedFixed(
        keys=scriptcall.bulks([*fixed, *queue_keys]),
        worker_id=scriptcall.bulk(wid),
        queue_argv=scriptcall.bulks(queue_argv),
        numkeys=len(fixed) + len(queue_keys),
        numargs=8 + len(queue_argv),
    )


@functools.lru_cache(maxsize=64)
def _packed_failure_keys(k: Keys, wid: str) -> bytes:
    return scriptcall.bulks(_failure_keys(k, wid))


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
            k.processed,
            k.worker_processed(wid),
            k.landing(wid),
            k.pause_all,
            k.inflight_workers,
        ],
        [k.queue(q) for q in queues],
    )


def _failure_keys(k: Keys, wid: str) -> list[str]:
    """The keys a CYCLE call that records a failure adds after the queue keys."""
    return [k.failed, k.failed_count, k.worker_failed_count(wid)]


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
