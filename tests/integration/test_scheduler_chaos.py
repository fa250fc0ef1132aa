"""The move under SIGKILL: a scheduler killed at random points never loses or doubles a job."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable

import redis

from pyresque.scheduler.delayed import encode_item
from pyresque.scheduler.store import ScheduleStore
from pyresque.wire import protocol
from pyresque.wire.keys import Keys
from tests.helpers import Proc, wait_until

LOCK_KEY = "resque:resque:resque_scheduler_master_lock"
JOBS = 1500


def _where(r: redis.Redis) -> tuple[list[int], list[int]]:
    """Job numbers queued and still delayed, read in one transaction (a consistent snapshot)."""
    store = ScheduleStore(r, Keys("resque"))
    pipe = r.pipeline(transaction=True)
    pipe.lrange("resque:queue:mail", 0, -1)
    for ts in store.timestamps():
        pipe.lrange(f"resque:delayed:{ts}", 0, -1)
    queued_raw, *delayed_lists = pipe.execute()
    queued = [protocol.loads(p)["args"][0] for p in queued_raw]
    delayed = [protocol.loads(i)["args"][0] for items in delayed_lists for i in items]
    return queued, delayed


def test_killed_mid_move_no_job_is_lost_or_doubled(
    r: redis.Redis, spawn: Callable[..., Proc]
) -> None:
    store = ScheduleStore(r, Keys("resque"))
    base = 1_000_000_000  # long past: every item is due at once
    for n in range(JOBS):
        store.push_delayed(base + n % 40, encode_item("SomeJob", [n], "mail"))
    rng = random.Random(os.getpid())
    env = {"DELAYED_REQUEUE_BATCH_SIZE": "7", "RESQUE_SCHEDULER_INTERVAL": "0.05"}
    kills = 0
    for round_no in range(30):
        queued_before = r.llen("resque:queue:mail")
        if queued_before == JOBS:
            break
        proc = spawn("scheduler", env=env, name=f"round{round_no}")
        target = min(JOBS, queued_before + rng.randint(1, 300))
        wait_until(lambda t=target: r.llen("resque:queue:mail") >= t, timeout=20, interval=0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        queued, delayed = _where(r)
        assert len(queued) == len(set(queued)), "a job was queued twice"
        assert sorted(queued + delayed) == list(range(JOBS)), "a job was lost or doubled"
        r.delete(LOCK_KEY)  # what the killed master's TTL would do, without the wait
    assert kills >= 3
    queued, delayed = _where(r)
    assert sorted(queued) == list(range(JOBS))
    assert delayed == []
    assert r.zcard("resque:delayed_queue_schedule") == 0
    assert r.keys("resque:timestamps:*") == []
