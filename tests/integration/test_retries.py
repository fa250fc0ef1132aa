"""Retries through the delayed queue, end to end: a worker fails a job, the scheduler moves it back
when due, a worker runs it again; the count lives in Redis under resque-retry's key."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis

from tests.helpers import Proc, job_figures, wait_until

Spawn = Callable[..., Proc]


def push(r: redis.Redis, cls: str, *args: object) -> None:
    r.sadd("resque:queues", "retry")
    r.rpush(
        "resque:queue:retry", json.dumps({"class": cls, "args": list(args)}, separators=(",", ":"))
    )


def failures(r: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(v) for v in r.lrange("resque:failed", 0, -1)]


@pytest.fixture
def pool(spawn: Spawn) -> Callable[..., list[Proc]]:
    """A worker and a scheduler (polling every 0.1 s) on the retry queue."""

    def start(*extra: str) -> list[Proc]:
        return [
            spawn("work", "--queues", "retry", "--app", "retryapp", "--interval", "0.1", *extra),
            spawn("scheduler", "--interval", "0.1"),
        ]

    return start


@pytest.mark.parametrize("mode", [[], ["--in-process"]], ids=["fork", "in-process"])
def test_a_transient_failure_is_retried_until_it_succeeds(
    r: redis.Redis, pool: Callable[..., list[Proc]], mode: list[str]
) -> None:
    push(r, "Flaky", "m")
    pool(*mode)
    wait_until(lambda: r.lrange("test:done", 0, -1) == [b"m"], 20)
    assert r.get("test:attempts:Flaky") == b"3"
    assert failures(r) == []
    assert r.get("resque:stat:failed") == b"2"  # two attempts raised
    wait_until(lambda: r.exists("resque:resque-retry:Flaky:m") == 0, 5)  # forgotten on success
    # every attempt is in the per-job figures, the two that raised as failures
    wait_until(lambda: job_figures(r, "Flaky") == (3, 2), 5)


def test_after_the_last_attempt_the_job_is_an_ordinary_failure(
    r: redis.Redis, pool: Callable[..., list[Proc]]
) -> None:
    push(r, "Doomed", "x")
    pool()
    wait_until(lambda: len(failures(r)) == 1, 30)
    [record] = failures(r)
    assert record["exception"] == "retryapp.TransientError"
    assert record["error"] == "always fails: x (after 3 attempts)"
    assert record["payload"] == {"class": "Doomed", "args": ["x"]}
    assert r.get("test:attempts:Doomed") == b"3"
    assert r.exists("resque:resque-retry:Doomed:x") == 0


def test_an_exception_outside_the_policy_fails_at_once(
    r: redis.Redis, pool: Callable[..., list[Proc]]
) -> None:
    push(r, "Picky", "p")
    pool()
    wait_until(lambda: len(failures(r)) == 1, 15)
    assert r.get("test:attempts:Picky") == b"1"
    assert r.zcard("resque:delayed_queue_schedule") == 0


def test_a_retry_waits_in_the_delayed_queue_where_ruby_can_see_it(
    r: redis.Redis, spawn: Spawn
) -> None:
    push(r, "Later", 1, "two")
    began = time.time()
    worker = spawn("work", "--queues", "retry", "--app", "retryapp", "--burst")
    assert worker.wait(15) == 0, worker.log()
    ended = time.time()
    [(member, score)] = r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True)
    # 600 s after the failure, rounded up to the second: never before, at most a second after
    assert int(member) == int(score) and began + 600 <= score <= ended + 601
    item = '{"class":"Later","args":[1,"two"],"queue":"retry"}'
    assert r.lrange(f"resque:delayed:{int(score)}", 0, -1) == [item.encode()]
    assert r.smembers(f"resque:timestamps:{item}") == {f"delayed:{int(score)}".encode()}
    assert r.get("resque:resque-retry:Later:1-two") == b"1"  # resque-retry's key and count
    assert r.keys("resque:inflight:*") == []  # acknowledged in the same call
    assert failures(r) == []


def test_a_timed_out_job_is_retried_by_its_policy(
    r: redis.Redis, pool: Callable[..., list[Proc]]
) -> None:
    push(r, "SlowThenFast", "t")
    pool()
    wait_until(lambda: r.lrange("test:done", 0, -1) == [b"t"], 20)
    assert r.get("test:attempts:SlowThenFast") == b"2"
    assert failures(r) == []
