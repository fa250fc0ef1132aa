"""CYCLE on the worker's own connection: NOSCRIPT, a killed connection, an outage and a fork behave
as they did through redis-py's generic path."""

from __future__ import annotations

import os
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.redis_server import start_redis_server
from pyresque.store.operations import Ack, Reservation, Store
from pyresque.wire import protocol
from pyresque.wire.keys import Keys


def job(i: int) -> str:
    return protocol.encode_payload("Echo", [i])


def test_a_flushed_script_is_loaded_again(r: redis.Redis, store: Store) -> None:
    assert store._cycle.fast
    store.push("q", job(1))
    store.push("q", job(2))
    first = store.cycle("w:1:q", time.time(), queues=["q"], token="t.1")
    assert isinstance(first, Reservation)
    r.script_flush()
    second = store.cycle("w:1:q", time.time(), ack=Ack(first), queues=["q"], token="t.2")
    assert isinstance(second, Reservation) and second.payload == job(2)
    assert r.get("resque:stat:processed") == b"1"


def test_a_killed_connection_is_opened_again(r: redis.Redis, store: Store) -> None:
    for i in range(3):
        store.push("q", job(i))
    assert isinstance(store.cycle("w:1:q", time.time(), queues=["q"]), Reservation)
    assert r.client_kill_filter(_type="normal", skipme=True) >= 1  # the worker's connection
    assert isinstance(store.cycle("w:1:q", time.time(), queues=["q"]), Reservation)
    assert r.llen("resque:queue:q") == 1


def test_an_outage_raises_redis_pys_connection_error() -> None:
    server = start_redis_server()
    client = redis.Redis(unix_socket_path=server.socket_path, retry=Retry(NoBackoff(), 0))
    store = Store(client, Keys("resque"))
    store.push("q", job(1))
    assert isinstance(store.cycle("w:1:q", time.time(), queues=["q"]), Reservation)
    server.stop()
    with pytest.raises(redis.ConnectionError):
        store.cycle("w:1:q", time.time(), queues=["q"])


def test_a_forked_child_uses_a_connection_of_its_own(r: redis.Redis, store: Store) -> None:
    for i in range(2):
        store.push("q", job(i))
    assert isinstance(store.cycle("w:parent:q", time.time(), queues=["q"]), Reservation)
    pid = os.fork()
    if pid == 0:  # in the child
        code = 1
        try:
            got = store.cycle("w:child:q", time.time(), queues=["q"])
            code = 0 if isinstance(got, Reservation) and got.payload == job(1) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent's connection was not touched by the child: it still answers its own calls
    assert store.cycle("w:parent:q", time.time(), queues=["q"]) is None
    assert r.hget("resque:inflight:w:child:q", "q") == job(1).encode()


def test_a_rehearsed_cycle_changes_nothing_and_uses_the_owned_connection(
    r: redis.Redis, store: Store
) -> None:
    """What a worker with a warm child does after each fork: nothing in Redis changes, and the
    PING goes over the connection the next CYCLE will use."""
    store.push("q", job(1))
    held = store.cycle("w:1:q", time.time(), queues=["q"], token="t.1")
    assert isinstance(held, Reservation)
    store.push("q", job(2))

    def snapshot() -> dict[bytes, bytes | None]:
        return {key: r.dump(key) for key in sorted(r.keys("*"))}

    before = snapshot()
    pings = int(r.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))
    store.rehearse_cycle("w:1:q", ["q"])
    assert snapshot() == before
    assert int(r.info("commandstats")["cmdstat_ping"]["calls"]) == pings + 1
    second = store.cycle("w:1:q", time.time(), ack=Ack(held), queues=["q"], token="t.2")
    assert isinstance(second, Reservation) and second.payload == job(2)
