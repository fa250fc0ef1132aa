"""The janitor on its own: clean-ups retried with backoff while Redis refuses, done once it
answers, and none started after a shutdown deadline. A stepped clock; a real Redis."""

from __future__ import annotations

import socket

import pytest
import redis

from harness.redis_server import RedisServer
from pyresque.pool.clients import PoolClients
from pyresque.pool.janitor import Janitor
from pyresque.settings import WorkerSettings

JOB = '{"class":"J","args":[]}'


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens there any more


def dead_worker(r: redis.Redis, wid: str = "h:1:q") -> str:
    r.sadd("resque:workers", wid)
    r.hset(f"resque:inflight:{wid}", "q", JOB)
    r.sadd("resque:inflight-workers", wid)
    return wid


def test_a_refused_clean_up_waits_longer_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    janitor = Janitor(PoolClients(closed_port_url(), "resque"), WorkerSettings(), clock)
    janitor.worker_died("h:1:q", "killed by SIGKILL", count_delivery=True)
    assert janitor.left_undone() == ["h:1:q"]
    attempts = caplog.text.count("Redis unreachable or refusing")
    assert attempts == 1
    for step, expected in [(0.4, 1), (0.2, 2), (0.9, 2), (0.2, 3), (1.9, 3), (0.2, 4)]:
        clock.now += step  # due after 0.5 s, then 1 s, then 2 s
        janitor.retry_pending()
        assert caplog.text.count("Redis unreachable or refusing") == expected, step


def test_a_clean_up_puts_the_job_back_and_unregisters(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    wid = dead_worker(r)
    janitor = Janitor(PoolClients(redis_server.url, "resque"), WorkerSettings(), Clock())
    janitor.worker_died(wid, "killed by SIGKILL", count_delivery=False)
    assert janitor.left_undone() == []
    assert r.lrange("resque:queue:q", 0, -1) == [JOB.encode()]
    assert not r.sismember("resque:workers", wid)


def test_after_the_deadline_nothing_touches_redis(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    clock = Clock()
    wid = dead_worker(r)
    janitor = Janitor(PoolClients(redis_server.url, "resque"), WorkerSettings(), clock)
    janitor.finish_by(clock.now + 0.01)
    janitor.worker_died(wid, "killed by SIGKILL", count_delivery=False)
    janitor.prune(clock.now)
    assert janitor.busy_records([wid]) == {}
    assert janitor.left_undone() == [wid]
    assert r.hget(f"resque:inflight:{wid}", "q") == JOB.encode()  # for the next prune
    assert not r.exists("resque:pruning_dead_workers_in_progress")
