"""Our own in-flight jobs come back whether or not Ruby's prune lock is free: a Ruby worker that
just pruned holds it for 60 s, and a dead pyresque worker's job must not wait that long."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import redis

from pyresque.store.operations import Store
from pyresque.wire import protocol
from pyresque.worker.queues import QueueSelector
from pyresque.worker.recovery import WorkerId, prune_dead_workers
from tests.helpers import Proc, children_of, wait_until
from tests.integration.test_worker import push, registered, strings, work

LOCK = "resque:pruning_dead_workers_in_progress"
ME = WorkerId("here", 1, "oracle")


def hold_lock_as_ruby(r: redis.Redis) -> None:
    r.set(LOCK, "rubyhost:4242:oracle", ex=60)


def test_a_dead_workers_in_flight_job_is_put_back_while_ruby_holds_the_lock(
    r: redis.Redis, store: Store
) -> None:
    dead, job = "otherhost:99:oracle", protocol.encode_payload("Echo", ["held"])
    store.register_worker(dead, time.time())
    store.push("oracle", job)
    store.cycle(dead, time.time(), queues=["oracle"])
    r.hset("resque:workers:heartbeat", dead, "2020-01-01T00:00:00+00:00")  # long expired
    ruby = "otherhost:100:oracle"  # a Ruby worker, dead too: its prune waits for the lock
    r.sadd("resque:workers", ruby)
    r.hset("resque:workers:heartbeat", ruby, "2020-01-01T00:00:00+00:00")
    hold_lock_as_ruby(r)

    pruned = prune_dead_workers(store, ME, QueueSelector.parse("oracle"), now=time.time())

    assert pruned == [dead]
    assert store.all_payloads("oracle") == [job]
    assert dead not in store.worker_ids() and store.inflight(dead) == {}
    assert store.worker_ids() == [ruby]  # Ruby's registry prune still waits for the lock
    assert r.get(LOCK) == b"rubyhost:4242:oracle"


def test_a_sigkilled_workers_job_comes_back_at_once_despite_the_lock(
    r: redis.Redis, spawn: Callable[..., Proc]
) -> None:
    push(r, "oracle", {"class": "Sleepy", "args": [2, "s"]})
    proc = work(spawn, "oracle")
    wait_until(lambda: strings(r, "test:started") == ["s"])
    [worker_id] = registered(r)
    for child in children_of(proc.pid):
        os.kill(child, signal.SIGKILL)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    hold_lock_as_ruby(r)  # as if a Ruby worker had pruned a moment ago
    proc2 = work(spawn, "oracle", "--burst")
    assert proc2.wait(20) == 0, proc2.log()
    assert strings(r, "test:done") == ["s"]
    assert worker_id not in registered(r)
    assert r.ttl(LOCK) > 0  # still Ruby's
