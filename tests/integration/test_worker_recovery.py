"""Faults around a worker: a lost reply, a reused worker id, a read-only Redis, garbage data."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from harness.redis_server import RedisServer, start_redis_server
from pyresque.jobs.registry import Registry
from pyresque.jobs.retry import Retry
from pyresque.settings import WorkerSettings
from pyresque.store.operations import HELD, Ack, Reservation, Store
from pyresque.wire import protocol
from pyresque.wire.keys import Keys
from pyresque.worker.hooks import WorkerHooks
from pyresque.worker.loop import Worker
from pyresque.worker.queues import QueueSelector
from pyresque.worker.recovery import WorkerId, prune_dead_workers
from tests.helpers import Proc, job_figures, wait_until
from tests.integration.test_worker_outage import free_port


def in_process_worker(store: Store, ran: list[Any]) -> Worker:
    """A burst worker in this process (no fork), running the job 'J' that records its argument."""
    registry = Registry()
    registry.register("J", ran.append)
    settings = WorkerSettings(queues="q", burst=True, fork_per_job=False, interval=0)
    return Worker(store, QueueSelector.parse("q"), settings, registry=registry, hooks=WorkerHooks())


def lose_reply_of_call(store: Store, n: int) -> None:
    """The n-th CYCLE call runs in Redis, but its reply is lost on the way back."""
    call = store._cycle
    assert call.fast  # a plain client: the call on the worker's own connection
    real = call.call_packed
    calls = {"n": 0}

    def flaky(numkeys: int, numargs: int, body: bytes) -> Any:
        calls["n"] += 1
        reply = real(numkeys, numargs, body)
        if calls["n"] == n:
            raise redis.ConnectionError("reply lost")
        return reply

    call.call_packed = flaky  # type: ignore[method-assign]


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


def refused_as_read_only(client: redis.Redis) -> int:
    """How many commands the server refused as a read-only replica (INFO errorstats)."""
    stats = client.info("errorstats").get("errorstat_READONLY", {})
    return int(stats.get("count", 0)) if isinstance(stats, dict) else 0


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
        # booted: its before_first_fork hook (which writes to Redis) ran before the failover
        wait_until(lambda: b"before_first_fork" in client.lrange("test:worker_hooks", 0, -1), 10)
        client.replicaof("127.0.0.1", primary_port)
        # wait on the server's own count of refused writes, not on how a client words the error
        wait_until(lambda: refused_as_read_only(client) >= 3, 15)
        client.replicaof("NO", "ONE")
        client.sadd("resque:queues", "q")
        client.rpush("resque:queue:q", protocol.encode_payload("Echo", ["after failover"]))
        wait_until(lambda: client.lrange("test:done", 0, -1) == [b'["after failover"]'], 20)
        assert master.popen.poll() is None
        # the master never failed (a worker whose before_first_fork hook wrote to the read-only
        # server is a boot failure, with its traceback, and the pool's backoff respawns it)
        assert "master loop failed" not in master.log()
    finally:
        server.stop()
        primary.stop()


def test_a_delayed_call_cannot_reserve_over_the_current_reservation(
    r: redis.Redis, store: Store
) -> None:
    wid = "h:1:q"
    for name in "ABCD":
        store.push("q", protocol.encode_payload(name, []))
    a = store.cycle(wid, time.time(), queues=["q"], token="n.1")
    assert isinstance(a, Reservation)
    # CYCLE(ack n.1, new n.2) is stuck in the network; the worker gives up, retries with n.3
    b = store.cycle(wid, time.time(), ack=Ack(a), queues=["q"], token="n.3")
    assert isinstance(b, Reservation) and b.payload == protocol.encode_payload("B", [])
    # ... and then the delayed call reaches Redis: it must neither ack again nor reserve
    assert store.cycle(wid, time.time(), ack=Ack(a), queues=["q"], token="n.2") == HELD
    assert r.get("resque:stat:processed") == b"1"
    d = store.cycle(wid, time.time(), ack=Ack(b), queues=["q"], token="n.4")
    assert isinstance(d, Reservation) and d.payload == protocol.encode_payload("C", [])
    assert r.get("resque:stat:processed") == b"2"
    assert r.lrange("resque:queue:q", 0, -1) == [protocol.encode_payload("D", []).encode()]


def test_an_idle_single_queue_worker_survives_many_abandoned_waits(
    r: redis.Redis, spawn: Callable[..., Proc]
) -> None:
    """Each signal abandons the blocking command (closing its connection): none may leak."""
    proc = spawn("work", "--queues", "q", "--app", "jobapp", env={"INTERVAL": "30"})
    blocked = lambda: [c for c in r.client_list() if c.get("cmd") == "blmove"]  # noqa: E731
    wait_until(blocked, 5)
    for _ in range(120):  # more than redis-py's 100 connections per pool
        proc.signal(signal.SIGCONT)
        time.sleep(0.002)  # let the worker see each one separately
    wait_until(blocked, 5)
    r.sadd("resque:queues", "q")
    r.rpush("resque:queue:q", protocol.encode_payload("Echo", ["still here"]))
    wait_until(lambda: r.lrange("test:done", 0, -1) == [b'["still here"]'], 5)
    # one blocking connection at most, however many waits were abandoned (named by the worker;
    # the test's Redis is shared with other tests' processes)
    mine = f"pyresque-blmove-{socket.gethostname()}:{proc.pid}:"
    wait_until(
        lambda: len([c for c in r.client_list() if c.get("name", "").startswith(mine)]) <= 1, 5
    )


def test_an_idle_in_process_worker_does_not_spin(
    r: redis.Redis, spawn: Callable[..., Proc]
) -> None:
    """The heartbeat thread beats; the loop must not wait for a beat it never makes."""
    spawn(
        "work", "--queues", "a,b", "--app", "jobapp",
        env={"FORK_PER_JOB": "false", "RESQUE_HEARTBEAT_INTERVAL": "1", "INTERVAL": "1"},
    )  # fmt: skip
    wait_until(lambda: r.hlen("resque:workers:heartbeat") == 1, 5)
    first = int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # three heartbeat intervals of idling
        time.sleep(0.1)
    calls = int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)) - first
    assert calls < 30, f"{calls} reserve calls in 3 s of idling: the loop spins"


def test_a_pool_worker_leaves_pruning_to_its_master_but_recovers_its_own_id(
    r: redis.Redis, store: Store, redis_server: RedisServer
) -> None:
    """``prunes=False`` (a pool's workers): a dead worker's job waits for the janitor's
    prune; what a dead predecessor left under the worker's own id still goes back at once."""
    from pyresque.pool.clients import PoolClients
    from pyresque.pool.janitor import Janitor

    dead = "elsewhere:1:q"
    long_ago = protocol.heartbeat_time(time.time() - 10_000)
    r.sadd("resque:workers", dead)
    r.hset("resque:workers:heartbeat", dead, long_ago)
    r.hset(f"resque:inflight:{dead}", mapping={"q": protocol.encode_payload("J", ["dead's"])})
    r.sadd("resque:inflight-workers", dead)
    me = f"{socket.gethostname()}:{os.getpid()}:q"
    r.hset(f"resque:inflight:{me}", mapping={"q": protocol.encode_payload("J", ["mine"])})
    r.sadd("resque:inflight-workers", me)

    ran: list[Any] = []
    worker = in_process_worker(store, ran)
    worker.settings = replace(worker.settings, prunes=False)
    assert worker.work() == 0
    assert ran == ["mine"]
    assert r.sismember("resque:workers", dead)  # not pruned by the worker

    Janitor(PoolClients(redis_server.url, "resque"), WorkerSettings()).prune(0.0)
    assert not r.sismember("resque:workers", dead)
    assert in_process_worker(store, ran).work() == 0  # the default: prunes, and finds nothing
    assert ran == ["mine", "dead's"]


def test_a_running_worker_outside_a_pool_prunes_every_heartbeat_interval(
    r: redis.Redis, spawn: Callable[..., Proc]
) -> None:
    """A dead worker found after this one started (a host that died later) has its job put back
    and run without any worker (re)starting: a plain worker prunes as a pool's master does."""
    env = {"RESQUE_HEARTBEAT_INTERVAL": "1", "RESQUE_PRUNE_INTERVAL": "3"}
    proc = spawn("work", "--queues", "oracle", "--app", "jobapp", env=env)
    wait_until(lambda: r.scard("resque:workers") == 1)
    dead = "elsewhere:1:oracle"
    r.sadd("resque:workers", dead)
    r.hset("resque:workers:heartbeat", dead, protocol.heartbeat_time(time.time() - 10_000))
    r.hset(f"resque:inflight:{dead}", "oracle", '{"class":"Echo","args":["orphan"]}')
    r.sadd("resque:inflight-workers", dead)
    wait_until(lambda: r.lrange("test:done", 0, -1) == [b'["orphan"]'])
    assert not r.sismember("resque:workers", dead)
    assert "prune: recovered dead workers elsewhere:1:oracle" in proc.log()
    assert proc.popen.poll() is None, proc.log()


def test_plain_workers_prune_only_under_the_prune_lock(
    r: redis.Redis, spawn: Callable[..., Proc]
) -> None:
    """Every plain worker prunes about every heartbeat interval, but only the one that finds
    Resque's prune lock free does it, so a fleet reads the registry once an interval."""
    env = {"RESQUE_HEARTBEAT_INTERVAL": "1", "RESQUE_PRUNE_INTERVAL": "3"}
    proc = spawn("work", "--queues", "oracle", "--app", "jobapp", env=env)
    wait_until(lambda: r.scard("resque:workers") == 1)
    [me] = [w.decode() for w in r.smembers("resque:workers")]
    r.set("resque:pruning_dead_workers_in_progress", "a-ruby-worker", ex=60)
    dead = "elsewhere:1:oracle"
    r.sadd("resque:workers", dead)
    r.hset("resque:workers:heartbeat", dead, protocol.heartbeat_time(time.time() - 10_000))
    r.hset(f"resque:inflight:{dead}", "oracle", '{"class":"Echo","args":["orphan"]}')
    r.sadd("resque:inflight-workers", dead)
    beats: set[bytes] = set()
    # three heartbeats of ours: a prune was due at least twice meanwhile
    wait_until(lambda: beats.add(r.hget("resque:workers:heartbeat", me) or b"") or len(beats) >= 4)
    assert r.lrange("test:done", 0, -1) == [] and r.sismember("resque:workers", dead)
    r.delete("resque:pruning_dead_workers_in_progress")
    wait_until(lambda: r.lrange("test:done", 0, -1) == [b'["orphan"]'])
    assert proc.popen.poll() is None, proc.log()


def test_a_crash_of_the_loop_after_boot_is_no_boot_failure(
    r: redis.Redis, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug that raises in the worker's loop once it is working is logged as a crash, with its
    traceback, and ends the worker with an unclean status (the pool replaces it at once), not as a
    failing before_first_fork hook (status 3, which the pool counts as a boot failure)."""
    for arg in ("A", "B"):
        store.push("q", protocol.encode_payload("J", [arg]))
    call = store._cycle
    real = call.call_packed
    calls = {"n": 0}

    def buggy(numkeys: int, numargs: int, body: bytes) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the call after the first job: the worker is working
            raise ValueError("a bug in the loop")
        return real(numkeys, numargs, body)

    call.call_packed = buggy  # type: ignore[method-assign]
    ran: list[Any] = []
    status = in_process_worker(store, ran).work()
    assert ran == ["A"]
    assert status not in (0, 3)
    text = caplog.text
    assert "before_first_fork" not in text
    assert "crashed" in text and "ValueError: a bug in the loop" in text
    assert "Traceback" in text
    # nothing lost, nothing run twice: the job that ran is acknowledged as the worker leaves,
    # the other one waits in its queue
    assert r.get("resque:stat:processed") == b"1"
    assert r.lrange("resque:queue:q", 0, -1) == [protocol.encode_payload("J", ["B"]).encode()]
    assert r.keys("resque:inflight:*") == []


class RetryingElsewhere(Store):
    """Another worker retrying an identical job bumps the attempt counter between every read
    of it and the RETRY call that depends on it, so every call says "changed"."""

    def retry_attempts(self, counter: str) -> str:
        seen = super().retry_attempts(counter)
        self.redis.incr(counter)
        return seen


def test_a_job_whose_retry_keeps_changing_is_counted_once(r: redis.Redis) -> None:
    store = RetryingElsewhere(r, Keys("resque"))
    registry = Registry()

    def fails(arg: str) -> None:
        raise RuntimeError(arg)

    registry.register("J", fails, retry=Retry(attempts=100))
    settings = WorkerSettings(queues="q", burst=True, fork_per_job=False, interval=0)
    store.push("q", protocol.encode_payload("J", ["x"]))
    worker = Worker(
        store, QueueSelector.parse("q"), settings, registry=registry, hooks=WorkerHooks()
    )
    assert worker.work() == 0
    assert r.llen("resque:failed") == 1  # given up on retrying: an ordinary failure
    assert job_figures(r, "J") == (1, 1)
