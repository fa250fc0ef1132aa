"""Payloads a worker cannot represent, hooks that fail, Redis refusing: nothing crashes, loops or
is lost, and the user is told what is wrong."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

import pytest
import redis

from harness.redis_server import start_redis_server
from pyresque.store.operations import Store
from tests.helpers import Proc, wait_until

Spawn = Callable[..., Proc]

HOSTILE = ["[1e999]", '{"class":"Nope","args":[1e999]}', '{"class":5,"x":-1e999}']


def failures(r: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(v) for v in r.lrange("resque:failed", 0, -1)]


@pytest.mark.parametrize("mode", ["fork", "in-process"])
def test_unrepresentable_payloads_become_failures_and_the_queue_moves_on(
    r: redis.Redis, spawn: Spawn, mode: str
) -> None:
    r.sadd("resque:queues", "oracle")
    r.rpush("resque:queue:oracle", *HOSTILE, '{"class":"Echo","args":["good"]}')
    extra = ["--in-process"] if mode == "in-process" else []
    proc = spawn("work", "--queues", "oracle", "--app", "jobapp", "--burst", *extra)
    assert proc.wait(20) == 0, proc.log()
    assert r.lrange("test:done", 0, -1) == [b'["good"]']
    records = failures(r)
    assert [rec["payload"] for rec in records] == HOSTILE  # the original bytes, as text
    assert {rec["exception"] for rec in records} == {"pyresque.errors.PayloadError"}
    assert r.get("resque:stat:processed") == b"4"


def test_recovery_of_an_unrepresentable_in_flight_job_does_not_fail(
    r: redis.Redis, store: Store, spawn: Spawn
) -> None:
    """A dead worker held a job with ``"meta":1e999``: prune puts it back, the worker fails it."""
    dead = "otherhost:99:oracle"
    held = '{"class":"Echo","args":[],"meta":1e999}'
    store.register_worker(dead, time.time() - 1000)
    r.hset("resque:workers:heartbeat", dead, "2000-01-01T00:00:00+00:00")
    r.hset(f"resque:inflight:{dead}", "oracle", held)
    r.sadd("resque:inflight-workers", dead)
    proc = spawn("work", "--queues", "oracle", "--app", "jobapp", "--burst")
    assert proc.wait(20) == 0, proc.log()
    assert r.exists(f"resque:inflight:{dead}") == 0
    [record] = failures(r)
    assert record["payload"] == held


def test_a_hook_that_raises_is_a_boot_failure_not_an_outage(r: redis.Redis, spawn: Spawn) -> None:
    proc = spawn("work", "--queues", "oracle", "--app", "badhookapp")
    assert proc.wait(10) == 3, proc.log()
    assert "unreachable" not in proc.log()
    assert "the app's own file is missing" in proc.log()
    assert r.smembers("resque:workers") == set()


def test_a_refused_password_ends_the_worker_at_once(spawn: Spawn) -> None:
    server = start_redis_server(password="right")
    try:
        url = f"unix://{server.socket_path}?db=0&password=wrong"
        proc = spawn("work", "--queues", "q", "--redis", url)
        assert proc.wait(10) == 2, proc.log()
        assert "authentication failed" in proc.log()
        assert "wrong" not in proc.log()
        assert "could not unregister" not in proc.log()
    finally:
        server.stop()


def test_burst_mode_gives_up_on_an_unreachable_redis(spawn: Spawn, tmp_path: object) -> None:
    url = f"unix://{tmp_path}/nobody.sock?db=0"
    proc = spawn(
        "work", "--queues", "q", "--burst", "--redis", url, env={"RESQUE_BURST_REDIS_TIMEOUT": "1"}
    )
    assert proc.wait(15) == 1, proc.log()
    assert "burst mode gives up" in proc.log()
    assert "could not unregister" not in proc.log()  # it never registered


def test_a_worker_stops_cleanly_under_maxmemory(r: redis.Redis, spawn: Spawn) -> None:
    proc = spawn("work", "--queues", "oracle", "--app", "jobapp")
    wait_until(lambda: [c for c in r.client_list() if c.get("cmd") == "blmove"], 10)
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", str(used // 2))
    try:
        proc.signal(15)
        assert proc.wait(10) == 0, proc.log()
        assert "could not unregister" not in proc.log()
    finally:
        r.config_set("maxmemory", "0")
    assert r.smembers("resque:workers") == set()


def test_redelivery_counts_are_not_shared_by_identical_payloads_forever(
    r: redis.Redis, store: Store
) -> None:
    job = '{"class":"Echo","args":[]}'
    sha = hashlib.sha1(job.encode()).hexdigest()
    r.hset("resque:redeliveries", sha, f"2 {int(time.time()) - 2 * 24 * 3600}")
    assert store.prune_redeliveries() == 1
    assert r.hexists("resque:redeliveries", sha) == 0


def test_prune_survives_a_busy_record_nested_too_deep_to_parse(
    r: redis.Redis, store: Store
) -> None:
    """A dead worker's busy record 100,000 levels deep must not make every prune fail."""
    from pyresque.worker.queues import QueueSelector
    from pyresque.worker.recovery import WorkerId, prune_dead_workers

    dead = "otherhost:99:oracle"
    store.register_worker(dead, time.time() - 1000)
    r.hset("resque:workers:heartbeat", dead, "2000-01-01T00:00:00+00:00")
    deep = "[" * 100_000 + "]" * 100_000
    r.set(f"resque:worker:{dead}", deep)
    me = WorkerId("here", 1, "oracle")
    pruned = prune_dead_workers(store, me, QueueSelector.parse("oracle"), now=time.time())
    assert pruned == [dead]
    [record] = failures(r)
    assert record["payload"] == deep  # kept as it was
