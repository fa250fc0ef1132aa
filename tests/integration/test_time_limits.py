"""A job that runs past its time limit is stopped and fails as pyresque.JobTimeout, in both modes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis

from tests.helpers import Proc

Spawn = Callable[..., Proc]


def push(r: redis.Redis, payload: dict[str, object]) -> None:
    r.sadd("resque:queues", "oracle")
    r.rpush("resque:queue:oracle", json.dumps(payload, separators=(",", ":")))


@pytest.mark.parametrize("mode", ["fork", "in-process"])
def test_a_job_past_its_limit_fails_as_a_timeout_and_the_next_runs(
    r: redis.Redis, spawn: Spawn, mode: str
) -> None:
    push(r, {"class": "Hang", "args": ["slow"]})
    push(r, {"class": "Echo", "args": ["next"]})
    extra = ["--in-process"] if mode == "in-process" else []
    began = time.monotonic()
    proc = spawn("work", "--queues", "oracle", "--app", "jobapp", "--burst", *extra)
    assert proc.wait(20) == 0, proc.log()
    assert time.monotonic() - began < 10  # the job would sleep 30 s
    assert r.lrange("test:done", 0, -1) == [b'["next"]']
    [record] = [json.loads(v) for v in r.lrange("resque:failed", 0, -1)]
    assert record["exception"] == "pyresque.JobTimeout"
    assert record["error"] == "job ran past its time limit of 0.5s"
    assert r.get("resque:stat:failed") == b"1"


def test_a_job_that_swallows_the_interrupt_is_killed_after_the_grace(
    r: redis.Redis, spawn: Spawn
) -> None:
    push(r, {"class": "HangHard", "args": ["stubborn"]})
    proc = spawn(
        "work", "--queues", "oracle", "--app", "jobapp", "--burst",
        env={"RESQUE_TERM_TIMEOUT": "1"},
    )  # fmt: skip
    assert proc.wait(20) == 0, proc.log()
    assert r.lrange("test:swallowed", 0, -1) == [b"stubborn"]
    [record] = [json.loads(v) for v in r.lrange("resque:failed", 0, -1)]
    assert record["exception"] == "pyresque.JobTimeout"


def test_the_worker_default_limit_applies_to_jobs_without_one(r: redis.Redis, spawn: Spawn) -> None:
    push(r, {"class": "Sleepy", "args": [30, "s"]})
    proc = spawn(
        "work", "--queues", "oracle", "--app", "jobapp", "--burst",
        env={"RESQUE_JOB_TIMEOUT": "0.5"},
    )  # fmt: skip
    assert proc.wait(20) == 0, proc.log()
    [record] = [json.loads(v) for v in r.lrange("resque:failed", 0, -1)]
    assert record["error"] == "job ran past its time limit of 0.5s"


def test_an_in_process_job_that_ignores_its_interruption_retires_its_worker(
    r: redis.Redis, spawn: Spawn
) -> None:
    """No hung slot: the job is failed from another thread and the worker leaves (a pool would
    replace it); the job behind it is left for a worker that works."""
    push(r, {"class": "HangHard", "args": ["stuck"]})
    push(r, {"class": "Echo", "args": ["behind"]})
    proc = spawn(
        "work", "--queues", "oracle", "--app", "jobapp", "--in-process",
        env={"RESQUE_TERM_TIMEOUT": "1"},
    )  # fmt: skip
    assert proc.wait(15) == 1, proc.log()
    [record] = [json.loads(v) for v in r.lrange("resque:failed", 0, -1)]
    assert record["exception"] == "pyresque.JobTimeout"
    assert "its worker was retired" in str(record["error"])
    assert r.lrange("resque:queue:oracle", 0, -1) == [b'{"class":"Echo","args":["behind"]}']
    worker_id = r.smembers("resque:inflight-workers")
    assert all(r.hlen(f"resque:inflight:{w.decode()}") == 0 for w in worker_id)
