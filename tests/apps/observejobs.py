"""Jobs for the Sentry and OpenTelemetry tests (queue ``watch``); each run is noted in Redis."""

from __future__ import annotations

import os

import redis

import pyresque


def _note(what: str) -> None:
    redis.Redis.from_url(os.environ["REDIS_URL"]).rpush("test:ran", what)


class TransientError(Exception):
    pass


@pyresque.job(queue="watch", name="Boom")
def boom(marker: str, secret: str = "") -> None:
    _note(f"Boom {marker}")
    raise ValueError(f"boom {marker}")


@pyresque.job(queue="watch", name="Fine")
def fine(marker: str) -> None:
    _note(f"Fine {marker}")


@pyresque.job(queue="watch", name="Twice", retry=pyresque.Retry(retries=2, backoff=0, jitter=0))
def twice(marker: str) -> None:
    """Fails every attempt: two retries after the first failure, then a failure record."""
    _note(f"Twice {marker}")
    raise TransientError(f"still failing {marker}")


@pyresque.job(queue="watch", name="Slow", timeout=0.5)
def slow(marker: str) -> None:
    """Runs past its time limit."""
    _note(f"Slow {marker}")
    import time

    time.sleep(30)


@pyresque.job(queue="watch", name="Sleepy")
def sleepy(marker: str) -> None:
    """Sleeps until it is killed."""
    _note(f"Sleepy {marker}")
    import time

    time.sleep(30)
