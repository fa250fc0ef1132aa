"""Jobs that count themselves in a ledger Redis apart from the one holding the jobs.

A failover or a partition can undo writes in the jobs' Redis; the ledger (``$LEDGER_URL``) is a
separate server no fault touches, so that every perform is counted exactly once, with the host
(UTS hostname) and pid that ran it. ``Ledger::Work`` appends ``"<id> <host> <pid>"`` to
``ledger:started`` when it starts and to ``ledger:done`` when it ends.
"""

from __future__ import annotations

import os
import socket
import time

import redis

import pyresque

STARTED = "ledger:started"
DONE = "ledger:done"

_clients: dict[int, redis.Redis] = {}


def ledger() -> redis.Redis:
    """This process's own connection to the ledger (never one inherited across a fork)."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        client = redis.Redis.from_url(os.environ["LEDGER_URL"], socket_timeout=10)
        _clients[pid] = client
    return client


@pyresque.job(queue="fleet", name="Ledger::Work")
def work(job_id: int, seconds: float) -> None:
    """Records its start, sleeps ``seconds``, records its end."""
    entry = f"{job_id} {socket.gethostname()} {os.getpid()}"
    ledger().rpush(STARTED, entry)
    time.sleep(seconds)
    ledger().rpush(DONE, entry)


@pyresque.job(queue="fleet", name="Ledger::HoldsTheGil", timeout=1)
def holds_the_gil(n: int) -> None:
    """Stuck in one C call holding the GIL (minutes for a large ``n``): only a kill from outside
    the job's Python ends it at its limit."""
    sum(range(n))
