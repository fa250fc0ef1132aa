"""Another Resque client's workers beside a pool on one host: pruned only when surely dead.

A node-resque worker registers as ``host:pid:queues`` in ``workers``, writes
``worker:<id>:started`` (epoch seconds), a busy record whose ``run_at`` is JavaScript's date text
and its own ``worker:ping:<name>`` keys, but never Resque's ``workers:heartbeat``; its process is
``node``, not a ``resque-<version>`` title.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from harness.redis_server import RedisServer
from pyresque.cli.status import status_data
from pyresque.pool.clients import PoolClients
from pyresque.pool.janitor import Janitor
from pyresque.settings import WorkerSettings
from pyresque.store.operations import Store
from pyresque.web.data import worker_rows
from pyresque.wire import protocol

GONE_PID = 4194000  # above pid_max: no such process
STARTED_SECONDS = 1796698678  # 2026-12-08 as node-resque writes it


@pytest.fixture
def other_process() -> Iterator[int]:
    """A live process of this host that is not a Resque process (as a ``node`` one is not)."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def register_like_node_resque(r: redis.Redis, pid: int, queues: str = "emails,reports") -> str:
    """What node-resque's worker writes at its start and when it takes a job."""
    name = f"{socket.gethostname()}:{pid}"
    worker_id = f"{name}:{queues}"
    r.sadd("resque:workers", worker_id)
    r.set(f"resque:worker:{worker_id}:started", STARTED_SECONDS)
    ping = {"time": int(time.time()), "name": name, "queues": queues}
    r.set(f"resque:worker:ping:{name}", json.dumps(ping))
    busy = {
        "run_at": time.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)"),
        "queue": "emails",
        "worker": name,
        "payload": {"class": "sendEmail", "queue": "emails", "args": [1]},
    }
    r.set(f"resque:worker:{worker_id}", json.dumps(busy))
    return worker_id


def register_with_heartbeat(r: redis.Redis, pid: int) -> str:
    """A worker that writes Resque's heartbeats (Ruby's, ours), beating now."""
    worker_id = f"{socket.gethostname()}:{pid}:oracle"
    r.sadd("resque:workers", worker_id)
    r.hset("resque:workers:heartbeat", worker_id, protocol.heartbeat_time(time.time()))
    return worker_id


def janitor_prune(redis_server: RedisServer) -> None:
    """One prune of a pool master's janitor (it prunes as a ``*`` worker of this host)."""
    Janitor(PoolClients(redis_server.url, "resque"), WorkerSettings()).prune(0.0)


@pytest.mark.parametrize("pid", ["live", "gone"])
def test_a_node_resque_worker_on_this_host_is_never_pruned(
    r: redis.Redis, redis_server: RedisServer, other_process: int, pid: str
) -> None:
    worker_id = register_like_node_resque(r, other_process if pid == "live" else GONE_PID)
    janitor_prune(redis_server)
    assert r.sismember("resque:workers", worker_id)
    assert r.exists(f"resque:worker:{worker_id}")  # its running job stays its own
    assert r.llen("resque:failed") == 0  # no DirtyExit record for a retry to duplicate


@pytest.mark.parametrize(
    ("pid", "seen"), [("live", "not a resque process"), ("gone", "no such process")]
)
def test_a_heartbeat_writer_whose_pid_is_not_a_worker_is_pruned_saying_what_was_seen(
    r: redis.Redis,
    redis_server: RedisServer,
    other_process: int,
    caplog: pytest.LogCaptureFixture,
    pid: str,
    seen: str,
) -> None:
    caplog.set_level(logging.INFO)
    worker_id = register_with_heartbeat(r, other_process if pid == "live" else GONE_PID)
    janitor_prune(redis_server)
    assert not r.sismember("resque:workers", worker_id)
    assert f"Pruning dead worker: {worker_id} ({seen})" in caplog.text


def test_status_and_the_dashboard_show_node_resques_started_as_a_time(
    r: redis.Redis, store: Store, other_process: int
) -> None:
    worker_id = register_like_node_resque(r, other_process)
    shown = protocol.started_time(STARTED_SECONDS)
    [worker] = status_data(store)["workers"]
    assert (worker["id"], worker["started"]) == (worker_id, shown)
    [row] = worker_rows(store)
    assert row.started == shown and row.job is not None and row.job.klass == "sendEmail"
