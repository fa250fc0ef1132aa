"""The pool master's companions: its scheduler (delayed jobs and retries run without any other
process) and its published state (the dashboard's pools page, Prometheus on --metrics-port)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

import pyresque
from pyresque.scheduler import Delayed
from tests.helpers import Proc, wait_until

Spawn = Callable[..., Proc]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "resque-pool.yml"
    path.write_text("oracle: 1\n")
    return path


def pool(spawn: Spawn, config: Path, *extra: str) -> Proc:
    return spawn("pool", "--config", str(config), "--app", "jobapp", *extra)


def test_the_pool_runs_delayed_jobs_itself(r: redis.Redis, spawn: Spawn, config: Path) -> None:
    master = pool(spawn, config)
    wait_until(lambda: r.scard("resque:workers") == 1, 10)
    client = pyresque.Client(r, namespace="resque")
    Delayed(client).enqueue_in_with_queue("oracle", 1, "Echo", "later")
    wait_until(lambda: r.lrange("test:done", 0, -1) == [b'["later"]'], 10)
    holder = r.get("resque:resque:resque_scheduler_master_lock")
    assert holder is not None and holder.decode().endswith(f":{master.pid}")
    master.signal(15)
    assert master.wait(15) == 0, master.log()
    assert r.get("resque:resque:resque_scheduler_master_lock") is None  # released for the next


def test_no_scheduler_leaves_delayed_jobs_alone(r: redis.Redis, spawn: Spawn, config: Path) -> None:
    pool(spawn, config, "--no-scheduler")
    wait_until(lambda: r.scard("resque:workers") == 1, 10)
    due = int(time.time()) - 1
    item = '{"class":"Echo","args":["never"],"queue":"oracle"}'
    r.rpush(f"resque:delayed:{due}", item)
    r.zadd("resque:delayed_queue_schedule", {str(due): due})
    time.sleep(1.5)  # nothing to wait for: the assertion is that nothing happens
    assert r.llen(f"resque:delayed:{due}") == 1
    assert r.get("resque:resque:resque_scheduler_master_lock") is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_pool_publishes_its_state_and_serves_metrics(
    r: redis.Redis, spawn: Spawn, config: Path
) -> None:
    port = free_port()
    master = pool(spawn, config, "--metrics-port", str(port))
    key = f"resque:pool:{socket.gethostname()}:{master.pid}"
    wait_until(lambda: r.exists(key), 15)
    state = wait_until(
        lambda: (s := json.loads(r.get(key) or b"{}")) and s.get("workers") and s, 15
    )
    assert state["pid"] == master.pid
    assert state["groups"][0]["name"] == "oracle" and state["groups"][0]["desired"] == 1
    assert 0 < r.ttl(key) <= 15
    body = wait_until(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read(), 10
    ).decode()
    assert "pyresque_" in body
    master.signal(15)
    assert master.wait(15) == 0, master.log()
    wait_until(lambda: not r.exists(key), 5)  # gone from the dashboard with the master


def test_the_pools_prune_forgets_stale_redelivery_counts(
    r: redis.Redis, spawn: Spawn, config: Path
) -> None:
    now = int(time.time())
    r.hset("resque:redeliveries", mapping={"stale": f"2 {now - 3 * 86400}", "fresh": f"1 {now}"})
    pool(spawn, config)
    wait_until(lambda: not r.hexists("resque:redeliveries", "stale"), 10)
    assert r.hget("resque:redeliveries", "fresh") == f"1 {now}".encode()
