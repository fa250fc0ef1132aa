"""Jobs the benchmarks run, for pyresque (registered by name) and RQ (by import path).

The same functions serve both: pyresque runs the payload class ``Bench::Noop`` etc., RQ runs
``benchjobs.noop``. Workers import this module from the ``bench/`` directory (cwd and PYTHONPATH).

Timing marks: the throughput jobs take ``(i, n)``; the first (i == 0) and the last (i == n - 1) append
``"<i> <time.monotonic()> <time.time()>"`` to the file named by ``$BENCH_MARKS`` when they end, so the
harness can time the steady state from inside the worker (``time.monotonic`` is CLOCK_MONOTONIC on
Linux, one clock for every process). The other jobs write nothing: a no-op stays a no-op.
"""

from __future__ import annotations

import os
import time

import redis

import pyresque

QUEUE = "bench"
LATENCY_KEY = "bench:latency"

_clients: dict[int, redis.Redis] = {}


def _mark(i: int, n: int) -> None:
    if i == 0 or i == n - 1:
        path = os.environ.get("BENCH_MARKS")
        if path:
            with open(path, "a") as f:
                f.write(f"{i} {time.monotonic():.9f} {time.time():.6f}\n")


@pyresque.job(queue=QUEUE, name="Bench::Noop")
def noop(i: int, n: int, *padding: object) -> None:
    """Does nothing (apart from the two timing marks)."""
    _mark(i, n)


@pyresque.job(queue=QUEUE, name="Bench::Sleep")
def sleep(i: int, n: int, seconds: float = 0.01) -> None:
    """Sleeps ``seconds`` (10 ms by default), as a stand-in for a short real job."""
    time.sleep(seconds)
    _mark(i, n)


@pyresque.job(queue=QUEUE, name="Bench::Spin")
def spin(i: int, n: int, seconds: float = 0.01) -> None:
    """Busy-waits ``seconds``: a 10 ms job that keeps its CPU awake (unlike ``sleep``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    _mark(i, n)


def _redis() -> redis.Redis:
    """A connection of this process's own (never one inherited across fork)."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        _clients[pid] = client
    return client


@pyresque.job(queue=QUEUE, name="Bench::Stamp")
def stamp(sample: str) -> None:
    """Records when perform started, then reports it (after the measured instant) to the harness."""
    started = time.time()
    _redis().rpush(LATENCY_KEY, f"{sample} {started:.6f} {os.getpid()}")
