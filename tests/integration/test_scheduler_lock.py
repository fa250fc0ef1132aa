"""resque-scheduler's master lock: one scheduler per namespace moves jobs, ours or Ruby's."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable
from typing import Any

import redis

from pyresque.jobs.registry import Registry
from pyresque.scheduler.delayed import encode_item
from pyresque.scheduler.lock import MasterLock
from pyresque.scheduler.service import SchedulerOptions, SchedulerService
from pyresque.scheduler.store import ScheduleStore
from pyresque.wire.keys import Keys
from tests.helpers import Proc, wait_until
from tests.scheduler_fixtures import scenario

LOCK_KEY = "resque:resque:resque_scheduler_master_lock"


def _service(r: redis.Redis, value: str, now: list[float], **options: Any) -> SchedulerService:
    store = ScheduleStore(r, Keys("resque"))
    opts = SchedulerOptions(**options)
    lock = MasterLock(store, timeout=opts.lock_timeout, value=value)
    return SchedulerService(store, opts, registry=Registry(), lock=lock, clock=lambda: now[0])


def _delay(r: redis.Redis, ts: int, *args: Any) -> None:
    ScheduleStore(r, Keys("resque")).push_delayed(ts, encode_item("SomeJob", list(args), "mail"))


def test_a_ruby_master_keeps_ours_from_moving(r: redis.Redis) -> None:
    s3 = scenario("s3_scheduler_moves_due_items")
    # the lock exactly as Ruby's scheduler leaves it while it runs
    r.set(s3["lock_key"], s3["lock_value_after_start"], ex=s3["lock_ttl_after_start"])
    now = [1_800_000_010.0]
    _delay(r, 1_800_000_000, "due")
    ours = _service(r, "localhost:1", now)
    for step in range(5):
        now[0] += step
        ours.tick(now[0])
        assert not ours.lock.held
    assert r.llen("resque:queue:mail") == 0
    assert r.get(LOCK_KEY) == s3["lock_value_after_start"].encode()
    assert r.ttl(LOCK_KEY) > 170  # not extended by us, not taken

    r.delete(LOCK_KEY)  # Ruby's TERM: it deletes its lock; ours takes over on its next poll
    now[0] += ours.options.poll_interval
    ours.tick(now[0])
    assert ours.lock.held
    assert r.get(LOCK_KEY) == b"localhost:1"
    assert r.ttl(LOCK_KEY) == 180
    assert r.lrange("resque:queue:mail", 0, -1) == [b'{"class":"SomeJob","args":["due"]}']


def test_two_schedulers_racing_move_each_job_once(r: redis.Redis) -> None:
    now = [1_800_000_000.0]
    a = _service(r, "host:1", now, poll_interval=0.5)
    b = _service(r, "host:2", now, poll_interval=0.5)
    expected = []
    rng = random.Random(7)
    running = [a, b]
    for i in range(300):
        now[0] += rng.random() * 0.3
        if i % 3 == 0:
            _delay(r, int(now[0]) + rng.randint(0, 3), i)
            expected.append(i)
        for service in rng.sample(running, len(running)):
            service.tick(now[0])
        assert not (a.lock.held and b.lock.held)
        if i == 150:  # the master stops (TERM) and hands over
            master = a if a.lock.held else b
            master.stop()
            running.remove(master)
    for _ in range(3):
        now[0] += 5
        running[0].tick(now[0])
    queued = sorted(int(p.decode().split("[")[1].rstrip("]}")) for p in _queued(r))
    assert queued == expected
    assert a.moved + b.moved == len(expected)
    assert a.moved and b.moved  # the hand-over happened: both were master at some point


def _queued(r: redis.Redis) -> list[bytes]:
    return list(r.lrange("resque:queue:mail", 0, -1))


def _master_pid(r: redis.Redis) -> int | None:
    value = r.get(LOCK_KEY)
    return int(value.decode().rsplit(":", 1)[1]) if value else None


def test_a_killed_masters_lock_is_taken_over_within_its_ttl(
    r: redis.Redis, spawn: Callable[..., Proc]
) -> None:
    env = {"LOCK_TIMEOUT": "2", "RESQUE_SCHEDULER_INTERVAL": "0.2"}
    first = spawn("scheduler", env=env, name="first")
    wait_until(lambda: _master_pid(r) == first.pid)
    second = spawn("scheduler", env=env, name="second")
    wait_until(lambda: "scheduler: started" in second.log())
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    ttl_left = r.pttl(LOCK_KEY) / 1000
    assert 0 < ttl_left <= 2
    wait_until(lambda: _master_pid(r) == second.pid, timeout=ttl_left + 1.0)
    second.signal(signal.SIGTERM)
    assert second.wait() == 0
    assert r.get(LOCK_KEY) is None  # a stopping master gives the lock up


def test_while_ours_is_master_rubys_own_scripts_do_not_make_ruby_master(r: redis.Redis) -> None:
    from tests.scheduler_fixtures import ruby_lock_scripts

    acquire, refresh = ruby_lock_scripts()
    assert "SETNX" in acquire and "GET" in refresh
    now = [1_800_000_000.0]
    ours = _service(r, "vm:4242", now)
    ours.tick(now[0])
    assert ours.lock.held
    ruby_value = scenario("s3_scheduler_moves_due_items")["lock_value_after_start"]
    assert r.eval(acquire, 1, LOCK_KEY, ruby_value) == 0
    assert r.eval(refresh, 1, LOCK_KEY, ruby_value) == 0
    assert r.get(LOCK_KEY) == b"vm:4242"
    ours.stop()
    assert r.eval(acquire, 1, LOCK_KEY, ruby_value) == 1  # released: Ruby's next loop takes it
    assert r.ttl(LOCK_KEY) == 180


def test_a_killed_ruby_masters_lock_expires_and_ours_moves_what_became_due(r: redis.Redis) -> None:
    import time

    s5 = scenario("s5_two_schedulers")
    # a Ruby master killed with kill -9: its lock stays until the TTL runs out (here 0.5 s)
    r.set(LOCK_KEY, s5["timing"]["lock_value_right_after_kill"], px=500)
    store = ScheduleStore(r, Keys("resque"))
    ours = SchedulerService(store, SchedulerOptions(poll_interval=0.05), registry=Registry())
    _delay(r, int(time.time()), "during-gap")  # due while there is no live master
    assert ours.tick(time.time()) and not ours.lock.held
    wait_until(lambda: ours.tick(time.time()) and ours.lock.held, timeout=2)
    ours.tick(time.time())
    assert r.lrange("resque:queue:mail", 0, -1) == [b'{"class":"SomeJob","args":["during-gap"]}']
    ours.stop()


def test_the_lock_key_and_value_have_rubys_shape(r: redis.Redis) -> None:
    import socket

    store = ScheduleStore(r, Keys("resque"))
    lock = MasterLock(store)
    assert lock.key == scenario("s3_scheduler_moves_due_items")["lock_key"]
    assert lock.value == f"{socket.gethostname()}:{os.getpid()}"  # Ruby's "host:pid"
    assert MasterLock(store, prefix="MyApp:").key == scenario("s7_non_default_env")["lock_key"]
    assert lock.try_acquire()
    assert r.ttl(lock.key) == 180
