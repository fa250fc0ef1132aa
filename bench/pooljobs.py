"""Jobs of the pool benchmark (bench/pool.py) and the chaos run (bench/chaos.py).

pyresque runs them by payload class name (``PoolBench::Stamp``, ``PoolBench::Sleep``,
``Chaos::Work``), RQ by import path (``pooljobs.stamp``, ``pooljobs.sleep``). Each job reports to
the Redis named by ``$REDIS_URL`` on a connection of its own process (never one inherited across
a fork).
"""

from __future__ import annotations

import os
import time

import redis

import pyresque

STARTED_KEY = "poolbench:started"  # "<sample> <time.time() at perform start> <pid>"
CHAOS_DONE_KEY = "chaos:done"  # one job id per completed perform (duplicates included)

_clients: dict[int, redis.Redis] = {}


def _redis() -> redis.Redis:
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        _clients[pid] = client
    return client


@pyresque.job(queue="poolbench", name="PoolBench::Stamp")
def stamp(sample: str) -> None:
    """Records when perform started."""
    started = time.time()
    _redis().rpush(STARTED_KEY, f"{sample} {started:.6f} {os.getpid()}")


@pyresque.job(queue="poolbench", name="PoolBench::Sleep")
def sleep(sample: str, seconds: float) -> None:
    """Records when perform started, then sleeps (a long job to interrupt)."""
    stamp(sample)
    time.sleep(seconds)


@pyresque.job(queue="chaos", name="Chaos::Work")
def chaos_work(job_id: int, seconds: float) -> None:
    """A short job: sleeps, then records its id as completed."""
    time.sleep(seconds)
    _redis().rpush(CHAOS_DONE_KEY, str(job_id))
