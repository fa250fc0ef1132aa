"""Jobs with retry policies, for the retry tests. Each notes its attempts in the test's Redis."""

from __future__ import annotations

import os
from typing import Any

import redis

import pyresque


def _r() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


def _attempt(name: str) -> int:
    return int(_r().incr(f"test:attempts:{name}"))


class TransientError(Exception):
    pass


@pyresque.job(queue="retry", name="Flaky", retry=pyresque.Retry(retries=3, backoff=0, jitter=0))
def flaky(marker: str) -> None:
    """Fails twice, then succeeds."""
    if _attempt("Flaky") <= 2:
        raise TransientError(f"attempt failed for {marker}")
    _r().rpush("test:done", marker)


@pyresque.job(queue="retry", name="Doomed", retry=2)
def doomed(marker: str) -> None:
    _attempt("Doomed")
    raise TransientError(f"always fails: {marker}")


@pyresque.job(
    queue="retry", name="Picky", retry=pyresque.Retry(retries=5, backoff=0, on=(TransientError,))
)
def picky(marker: str) -> None:
    _attempt("Picky")
    raise ValueError("not worth retrying")


@pyresque.job(queue="retry", name="Later", retry=pyresque.Retry(retries=1, backoff=600, jitter=0))
def later(*args: Any) -> None:
    raise TransientError("retry in ten minutes")


@pyresque.job(
    queue="retry", name="SlowThenFast", timeout=0.5, retry=pyresque.Retry(retries=2, backoff=0)
)
def slow_then_fast(marker: str) -> None:
    """Runs past its limit the first time, then finishes quickly."""
    import time

    if _attempt("SlowThenFast") == 1:
        time.sleep(30)
    _r().rpush("test:done", marker)
