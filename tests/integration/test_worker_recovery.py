"""Faults around a worker: a lost reply, a reused worker id, a read-only Redis, garbage data."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from pyresque import protocol
from pyresque.hooks import WorkerHooks
from pyresque.queues import QueueSelector
from pyresque.recovery import WorkerId, prune_dead_workers
from pyresque.registry import Registry
from pyresque.settings import WorkerSettings
from pyresque.store import Store
from pyresque.worker import Worker
from tests.helpers import Proc, wait_until
from tests.integration.test_worker_outage import free_port
from tests.redis_server import RedisServer, start_redis_server


def in_process_worker(store: Store, ran: list[Any]) -> Worker:
    """A burst worker in this process (no fork), running the job 'J' that records its argument."""
    registry = Registry()
    registry.register("J", ran.append)
    settings = WorkerSettings(queues="q", burst=True, fork_per_job=False, interval=0)
    return Worker(store, QueueSelector.parse("q"), settings, registry=registry, hooks=WorkerHooks())


def lose_reply_of_call(store: Store, n: int) -> None:
    """The n-th CYCLE call runs in Redis, but its reply is lost on the way back."""
    real = store._cycle
    calls = {"n": 0}

    def flaky(args: list[str]) -> Any:
        calls["n"] += 1
        reply = real(args=args)
        if calls["n"] == n:
            raise redis.ConnectionError("reply lost")
        return reply

    store._cycle = flaky  # type: ignore[method-assign]


@pytest.mark.parametrize("args", [["A", "B", "C"], ["same", "same", "last"]])
def test_a_lost_reply_neither_loses_nor_double_counts_a_job(
    r: redis.Redis, store: Store, args: list[str]
) -> None:
    for arg in args:
        store.push("q", protocol.encode_payload("J", [arg]))
    lose_reply_of_call(store, 2)  # the call that acknowledges the 1st job and reserves the 2nd
    ran: list[Any] = []
    assert in_process_worker(store, ran).work() == 0
    assert ran == args
    assert r.get("resque:stat:processed") == b"3"
    assert r.llen("resque:queue:q") == 0
    assert r.keys("resque:inflight:*") == []


def test_a_worker_reusing_a_dead_workers_id_puts_its_job_back_first(
    r: redis.Redis, store: Store
) -> None:
    """A container restarted with the same hostname and pid: same worker id as before."""
    me = f"{socket.gethostname()}:{os.getpid()}:q"
    left = protocol.encode_payload("J", ["left by the dead one"])
    r.hset(f"resque:inflight:{me}", mapping={"q": left, "": "old-token"})
    r.sadd("resque:inflight-workers", me)
    store.push("q", protocol.encode_payload("J", ["new"]))
    ran: list[Any] = []
    assert in_process_worker(store, ran).work() == 0
    assert ran == ["left by the dead one", "new"]
    assert r.hlen("resque:redeliveries") == 0  # cleared once it succeeded


def test_prune_survives_a_busy_record_that_is_not_resques(r: redis.Redis, store: Store) -> None:
    dead = "otherhost:1:q"
    r.sadd("resque:workers", dead)
    r.hset("resque:workers:heartbeat", dead, "2020-01-01T00:00:00+00:00")
    r.set(f"resque:worker:{dead}", "[1, 2, 3]")
    pruned = prune_dead_workers(
        store, WorkerId("here", 1, "*"), QueueSelector.parse("*"), now=time.time()
    )
    assert pruned == [dead]
    [record] = [protocol.decode_failure(f) for f in store.failures()]
    assert record["exception"] == protocol.PRUNE_DIRTY_EXIT
    assert record["payload"] == [1, 2, 3]  # kept as it was


def test_pool_rides_out_a_read_only_redis(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    """After a failover the old primary answers READONLY: workers and master wait it out."""
    primary_port = free_port()
    primary = start_redis_server(port=primary_port)
    port = free_port()
    server: RedisServer = start_redis_server(port=port)
    try:
        config = tmp_path / "pool.yml"
        config.write_text("q: 1\n")
        master = spawn(
            "pool", "--config", str(config), "--app", "jobapp",
            env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"},
        )  # fmt: skip
        client = server.client()
        wait_until(lambda: client.scard("resque:workers") == 1, 10)
        client.replicaof("127.0.0.1", primary_port)
        wait_until(lambda: "READONLY" in master.log(), 15)
        client.replicaof("NO", "ONE")
        client.sadd("resque:queues", "q")
        client.rpush("resque:queue:q", protocol.encode_payload("Echo", ["after failover"]))
        wait_until(lambda: client.lrange("test:done", 0, -1) == [b'["after failover"]'], 20)
        assert master.popen.poll() is None
        assert "Traceback" not in master.log()
    finally:
        server.stop()
        primary.stop()
