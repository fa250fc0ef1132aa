"""The shutdown deadline is absolute: a pool TERMed while Redis does not answer exits by it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.redis_server import RedisServer, start_redis_server
from tests.helpers import Proc, children_of, wait_until


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of this test's own, so that freezing it disturbs no other test."""
    server = start_redis_server()
    yield server
    os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def test_term_while_redis_is_frozen_exits_by_the_deadline(
    own_redis: RedisServer, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    config = tmp_path / "pool.yml"
    config.write_text("a: 2\nb: 2\n")
    master = spawn(
        "pool", "--config", str(config), "--app", "jobapp", "--shutdown-timeout", "4",
        env={"REDIS_URL": own_redis.url},
    )  # fmt: skip
    client = own_redis.client()
    wait_until(lambda: client.scard("resque:workers") == 4, 15)
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    began = time.monotonic()
    master.signal(signal.SIGTERM)
    code = master.wait(30)
    took = time.monotonic() - began
    assert code == 0, master.log()
    assert took < 4.0, f"exited {took:.1f}s after TERM, past --shutdown-timeout 4\n{master.log()}"
    assert children_of(master.pid) == []
    assert "the next prune recovers their jobs" in master.log()


def test_term_well_into_a_freeze_with_idle_workers_exits_by_the_deadline(
    own_redis: RedisServer, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """The master's loop is already waiting on the frozen Redis (its prune, the scheduler, the
    publisher, the scheduler's wake-up subscription: each call with its own timeout) when TERM
    comes: the calls after the signal take their timeouts from the time left, and the signal is
    handled between them, so the deadline holds."""
    config = tmp_path / "pool.yml"
    config.write_text("a: 2\n")
    master = spawn(
        "pool", "--config", str(config), "--app", "jobapp", "--shutdown-timeout", "5",
        env={"REDIS_URL": own_redis.url, "RESQUE_HEARTBEAT_INTERVAL": "1",
             "RESQUE_PRUNE_INTERVAL": "30"},
    )  # fmt: skip
    client = own_redis.client()
    wait_until(lambda: client.scard("resque:workers") == 2, 15)
    wait_until(lambda: "scheduler: " in master.log() and "recurring" in master.log(), 15)
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    # the first of the master's calls has timed out: it is on to the next ones
    wait_until(lambda: "Redis unavailable" in master.log() or "unreachable" in master.log(), 15)
    began = time.monotonic()
    master.signal(signal.SIGTERM)
    code = master.wait(30)
    took = time.monotonic() - began
    assert code == 0, master.log()
    assert took < 5.0, f"exited {took:.1f}s after TERM, past --shutdown-timeout 5\n{master.log()}"
    assert children_of(master.pid) == []
