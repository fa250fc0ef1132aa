"""The hand-packed EVALSHA of CYCLE: byte for byte what redis-py would send for the same call."""

from __future__ import annotations

import redis

from pyresque.keys import Keys
from pyresque.reservation import Ack, CycleRequest, Reservation
from pyresque.scriptcall import ScriptCall, evalsha_head
from pyresque.sentinel import durable

SHA = "0123456789abcdef0123456789abcdef01234567"


def redis_py_packing(request: CycleRequest, k: Keys) -> bytes:
    keys, argv = request.keys(k), request.argv()
    parts = redis.Connection().pack_command("EVALSHA", SHA, len(keys), *keys, *argv)
    return b"".join(parts)


def ours(request: CycleRequest, k: Keys) -> bytes:
    numkeys, numargs, body = request.packed(k)
    return evalsha_head(SHA, numkeys, numargs) + body


def test_every_shape_of_call_packs_as_redis_py_does() -> None:
    k = Keys("resque")
    res = Reservation("high", '{"class":"A","args":[1]}', 0, "n.1")
    redelivered = Reservation("low", '{"class":"B","args":["é"]}', 2, "n.2")
    requests = [
        CycleRequest("host:1:high,low", "2026-11-29 21:00:00 +0000", queues=["high", "low"]),
        CycleRequest("w:1:q", "2026-11-29 21:00:01 +0000", ack=Ack(res), queues=["q"], token="n.3"),
        CycleRequest("w:1:q", "t", ack=Ack(res, forget="resque:retry:x")),
        CycleRequest(
            "w:1:q", "t", ack=Ack(res, "{}", forget="resque:retry:x"), queues=["q"], token="n.5"
        ),
        CycleRequest(
            "w:1:*",
            "t",
            ack=Ack(redelivered, failure_record='{"error":"ü"}', count_failed=False),
            queues=["a", "b", "c"],
            token="n.4",
        ),
        CycleRequest("w:1:q", "t", queues=None),
    ]
    for request in requests:
        assert ours(request, k) == redis_py_packing(request, k), request


def test_the_owned_connection_applies_to_plain_clients_only() -> None:
    plain = redis.Redis(host="127.0.0.1", port=1)  # never connected here
    assert ScriptCall(plain, "return 1").fast
    assert not ScriptCall(durable(plain, replicas=1), "return 1").fast  # WAIT after each write
    assert ScriptCall(durable(plain, replicas=0), "return 1").fast
