"""The landing list of a blocked single-queue worker: adopted, put back, recovered."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from pyresque.store.operations import PAUSED, Reservation, Store
from pyresque.wire import protocol
from pyresque.wire.protocol import Failure
from pyresque.worker.recovery import recover_worker
from tests.helpers import Proc, wait_until
from tests.integration.test_worker import push, registered, strings, work

Spawn = Callable[..., Proc]

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


def test_a_cycle_told_the_landing_list_is_empty_does_not_look_there(
    r: redis.Redis, store: Store
) -> None:
    r.rpush("resque:queue:oracle", B)
    r.rpush(f"resque:landing:{WID}", A)
    r.config_resetstat()
    got = store.cycle(WID, time.time(), queues=["oracle"], landing=False)
    assert got == Reservation("oracle", B, 0)
    assert r.lrange(f"resque:landing:{WID}", 0, -1) == [A.encode()]
    assert r.info("commandstats")["cmdstat_lpop"]["calls"] == 1  # the queue's only
    # the next call that looks there adopts it
    assert store.cycle(WID, time.time(), queues=["oracle"]) == Reservation("oracle", A, 0)
    assert not r.exists(f"resque:landing:{WID}")


def test_an_acknowledge_only_cycle_reserves_from_nowhere(r: redis.Redis, store: Store) -> None:
    r.rpush("resque:queue:oracle", B)
    r.rpush(f"resque:landing:{WID}", A)
    for landing in (True, False):
        assert store.cycle(WID, time.time(), queues=None, landing=landing) is None
    assert r.lrange(f"resque:landing:{WID}", 0, -1) == [A.encode()]
    assert r.lrange("resque:queue:oracle", 0, -1) == [B.encode()]
    assert not r.exists(f"resque:inflight:{WID}")


def test_a_busy_worker_looks_in_its_landing_list_once_a_second_not_per_job(
    r: redis.Redis, spawn: Spawn
) -> None:
    for i in range(300):
        push(r, "oracle", {"class": "Echo", "args": [i]})
    r.config_resetstat()
    started = time.monotonic()
    proc = work(spawn, "oracle", "--in-process", "--burst")
    assert proc.wait() == 0, proc.log()
    seconds = time.monotonic() - started
    assert r.get("resque:stat:processed") == b"300"
    lpops = r.info("commandstats")["cmdstat_lpop"]["calls"]
    # 301 from the queue (the last finds it empty), and the landing list's once a second, not 300
    assert 301 <= lpops <= 301 + seconds + 2, (lpops, seconds)


def test_a_job_left_in_a_busy_workers_landing_list_is_run_while_it_is_busy(
    r: redis.Redis, spawn: Spawn
) -> None:
    # one left by a blocking move the server served as the worker abandoned it, say
    for i in range(60):
        push(r, "oracle", {"class": "Sleepy", "args": [0.1, f"s{i}"]})
    work(spawn, "oracle", "--in-process")
    wait_until(lambda: len(strings(r, "test:started")) >= 2)
    [wid] = registered(r)
    r.rpush(f"resque:landing:{wid}", '{"class":"Echo","args":["landed"]}')
    wait_until(lambda: '["landed"]' in strings(r, "test:done"))
    # picked up while the worker was still busy (~6 s of jobs), not once it went idle
    assert r.llen("resque:queue:oracle") > 0
    assert not r.exists(f"resque:landing:{wid}")
