"""A short chaos run (bench/chaos.py): a real pool works a stream of numbered jobs while its
workers and job children are SIGKILLed every ~100 ms and its master once, in the middle. Every job
must end completed or failed (none lost), and no zombie or orphaned process may be left."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import redis

from harness.redis_server import RedisServer

BENCH = Path(__file__).resolve().parents[2] / "bench"


def chaos_module() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("chaos")


def test_no_job_lost_and_no_process_left_under_sigkill_chaos(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    chaos = chaos_module()
    report = chaos.run_chaos(9.0, redis_url=redis_server.url, master_kill_at=4.5, drain_timeout=30)
    text = report.format()
    print(text)
    assert report.enqueued > 50, text  # the pool did work
    assert report.worker_kills > 5 and report.child_kills > 5 and report.master_kills == 1, text
    assert report.drained and report.queued == 0 and report.in_flight == 0, text
    assert report.lost == 0, text
    assert report.completed + report.failed - report.failed_and_completed == report.enqueued, text
    assert report.zombies == [], text
    assert report.orphans == [], text
    assert report.master_exit == 0, text
    assert report.unknown_ids == 0, text
