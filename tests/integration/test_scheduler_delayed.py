"""The delayed-job API beyond Ruby's calls: raw payloads (retries), dynamic schedules as Ruby writes
them, and the wake-up that makes a sleeping scheduler punctual for short-notice jobs."""

from __future__ import annotations

import select
import time
from typing import Any

import pytest
import redis

import pyresque
from pyresque.errors import ConfigError
from pyresque.jobs import client as client_module
from pyresque.jobs.client import Client
from pyresque.jobs.registry import Registry
from pyresque.scheduler import remove_schedule, set_schedule
from pyresque.scheduler.delayed import Delayed
from pyresque.scheduler.service import SchedulerOptions, SchedulerService, scheduler_connection
from pyresque.scheduler.store import ScheduleStore
from pyresque.wire.keys import Keys
from tests.scheduler_fixtures import call


def _noop(*_args: Any) -> None:
    return None


def test_a_raw_payload_is_delayed_and_comes_back_with_its_extra_keys(r: redis.Redis) -> None:
    now = [1_800_000_000.0]
    api = Delayed(Client(r, namespace="resque", registry=Registry()), lambda: now[0])
    payload = '{"class":"Ruby::Job","args":[1,2.0],"id":"abc"}'
    api.enqueue_payload_at(now[0] + 30, "retry", payload)
    [job] = api.jobs()
    assert job.item == '{"class":"Ruby::Job","args":[1,2.0],"queue":"retry","id":"abc"}'
    assert (job.timestamp, job.queue) == (1_800_000_030, "retry")
    service = SchedulerService(
        ScheduleStore(r, Keys("resque")), registry=Registry(), clock=lambda: now[0]
    )
    now[0] += 30
    service.tick(now[0])
    assert r.lrange("resque:queue:retry", 0, -1) == [payload.encode()]
    api.enqueue_payload_at(now[0] - 5, "retry", payload)  # not in the future: at once
    assert r.llen("resque:queue:retry") == 2


def test_dynamic_schedules_are_written_as_ruby_writes_them(
    r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module.DEFAULT_CLIENT, "_value", None)  # restored after the test
    pyresque.configure(redis_client=r, namespace="resque")
    ruby = call(
        "s4_recurring_schedules",
        'Resque.set_schedule("dyn", {"class"=>"SomeJob", "every"=>"3s", "queue"=>"dynq", '
        '"args"=>{"h"=>1}, "persist"=>true})',
    )
    config = {"class": "SomeJob", "every": "3s", "queue": "dynq", "args": {"h": 1}, "persist": True}
    set_schedule("dyn", config)
    assert r.hget("resque:persistent_schedules", "dyn").decode() == ruby["redis"][0][3]
    assert r.smembers("resque:schedules_changed") == {b"dyn"}
    remove_schedule("dyn")
    assert not r.hexists("resque:persistent_schedules", "dyn")
    with pytest.raises(ConfigError):
        set_schedule("bad", {"class": "X"})


def test_a_short_notice_job_wakes_the_sleeping_scheduler(r: redis.Redis) -> None:
    options = SchedulerOptions(poll_interval=30)  # the poll alone would come far too late
    service = SchedulerService(ScheduleStore(r, Keys("resque")), options, registry=Registry())
    registry = Registry()
    registry.register("SomeJob", _noop, "mail")
    api = Delayed(Client(r, namespace="resque", registry=registry))
    now = api.clock()
    service.tick(now)
    fd = service.fileno()
    assert fd is not None
    assert select.select([fd], [], [], 0)[0] == []
    api.enqueue_at(int(now) + 2, "SomeJob", 1)
    assert select.select([fd], [], [], 5)[0] == [fd]  # the wake-up arrives
    assert service.tick(now + 0.01) == int(now) + 2  # and the next wake is the job's second
    service.stop()


def test_a_scheduler_without_redis_waits_and_holds_nothing(tmp_path: Any) -> None:
    gone = scheduler_connection(f"unix://{tmp_path / 'no-such.sock'}")
    service = SchedulerService(ScheduleStore(gone, Keys("resque")), registry=Registry())
    now = 1_800_000_000.0
    started = time.monotonic()
    assert service.tick(now) == now + 1.0  # tries again in a second, does not raise
    assert not service.lock.held
    assert service.fileno() is None
    assert time.monotonic() - started < 1.0  # no backoff inside redis-py: the loop stays live


def test_schedule_hooks_run_and_can_cancel(r: redis.Redis) -> None:
    calls: list[str] = []

    class Mailer:
        queue = "mail"

        @staticmethod
        def perform(*_args: Any) -> None:
            return None

        @staticmethod
        def before_schedule_check(user: int) -> bool:
            calls.append(f"before {user}")
            return user != 0

        @staticmethod
        def after_schedule_log(user: int) -> None:
            calls.append(f"after {user}")

    registry = Registry()
    registry.register("Mailer", Mailer)
    api = Delayed(Client(r, namespace="resque", registry=registry), lambda: 1_800_000_000.0)
    assert api.enqueue_in(60, Mailer, 5) is True
    assert api.enqueue_in(60, Mailer, 0) is False
    assert calls == ["before 5", "after 5", "before 0"]
    assert api.count() == 1


def test_a_refused_move_changes_nothing_and_is_retried_at_the_next_poll(r: redis.Redis) -> None:
    store = ScheduleStore(r, Keys("resque"))
    store.push_delayed(1_800_000_000, '{"class":"K","args":[1],"queue":"fine"}')
    store.push_delayed(1_800_000_000, '{"class":"K","args":[2],"queue":"broken"}')
    r.set("resque:queue:broken", "not a list")  # an RPUSH to it would fail inside the script
    service = SchedulerService(store, SchedulerOptions(poll_interval=5), registry=Registry())
    now = 1_800_000_001.0
    assert service.tick(now) == now + 5  # no spin: the next try is the next poll
    assert r.llen("resque:delayed:1800000000") == 2  # the batch changed nothing at all
    assert not r.exists("resque:queue:fine")
    assert r.smembers('resque:timestamps:{"class":"K","args":[1],"queue":"fine"}')
    r.delete("resque:queue:broken")
    service.tick(now + 5)
    assert r.lrange("resque:queue:fine", 0, -1) == [b'{"class":"K","args":[1]}']
    assert r.lrange("resque:queue:broken", 0, -1) == [b'{"class":"K","args":[2]}']
    assert not r.exists("resque:delayed:1800000000")


def test_a_refusal_that_passes_is_one_log_line_and_a_data_error_a_traceback(
    r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A full server (as in a failover or a load: it passes) is a warning without a traceback at
    every poll; a key of the wrong type (something is wrong) keeps its traceback."""
    store = ScheduleStore(r, Keys("resque"))
    service = SchedulerService(store, SchedulerOptions(poll_interval=5), registry=Registry())
    now = 1_800_000_001.0
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", 1)  # every write refused: OOM command not allowed ...
    try:
        with caplog.at_level("WARNING", logger="pyresque.scheduler"):
            assert service.tick(now) == now + 5
    finally:
        r.config_set("maxmemory", 0)
    [refused] = [rec for rec in caplog.records if "refused" in rec.getMessage()]
    assert refused.levelname == "WARNING" and refused.exc_info is None
    assert "maxmemory" in refused.getMessage()
    caplog.clear()
    store.push_delayed(1_800_000_000, '{"class":"K","args":[2],"queue":"broken"}')
    r.set("resque:queue:broken", "not a list")
    with caplog.at_level("WARNING", logger="pyresque.scheduler"):
        service.tick(now + 5)
    [wrong] = [rec for rec in caplog.records if "refused" in rec.getMessage()]
    assert wrong.levelname == "ERROR" and wrong.exc_info is not None
