"""What a reservation is, and the typed requests of the job scripts.

A :class:`Reservation` is a job moved into a worker's in-flight hash; an :class:`Ack` says how it
ended. :class:`CycleRequest` fills the slots :mod:`pyresque.wire.layout` declares for ``CYCLE``,
:class:`CyclePacker` packs them (the one packer of the hot path) and :func:`read_reply` reads the
reply. :class:`RequeueRequest` and :class:`RetryRequest` are the one place where their calls'
fields meet their scripts' ``KEYS`` and ``ARGV`` order (documented in :mod:`pyresque.wire.scripts`).
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from redis.typing import EncodableT

from pyresque.store import scriptcall
from pyresque.wire import layout, protocol
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
        """CYCLE's ``extras`` argument: what the call carries beyond a plain success."""
        failure = ("f" if self.count_failed else "u") if self.failure_record else ""
        return failure + ("d" if self.forget else "")


PAUSED = "paused"
HELD = "held"  # the worker's in-flight hash holds a reservation it never heard back about
REDELIVERY_MEMORY = 24 * 3600.0  # a redelivery count not raised for this long is forgotten

Reply = Reservation | str | None  # what a CYCLE call says: a reservation, PAUSED, HELD or None
LAYOUT = layout.CYCLE


class CycleArgs(NamedTuple):
    """CYCLE's fixed arguments, one field per slot of :data:`pyresque.wire.layout.CYCLE`'s
    ``args``, in its order (checked as this module loads)."""

    worker_id: str
    run_at: str
    acked_queue: str
    acked_sha: str
    reserve_from: str
    acked_token: str
    token: str
    extras: str


if CycleArgs._fields != tuple(slot.name for slot in LAYOUT.args):
    raise ImportError("CycleArgs and pyresque.wire.layout.CYCLE disagree on CYCLE's arguments")


class CycleRequest(NamedTuple):
    """One CYCLE call: acknowledge ``ack`` (if any), then reserve from ``queues`` (None: don't),
    looking first in the worker's landing list unless ``landing`` is False.

    Its keys and arguments are the slots of :data:`pyresque.wire.layout.CYCLE`, filled by name
    here (:meth:`key_values`, :meth:`arg_values`, :meth:`tails`) and put in the declared order by
    :meth:`keys` and :meth:`argv` (redis-py's generic call) or :class:`CyclePacker` (RESP).
    """

    worker_id: str
    run_at: str
    ack: Ack | None = None
    queues: Sequence[str] | None = None
    token: str = ""
    landing: bool = True

    def key_values(self, k: Keys) -> dict[str, str]:
        """The fixed keys, by slot name."""
        return _fixed_keys(k, self.worker_id)

    def arg_values(self) -> CycleArgs:
        """The fixed arguments, by slot name."""
        return CycleArgs(
            *cycle_args(self.worker_id, self.run_at, self.ack, self.reserve_from, self.token)
        )

    @property
    def reserve_from(self) -> str:
        return reserve_from(self.queues, self.landing)

    def packed(self, k: Keys) -> tuple[int, int, bytes]:
        """(number of keys, number of arguments, their RESP), by the worker's packer."""
        packer = cycle_packer(k, self.worker_id, tuple(self.queues or ()))
        return packer.pack(self.run_at, self.ack, self.reserve_from, self.token)

    def tails(self, k: Keys) -> list[tuple[layout.Tail, dict[str, str]]]:
        """The optional tails this call carries, in declared order, with their slots' values."""
        return cycle_tails(k, self.worker_id, self.ack)

    def keys(self, k: Keys) -> list[str]:
        """``KEYS`` in the declared order (redis-py's generic call)."""
        fixed = self.key_values(k)
        out = [fixed[slot.name] for slot in LAYOUT.keys]
        for queue in self.queues or ():
            per_queue = _queue_keys(k, queue)
            out += [per_queue[slot.name] for slot in LAYOUT.queue_keys]
        for tail, values in self.tails(k):
            out += [values[slot.name] for slot in tail.keys]
        return out

    def argv(self, k: Keys) -> list[EncodableT]:
        """``ARGV`` in the declared order (redis-py's generic call)."""
        out: list[EncodableT] = list(self.arg_values())
        for queue in self.queues or ():
            per_queue = _queue_args(queue)
            out += [per_queue[slot.name] for slot in LAYOUT.queue_args]
        for tail, values in self.tails(k):
            out += [values[slot.name] for slot in tail.args]
        return out


def _fixed_keys(k: Keys, wid: str) -> dict[str, str]:
    return {
        "inflight": k.inflight(wid),
        "busy": k.worker(wid),
        "redeliveries": k.redeliveries,
        "processed": k.processed,
        "worker_processed": k.worker_processed(wid),
        "landing": k.landing(wid),
        "pause_all": k.pause_all,
        "inflight_workers": k.inflight_workers,
    }


def _queue_keys(k: Keys, queue: str) -> dict[str, str]:
    return {"queue": k.queue(queue)}


def _queue_args(queue: str) -> dict[str, str]:
    return {"queue_name": queue, "queue_json": protocol.dumps(queue)}


def reserve_from(queues: Sequence[str] | None, landing: bool) -> str:
    """The ``reserve_from`` argument: '0' nothing, '1' the landing list first, '2' queues only."""
    if queues is None:
        return "0"
    return "1" if landing else "2"


def cycle_args(worker_id: str, run_at: str, ack: Ack | None, reserve: str, token: str) -> CycleArgs:
    """The fixed arguments of a call (positional for speed: a call per job; the field names of
    :class:`CycleArgs` say which is which)."""
    if ack is None:
        return CycleArgs(worker_id, run_at, "", "", reserve, "", token, "")
    res = ack.reservation
    sha = res.sha if res.deliveries else ""
    return CycleArgs(worker_id, run_at, res.queue, sha, reserve, res.token, token, ack.extras)


def cycle_tails(
    k: Keys, worker_id: str, ack: Ack | None
) -> list[tuple[layout.Tail, dict[str, str]]]:
    """The optional tails a call carries, in declared order, with their slots' values."""
    if ack is None or not (ack.failure_record or ack.forget):
        return []
    values = {
        "failed": k.failed,
        "failed_count": k.failed_count,
        "worker_failed_count": k.worker_failed_count(worker_id),
        "failure_record": ack.failure_record,
        "forget": ack.forget,
    }
    carried = {"failure": bool(ack.failure_record), "forget": bool(ack.forget)}
    return [(tail, values) for tail in LAYOUT.tails if carried[tail.name]]


@functools.lru_cache(maxsize=4)
def _packed_second(value: str) -> bytes:
    return scriptcall.bulk(value)  # a time: changes once a second


def _packed_once(value: str) -> Callable[[str], bytes]:
    """A slot packed once for the worker (its value is the worker's own in every call): a
    lookup of that one value, in C."""
    return {value: scriptcall.bulk(value)}.__getitem__


class CyclePacker:
    """A worker's CYCLE calls as RESP, packed the way the declaration says each slot varies:
    the slots that never change for the worker (its keys, its id, its queues' arguments) are
    packed once, here; per call, a time is packed once a second, a recurring value (a queue
    name, a flag) once (:data:`pyresque.store.scriptcall.bulk_repeated`), a token afresh.

    The only packer: :meth:`pack` gives the same bytes as redis-py would for
    :meth:`CycleRequest.keys` and :meth:`CycleRequest.argv` (a test compares every shape).
    """

    def __init__(self, k: Keys, worker_id: str, queues: tuple[str, ...]) -> None:
        self._k, self._worker_id = k, worker_id
        probe = CycleRequest(worker_id, "", queues=queues)
        self.keys = scriptcall.bulks(probe.keys(k))
        self.numkeys = len(LAYOUT.keys) + len(LAYOUT.queue_keys) * len(queues)
        self.numargs = len(LAYOUT.args) + len(LAYOUT.queue_args) * len(queues)
        per_queue = [_queue_args(q) for q in queues]
        self.queue_args = scriptcall.bulks(
            [values[slot.name] for values in per_queue for slot in LAYOUT.queue_args]
        )
        fixed = probe.arg_values()
        self._packs = [
            _packed_once(value) if slot.packing is layout.Packing.WORKER else _PACKING[slot.packing]
            for slot, value in zip(LAYOUT.args, fixed, strict=True)
        ]

    def pack(
        self, run_at: str, ack: Ack | None, reserve: str, token: str
    ) -> tuple[int, int, bytes]:
        """(number of keys, number of arguments, their RESP) for one of this worker's calls
        (the fields of :class:`CycleRequest`; ``reserve``: its ``reserve_from``)."""
        args = cycle_args(self._worker_id, run_at, ack, reserve, token)
        packed = b"".join(map(_call, self._packs, args))
        if ack is None or not (ack.failure_record or ack.forget):
            return self.numkeys, self.numargs, self.keys + packed + self.queue_args
        tails = cycle_tails(self._k, self._worker_id, ack)
        tail_keys = [values[slot.name] for tail, values in tails for slot in tail.keys]
        tail_args = [values[slot.name] for tail, values in tails for slot in tail.args]
        return (
            self.numkeys + len(tail_keys),
            self.numargs + len(tail_args),
            b"".join(
                (
                    self.keys,
                    scriptcall.bulks(tail_keys),
                    packed,
                    self.queue_args,
                    scriptcall.bulks(tail_args),
                )
            ),
        )


def _call_py310(pack: Callable[[str], bytes], value: str) -> bytes:
    return pack(value)


# pack(value) for each slot, called from C where there is operator.call (Python 3.11 on)
_call: Callable[[Callable[[str], bytes], str], bytes] = getattr(operator, "call", _call_py310)

_PACKING: dict[layout.Packing, Callable[[str], bytes]] = {
    layout.Packing.SECOND: _packed_second,
    layout.Packing.RECURRING: scriptcall.bulk_repeated,
    layout.Packing.FRESH: scriptcall.bulk_text,
}


@functools.lru_cache(maxsize=64)
def cycle_packer(k: Keys, worker_id: str, queues: tuple[str, ...]) -> CyclePacker:
    """The packer of a worker's calls with ``queues`` (made once per worker and queue list)."""
    return CyclePacker(k, worker_id, queues)


def read_reply(reply: Any, token: str) -> Reply:
    """What a ``CYCLE`` reply says (its format: :data:`pyresque.wire.layout.CYCLE`'s ``reply``):
    a Reservation (under ``token``), :data:`PAUSED`, :data:`HELD`, or None."""
    if not reply:
        return None
    if isinstance(reply, str):  # a client that decodes replies (as UTF-8)
        reply = as_bytes(reply)
    if not isinstance(reply, bytes):
        raise TypeError(f"CYCLE replied {reply!r}, not a string")
    if reply == b"paused":
        return PAUSED
    if reply == b"held":
        return HELD
    deliveries, size, rest = reply.split(b" ", 2)  # '<deliveries> <n> <queue: n bytes><payload>'
    n = int(size)
    return Reservation(as_text(rest[:n]), as_text(rest[n:]), int(deliveries), token)


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
