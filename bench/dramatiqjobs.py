"""The no-op job for Dramatiq, on a Redis broker at ``$REDIS_URL`` (used by pools.py).

``dramatiq dramatiqjobs --processes 2 --threads 8`` imports this module as its broker module: it
sets the broker and declares the actor, which calls the same ``benchjobs.noop`` pyresque and the
bare loop run (so the same timing marks are written by job 0 and job n-1).
"""

from __future__ import annotations

import os

import benchjobs
import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench"

broker = RedisBroker(url=os.environ["REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(i: int, n: int) -> None:
    benchjobs.noop(i, n)
