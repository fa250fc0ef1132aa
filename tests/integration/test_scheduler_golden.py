"""Golden tests: pyresque's delayed jobs and scheduler against what Ruby resque-scheduler 5.0.0
wrote (``tests/fixtures/resque-scheduler-5.0.0``): the same calls must leave the same keys, byte
for byte, and items Ruby delayed must reach their queues as Ruby's scheduler pushes them."""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from pyresque.jobs.client import Client
from pyresque.jobs.registry import Registry
from pyresque.scheduler.delayed import Delayed
from pyresque.scheduler.service import SchedulerOptions, SchedulerService
from pyresque.scheduler.store import ScheduleStore
from pyresque.wire.keys import Keys
from tests.helpers import Proc, wait_until
from tests.scheduler_fixtures import call, dump_keys, replay, scenario


def _noop(*_args: Any) -> None:
    return None


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def delayed(r: redis.Redis) -> tuple[Delayed, Clock]:
    """Delayed-job API with Ruby's two job classes (SomeJob on mail, OtherJob on low)."""
    registry = Registry()
    registry.register("SomeJob", _noop, "mail")
    registry.register("OtherJob", _noop, "low")
    clock = Clock(0.0)
    return Delayed(Client(r, namespace="resque", registry=registry), clock), clock


def test_a_fractional_time_is_rounded_up(r: redis.Redis, delayed: tuple[Delayed, Clock]) -> None:
    """Ruby stores ``Time.at(1800000300.75)`` under 1800000300, 0.75 s early; we store it under
    1800000301, the first second in which it is due, and Ruby's scheduler reads either."""
    api, clock = delayed
    clock.now = 1800000000.5
    api.enqueue_at(1800000300.75, "SomeJob", "frac")
    api.enqueue_in(0.25, "SomeJob", "soon")  # due at 1800000000.75: stored under ...001
    assert api.scheduled_at("SomeJob", "frac") == [1800000301]
    assert api.scheduled_at("SomeJob", "soon") == [1800000001]
    assert r.llen("resque:queue:mail") == 0


def test_enqueue_at_writes_what_ruby_writes(r: redis.Redis, delayed: tuple[Delayed, Clock]) -> None:
    api, clock = delayed
    s1 = "s1_enqueue_at"
    # Ruby truncates a fractional time (Time#to_i); we round up, so that a job never runs early.
    # The clock is given in Ruby's whole second, and the fractional time its whole one, so that
    # both write the same bytes; test_a_fractional_time_is_rounded_up shows the difference.
    clock.now = call(s1, 'Resque.enqueue_at(Time.at(1800000000), SomeJob, 1, "two", {"k"=>3.5})')[
        "clock_before"
    ]
    assert api.enqueue_at(1800000000, "SomeJob", 1, "two", {"k": 3.5}) is True
    clock.now = math.floor(call(s1, "Resque.enqueue_in(60, SomeJob, 2)")["clock_before"])
    api.enqueue_in(60, "SomeJob", 2)
    api.enqueue_at_with_queue("other", 1800000000, "SomeJob", 3)
    clock.now = math.floor(
        call(s1, "Resque.enqueue_in_with_queue('other', 120, SomeJob, 4)")["clock_before"]
    )
    api.enqueue_in_with_queue("other", 120, "SomeJob", 4)
    for arg in ("a", "b", "a"):
        api.enqueue_at(1800000100, "SomeJob", arg)
    api.enqueue_at(1800000200, "SomeJob", "a")
    api.enqueue_at(1800000300, "SomeJob", "frac")  # Ruby's 1800000300.75, truncated
    api.enqueue_at(
        1800000400, "OtherJob", "sym", None, True, "é ✓", {"b": 1, "a": [2.0, 1e20, -0.5]}
    )
    assert api.enqueue_at(1000000000, "SomeJob", "past") is True  # in the past: queued at once

    assert dump_keys(r) == scenario(s1)["key_dump_after"]
    assert api.timestamp_count() == 7
    assert api.store.timestamp_size(1800000000) == 2
    assert api.store.timestamp_size(1800000100) == 3
    assert api.count() == 10
    assert sorted(api.scheduled_at("SomeJob", "a")) == [1800000100, 1800000200]
    assert api.is_delayed("SomeJob", "a")
    assert not api.is_delayed("SomeJob", 3)  # delayed on "other", looked up on the class queue
    assert api.store.timestamps(0, 10) == [
        1795969295,
        1795969355,
        1800000000,
        1800000100,
        1800000200,
        1800000300,
        1800000400,
    ]


def test_removing_delayed_jobs_as_ruby_does(r: redis.Redis, delayed: tuple[Delayed, Clock]) -> None:
    api, clock = delayed
    clock.now = 1795969235.0
    job = ("SomeJob", 1, "two", {"k": 3.5})
    api.enqueue_at(1800000000, *job)
    api.enqueue_at(1800000000, *job)
    api.enqueue_at(1800000060, *job)
    api.enqueue_at(1800000000, "SomeJob", 2)
    api.enqueue_at_with_queue("other", 1800000000, *job)
    api.enqueue_at(1800000120, "SomeJob", 7, "sel")
    api.enqueue_at(1800000120, "SomeJob", 8, "sel")
    api.enqueue_at(1800000180, "OtherJob", 7, "sel")
    assert sorted(api.scheduled_at(*job)) == [1800000000, 1800000060]
    found = api.find_selection(lambda args: args[1:2] == ["sel"])
    assert [j.item for j in found] == call(
        "s2_remove_delayed", 'Resque.find_delayed_selection { |args| args[1] == "sel" }'
    )["returned"]

    assert api.remove_delayed(*job) == 3
    assert not api.is_delayed(*job)
    assert api.timestamp_count() == 4  # the emptied timestamp stays until a scheduler reaches it
    assert api.remove_delayed(*job, queue="other") == 1
    assert api.remove_selection(lambda args: args[1:2] == ["sel"], "SomeJob") == 2
    assert api.remove_delayed_at(1800000000, "SomeJob", 2) == 1
    assert api.enqueue_selection(lambda args: args[:1] == [7]) == 1
    api.delay_or_enqueue_at(1800000240, "SomeJob", 9)
    api.delay_or_enqueue_at(1800000300, "SomeJob", 9)
    api.enqueue_at(1800000360, "SomeJob", 10)
    assert dump_keys(r) == scenario("s2_remove_delayed")["key_dump_before_reset"]

    api.reset()
    assert dump_keys(r) == scenario("s2_remove_delayed")["key_dump_after"]


def _service(r: redis.Redis, clock: Clock, **options: Any) -> SchedulerService:
    store = ScheduleStore(r, Keys("resque"))
    return SchedulerService(store, SchedulerOptions(**options), registry=Registry(), clock=clock)


def test_items_ruby_delayed_are_queued_as_ruby_queues_them(r: redis.Redis) -> None:
    s3 = scenario("s3_scheduler_moves_due_items")
    replay(r, s3["calls"])
    clock = Clock(s3["due_timestamp"] - 0.5)
    service = _service(r, clock)
    wake = service.tick(clock.now)
    assert service.lock.held
    assert wake == s3["due_timestamp"]  # it sleeps until the due second, exactly
    assert r.llen("resque:queue:mail") == 0
    clock.now = s3["due_timestamp"] + 0.001
    service.tick(clock.now)
    service.stop()
    assert dump_keys(r) == s3["key_dump_after"]
    assert service.moved == 4


def test_batches_of_two_as_ruby_with_delayed_requeue_batch_size(r: redis.Redis) -> None:
    s7 = scenario("s7_non_default_env")
    replay(r, s7["calls"])
    clock = Clock(s7["due_timestamp"] + 1)
    service = _service(r, clock, batch_size=2, lock_prefix="MyApp:", lock_timeout=5)
    service.tick(clock.now)
    assert r.ttl(s7["lock_key"]) == 5
    service.stop()
    assert dump_keys(r) == s7["key_dump_after"]


def test_dynamic_schedules_ruby_persisted_fire_as_ruby_fires_them(r: redis.Redis) -> None:
    s4 = scenario("s4_recurring_schedules")
    dynamic = [c for c in s4["calls"] if "persist" in c["call"]]
    replay(r, dynamic)
    clock = Clock(1795969300.0)
    service = _service(r, clock)
    service.tick(clock.now)
    assert set(service.schedule.entries) == {"dyn", "dyn_py", "dyn_noqueue"}
    assert r.scard("resque:schedules_changed") == 0  # a dynamic master reads all, then clears
    clock.now += 3.1  # every entry is due once (3s, 2s with first_in 1s, 2s)
    service.tick(clock.now)
    after = s4["key_dump_after"]
    for queue in ("resque:queue:dynq", "resque:queue:py"):
        assert [v.decode() for v in r.lrange(queue, 0, -1)] == after[queue]["value"][:1]
    # no queue and a class nobody knows: nothing pushed, but the fire is recorded, as in Ruby
    assert r.hexists("resque:delayed:last_enqueued_at", "dyn_noqueue")
    recorded = r.hget("resque:delayed:last_enqueued_at", "dyn").decode()
    assert len(recorded) == len(after["resque:delayed:last_enqueued_at"]["value"]["dyn"])
    assert recorded.endswith(("+0000", "-0000")) or recorded[-5] in "+-"


def test_ruby_lock_scripts_have_the_shas_ruby_runs() -> None:
    from hashlib import sha1

    from pyresque.scheduler.scripts import acquire_lock_script, refresh_lock_script
    from tests.scheduler_fixtures import lock_script_shas

    ours = {sha1(f(180).encode()).hexdigest() for f in (acquire_lock_script, refresh_lock_script)}
    assert ours == lock_script_shas("s3_scheduler_moves_due_items")
    ours5 = {sha1(f(5).encode()).hexdigest() for f in (acquire_lock_script, refresh_lock_script)}
    assert ours5 <= lock_script_shas("s7_non_default_env")


def test_a_ruby_apps_enqueue_at_is_performed_by_pyresque(
    r: redis.Redis, spawn: Callable[..., Proc]
) -> None:
    s3 = scenario("s3_scheduler_moves_due_items")
    due = int(time.time()) + 1
    # Ruby's own commands for Resque.enqueue_at(…, SomeJob, 1, "two", {"k"=>3.5}), moved to a
    # second that is about to come
    ruby = call("s3_scheduler_moves_due_items", f"Resque.enqueue_at(Time.at({s3['due_timestamp']}), "
                'SomeJob, 1, "two", {"k"=>3.5})')  # fmt: skip
    commands = json.loads(json.dumps(ruby["redis"]).replace(str(s3["due_timestamp"]), str(due)))
    replay(r, [{"redis": commands}])
    scheduler = spawn("scheduler", name="scheduler")
    worker = spawn("work", "--queues", "mail", "--app", "schedapp", name="worker")
    wait_until(lambda: r.llen("resque:test:performed") == 1, timeout=15)
    assert json.loads(r.lindex("resque:test:performed", 0)) == [1, "two", {"k": 3.5}]
    assert time.time() >= due
    for proc in (scheduler, worker):
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    assert r.zcard("resque:delayed_queue_schedule") == 0
