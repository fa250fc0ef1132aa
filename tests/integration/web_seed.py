"""Data for the dashboard tests, written with plain redis-py in the exact shapes Ruby Resque 3.0 and
the worker's CYCLE script write (the records Ruby wrote come from the fixture)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from pyresque.wire.jobmetrics import bucket_of

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "resque-3.0.0" / "observed.json"
SCRIPT = "<script>window.__pwned = 1</script>"


def observed() -> dict[str, object]:
    data: dict[str, object] = json.loads(FIXTURE.read_text())
    return data


def seed_ruby(r: redis.Redis) -> None:
    """A busy Ruby worker and Ruby's failure records, as Resque 3.0 left them."""
    busy = observed()["worker_while_busy"]
    assert isinstance(busy, dict)
    for key, value in busy.items():
        if not key.startswith("resque:"):
            continue
        if isinstance(value, list):
            r.sadd(key, *value)
        elif isinstance(value, dict):
            r.hset(key, mapping=value)
        else:
            r.set(key, value)
    records = observed()["failure_records"]
    assert isinstance(records, list)
    r.rpush("resque:failed", *records)


def push(r: redis.Redis, queue: str, cls: str, *args: object) -> None:
    r.sadd("resque:queues", queue)
    r.rpush(
        f"resque:queue:{queue}",
        json.dumps({"class": cls, "args": list(args)}, separators=(",", ":")),
    )


def failure(queue: str, cls: str, *args: object, error: str = "boom") -> str:
    return json.dumps(
        {
            "failed_at": "2026/11/28 06:57:33 UTC",
            "payload": {"class": cls, "args": list(args)},
            "exception": "RuntimeError",
            "error": error,
            "backtrace": ["jobs.py:1:in `perform'", "worker.py:2:in `run'"],
            "worker": "host:1:" + queue,
            "queue": queue,
        },
        separators=(",", ":"),
    )


def seed_job_metrics(
    r: redis.Redis,
    cls: str,
    durations_ms: list[float],
    failed: int = 0,
    now: float | None = None,
    minutes_ago: int = 2,
) -> int:
    """One minute of per-job metrics, in the schema the workers write; returns the minute.

    Two minutes ago by default: the Prometheus collector takes a minute as final only 5 s after
    it ends, so the minute just gone is not counted yet in the first seconds of a new one."""
    minute = int(now if now is not None else time.time()) // 60 - minutes_ago
    key = f"resque:metrics:jobs:{minute}"
    for ms in durations_ms:
        r.hincrby(key, f"{cls}|ms", int(ms))
        r.hincrby(key, f"{cls}|h{bucket_of(ms)}", 1)
    if failed:
        r.hincrby(key, f"{cls}|f", failed)
    r.expire(key, 8 * 3600)
    return minute
