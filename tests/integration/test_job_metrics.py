"""A real worker's per-job figures: added up in the worker, written about once a second, and
never held back by a long job, nor lost when the worker goes idle or stops."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
import redis

from harness.redis_server import RedisServer
from pyresque.wire.jobmetrics import bucket_of
from tests.helpers import Proc, job_figures, wait_until
from tests.integration.test_worker import push, strings, work

Spawn = Callable[..., Proc]

MODES = {"fork": {}, "in-process": {"FORK_PER_JOB": "false"}}


def finished(r: redis.Redis, job_class: str) -> int:
    return job_figures(r, job_class)[0]


@pytest.mark.parametrize("mode", MODES)
def test_figures_of_finished_jobs_are_written_while_a_long_job_runs(
    r: redis.Redis, spawn: Spawn, mode: str
) -> None:
    for i in range(30):
        push(r, "oracle", {"class": "Echo", "args": [i]})
    push(r, "oracle", {"class": "Sleepy", "args": [8, "long"]})
    proc = work(spawn, "oracle", env=MODES[mode])
    wait_until(lambda: strings(r, "test:started") == ["long"], timeout=15)
    # the quick jobs' figures are out within about a second, long before the long job ends
    wait_until(lambda: finished(r, "Echo") == 30, timeout=4)
    assert '"long"' not in strings(r, "test:done"), proc.log()
    # the long job's own figures are written once it is done and the worker is idle
    wait_until(lambda: finished(r, "Sleepy") == 1, timeout=15)
    hashes = [r.hgetall(k) for k in r.scan_iter("resque:metrics:jobs:*")]
    assert sum(int(h.get(f"Sleepy|h{bucket_of(8000)}".encode(), 0)) for h in hashes) == 1
    assert all(r.ttl(k) > 0 for k in r.scan_iter("resque:metrics:jobs:*"))
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.log()


@pytest.mark.parametrize("mode", MODES)
def test_a_burst_worker_writes_every_figure_before_it_exits(
    r: redis.Redis, spawn: Spawn, mode: str
) -> None:
    for i in range(200):
        push(r, "oracle", {"class": "Echo", "args": [i]})
    for i in range(3):
        push(r, "oracle", {"class": "Boom", "args": [i]})
    r.config_resetstat()
    proc = work(spawn, "oracle", "--burst", env=MODES[mode])
    assert proc.wait() == 0, proc.log()
    assert r.get("resque:stat:processed") == b"203"
    assert job_figures(r, "Echo") == (200, 0)
    assert job_figures(r, "Boom") == (3, 3)
    # fewer writes than jobs: the figures were added up, not written job by job
    calls = r.info("commandstats").get("cmdstat_hincrby", {}).get("calls", 0)
    assert 0 < calls < 200


def test_figures_refused_by_redis_are_dropped_and_the_worker_goes_on(
    r: redis.Redis, spawn: Spawn, redis_server: RedisServer
) -> None:
    # a user that may do everything but HINCRBY: the figures' writes fail, nothing else does
    r.acl_setuser(
        "nofigures",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-hincrby"],
    )
    try:
        for i in range(20):
            push(r, "oracle", {"class": "Echo", "args": [i]})
        url = f"unix://nofigures:pw@{redis_server.socket_path}?db=0"
        proc = work(spawn, "oracle", "--burst", env={"REDIS_URL": url})
        assert proc.wait() == 0, proc.log()
        assert r.get("resque:stat:processed") == b"20"
        assert finished(r, "Echo") == 0
        assert "per-job figures of 1 minute(s) not written, dropped: NoPermissionError" in (
            proc.log()
        )
    finally:
        r.acl_deluser("nofigures")
