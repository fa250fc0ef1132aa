"""Redis unreachable at start and going away mid-run: clear log lines, reconnect, lose nothing."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pyresque
from harness.redis_server import RedisServer, start_redis_server
from tests.helpers import Proc, wait_until

Spawn = Callable[..., Proc]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def servers() -> Iterator[list[RedisServer]]:
    started: list[RedisServer] = []
    yield started
    for server in started:
        server.stop()


def done(server: RedisServer) -> list[bytes]:
    return list(server.client().lrange("test:done", 0, -1))


def test_worker_waits_for_redis_at_start_then_works(
    spawn: Spawn, port: int, servers: list[RedisServer]
) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{port}/0"
    proc = spawn("work", "--queues", "oracle", "--app", "jobapp", env={"REDIS_URL": url})
    wait_until(lambda: proc.log().count("unreachable") >= 2, 10)
    assert "s3cret-pw" not in proc.log()
    assert "redis://:***@127.0.0.1" in proc.log()
    assert proc.popen.poll() is None  # waiting, not crash-looping
    server = start_redis_server(port=port, password="s3cret-pw")
    servers.append(server)
    client = pyresque.Client(server.client(), namespace="resque")
    client.enqueue_to("oracle", "Echo", "after-start")
    wait_until(lambda: done(server) == [b'["after-start"]'], 15)


def test_worker_survives_a_redis_restart(
    spawn: Spawn, port: int, servers: list[RedisServer]
) -> None:
    server = start_redis_server(port=port)
    servers.append(server)
    url = f"redis://127.0.0.1:{port}/0"
    proc = spawn("work", "--queues", "oracle", "--app", "jobapp", env={"REDIS_URL": url})
    pyresque.Client(server.client(), namespace="resque").enqueue_to("oracle", "Echo", 1)
    wait_until(lambda: done(server) == [b"[1]"])
    server.stop()
    wait_until(lambda: "unreachable" in proc.log(), 10)
    server = start_redis_server(port=port)
    servers.append(server)
    wait_until(
        lambda: server.client().sismember(
            "resque:workers", f"{socket.gethostname()}:{proc.pid}:oracle"
        ),
        15,
    )
    pyresque.Client(server.client(), namespace="resque").enqueue_to("oracle", "Echo", 2)
    wait_until(lambda: done(server) == [b"[2]"], 15)
    assert proc.popen.poll() is None
    assert "reachable again" in proc.log()


def test_pool_survives_redis_being_down_at_start(
    spawn: Spawn, port: int, servers: list[RedisServer], tmp_path: Path
) -> None:
    config = tmp_path / "pool.yml"
    config.write_text("oracle: 2\n")
    url = f"redis://127.0.0.1:{port}/0"
    master = spawn("pool", "--config", str(config), "--app", "jobapp", env={"REDIS_URL": url})
    wait_until(lambda: "prune: Redis unreachable" in master.log(), 10)
    wait_until(lambda: master.log().count("unreachable") >= 4, 10)
    assert master.popen.poll() is None
    server = start_redis_server(port=port)
    servers.append(server)
    wait_until(lambda: server.client().scard("resque:workers") == 2, 15)
    pyresque.Client(server.client(), namespace="resque").enqueue_to("oracle", "Echo", "up")
    wait_until(lambda: done(server) == [b'["up"]'], 10)
    assert "Traceback" not in master.log()
