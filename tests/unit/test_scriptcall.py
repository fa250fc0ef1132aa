"""The hand-packed EVALSHA of CYCLE: byte for byte what redis-py would send for the same call, both
packed from the one declaration of its layout (pyresque.wire.layout.CYCLE)."""

from __future__ import annotations

import pytest
import redis

from pyresque.store.cycle import HELD, PAUSED, Ack, CycleRequest, Reservation
from pyresque.store.cycle import read_reply as read
from pyresque.store.scriptcall import ScriptCall, evalsha_head
from pyresque.store.sentinel import durable
from pyresque.wire.keys import Keys

SHA = "0123456789abcdef0123456789abcdef01234567"


def redis_py_packing(request: CycleRequest, k: Keys) -> bytes:
    keys, argv = request.keys(k), request.argv(k)
    parts = redis.Connection().pack_command("EVALSHA", SHA, len(keys), *keys, *argv)
    return b"".join(parts)


def ours(request: CycleRequest, k: Keys) -> bytes:
    numkeys, numargs, body = request.packed(k)
    return evalsha_head(SHA, numkeys, numargs) + body


def test_every_shape_of_call_packs_as_redis_py_does() -> None:
    k = Keys("resque")
    reservations = [
        Reservation("high", '{"class":"A","args":[1]}', 0, "n.1"),
        Reservation("low", '{"class":"B","args":["é"]}', 2, "n.2"),  # redelivered: its sha goes
        Reservation("q", "[1]", 0, ""),  # no token
    ]
    acks: list[Ack | None] = [None]
    for res in reservations:
        for record in ("", '{"error":"ü"}'):
            for count_failed in (True, False):
                for forget in ("", "resque:retry:x"):
                    acks.append(Ack(res, record, count_failed, forget))
    shapes: list[tuple[list[str] | None, bool]] = [
        (None, True),
        ([], True),
        (["q"], True),
        (["q"], False),
        (["high", "low", "é"], False),
    ]
    requests = [
        CycleRequest("w:1:*", "2026-11-29T21:00:01Z", ack, queues, token, landing)
        for ack in acks
        for queues, landing in shapes
        for token in ("", "n.9")
    ]
    assert len(requests) == 250
    for request in requests:
        assert ours(request, k) == redis_py_packing(request, k), request


def test_the_owned_connection_applies_to_plain_clients_only() -> None:
    plain = redis.Redis(host="127.0.0.1", port=1)  # never connected here
    assert ScriptCall(plain, "return 1").fast
    assert not ScriptCall(durable(plain, replicas=1), "return 1").fast  # WAIT after each write
    assert ScriptCall(durable(plain, replicas=0), "return 1").fast


def test_a_cycle_reply_is_read_byte_for_byte() -> None:
    payload = '{"class":"A","args":["\xe9"]}'
    queue = "caf\xe9 q"  # a space and a character of two bytes
    raw = b"2 %d %b%b" % (len(queue.encode()), queue.encode(), payload.encode())
    assert read(raw, "t.1") == Reservation(queue, payload, 2, "t.1")
    assert read(raw.decode(), "t.1") == Reservation(queue, payload, 2, "t.1")
    assert read(b"0 1 q", "") == Reservation("q", "", 0, "")  # an empty job
    assert read(b"0 1 q\xff", "") == Reservation("q", "\udcff", 0, "")
    assert read(b"paused", "t") == PAUSED
    assert read(b"held", "t") == HELD
    assert read(None, "t") is None
    with pytest.raises(TypeError, match="not a string"):
        read([b"job", b"q"], "t")
