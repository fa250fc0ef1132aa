from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import settings

from harness.redis_server import RedisServer, start_redis_server
from pyresque.store.operations import Store
from pyresque.wire.keys import Keys
from tests.helpers import Proc

# Property tests explore new examples on every local run; in CI (CI=true) they replay the same
# ones, so a submission is never refused by an example nobody has seen (the fuzz/ targets and
# local runs are where new ones are found).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis_server()
    yield server
    server.stop()


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the private server, emptied before each test (it is ours to flush)."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def store(r: redis.Redis) -> Store:
    return Store(r, Keys("resque"))


@pytest.fixture
def spawn(
    redis_server: RedisServer, r: redis.Redis, tmp_path: Path
) -> Iterator[Callable[..., Proc]]:
    """Start ``python -m pyresque ARGS`` against the private server (emptied first, through
    ``r``); everything is killed after."""
    procs: list[Proc] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        name: str = "proc",
        preexec: Callable[[], None] | None = None,
    ) -> Proc:
        base = {"REDIS_URL": redis_server.url, "RESQUE_NAMESPACE": "resque"}
        log_path = tmp_path / f"{name}-{len(procs)}.log"
        proc = Proc(list(args), {**base, **(env or {})}, log_path, preexec)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
