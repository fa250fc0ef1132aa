"""A time limit enforced from outside the worker: a job stuck in C code holding the GIL (no signal
handler, no watchdog thread of its process can run) is ended by the pool master once its limit
and the grace have passed; the job fails as a timeout and its slot is free again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.helpers import Proc, wait_until

GRACE = 1  # RESQUE_TERM_TIMEOUT
LIMIT = 1  # the job's timeout


@pytest.mark.parametrize("mode", ["in-process", "fork"])
def test_a_job_holding_the_gil_frees_its_slot_by_its_limit_and_the_grace(
    r: redis.Redis, spawn: Callable[..., Proc], tmp_path: Path, mode: str
) -> None:
    config = tmp_path / "pool.yml"
    config.write_text("oracle: 1\n")
    env = {
        "RESQUE_TERM_TIMEOUT": str(GRACE),
        "FORK_PER_JOB": "false" if mode == "in-process" else "true",
    }
    master = spawn("pool", "--config", str(config), "--app", "gilapp", "--no-scheduler", env=env)
    wait_until(lambda: r.scard("resque:workers") == 1, 15)
    r.rpush("resque:queue:oracle", json.dumps({"class": "HoldsTheGil", "args": [10**11]}))
    wait_until(lambda: r.llen("resque:queue:oracle") == 0, 10)
    began = time.monotonic()
    r.rpush("resque:queue:oracle", json.dumps({"class": "Mark", "args": ["next"]}))
    try:
        wait_until(lambda: r.lrange("test:done", 0, -1) == [b"next"], 15)
    except AssertionError:
        raise AssertionError(master.log()) from None
    took = time.monotonic() - began
    # the limit and the grace, a worker's start (an app import) and the next job
    assert took < LIMIT + GRACE + 3, f"the slot was held {took:.1f}s\n{master.log()}"
    [record] = [json.loads(f) for f in r.lrange("resque:failed", 0, -1)]
    assert record["exception"] == "pyresque.JobTimeout", record
    assert record["payload"] == {"class": "HoldsTheGil", "args": [10**11]}
    # nothing left in flight once "next" is acknowledged (a reservation token at most)
    wait_until(lambda: all(r.hkeys(k) in ([], [b""]) for k in r.keys("resque:inflight:*")), 5)
