"""The landing list of a blocked single-queue worker: adopted, put back, recovered."""

from __future__ import annotations

import time

import redis

from pyresque import protocol
from pyresque.protocol import Failure
from pyresque.recovery import recover_worker
from pyresque.store import PAUSED, Reservation, Store

WID = "host:4194001:oracle"
A = '{"class":"Echo","args":["a"]}'
B = '{"class":"Echo","args":["b"]}'


def test_cycle_adopts_a_landed_job_before_the_queue(r: redis.Redis, store: Store) -> None:
    r.rpush("resque:queue:oracle", B)
    r.rpush(f"resque:landing:{WID}", A)  # BLMOVE took A from the queue's head
    got = store.cycle(WID, time.time(), queues=["oracle"])
    assert got == Reservation("oracle", A, 0)
    assert not r.exists(f"resque:landing:{WID}")
    assert r.hgetall(f"resque:inflight:{WID}") == {b"oracle": A.encode()}
    assert r.lrange("resque:queue:oracle", 0, -1) == [B.encode()]


def test_paused_workers_put_a_landed_job_back_in_front(r: redis.Redis, store: Store) -> None:
    r.rpush("resque:queue:oracle", B)
    r.rpush(f"resque:landing:{WID}", A)
    r.set("resque:pause-all-workers", "true")
    assert store.cycle(WID, time.time(), queues=["oracle"]) == PAUSED
    assert r.lrange("resque:queue:oracle", 0, -1) == [A.encode(), B.encode()]


def test_return_landed_keeps_the_order(r: redis.Redis, store: Store) -> None:
    r.rpush("resque:queue:oracle", "c")
    r.rpush(f"resque:landing:{WID}", "a", "b")
    assert store.return_landed(WID, "oracle") == 2
    assert r.lrange("resque:queue:oracle", 0, -1) == [b"a", b"b", b"c"]


def test_recovering_a_dead_worker_returns_its_landed_job(r: redis.Redis, store: Store) -> None:
    r.sadd("resque:workers", WID)
    r.rpush(f"resque:landing:{WID}", A)
    outcomes = recover_worker(store, WID, time.time(), Failure(protocol.DIRTY_EXIT, "gone"), 3)
    assert outcomes == ["requeued"]
    assert r.lrange("resque:queue:oracle", 0, -1) == [A.encode()]
    assert not r.sismember("resque:workers", WID)
