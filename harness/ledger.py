"""Counting every job of a fault test in a ledger Redis that no fault touches.

The :class:`Feeder` enqueues numbered ``Ledger::Work`` jobs (harness/apps/ledgerapp.py) and keeps,
for each id, whether its enqueue call returned (the caller was told the job is stored). The jobs
write their start and end to the ledger. :func:`tally` then says, for every id: performed (how
often), still queued or in flight in the jobs' Redis, failed, or lost.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

import pyresque
from pyresque.store.connection import RETRYABLE_ERRORS

QUEUE = "fleet"
JOB = "Ledger::Work"
STARTED = "ledger:started"
DONE = "ledger:done"


class Feeder(threading.Thread):
    """Enqueues ids 0, 1, ... (a job of ``seconds``) while the queue is shorter than ``depth``.

    An enqueue that raises is retried with the same id (it may have landed: at least once);
    ``confirmed`` holds the ids whose enqueue call returned.
    """

    def __init__(self, url: str, seconds: float = 0.02, depth: int = 20, limit: int = 0) -> None:
        super().__init__(name="feeder", daemon=True)
        self.client = pyresque.Client(url=url, namespace="resque")
        self.seconds, self.depth, self.limit = seconds, depth, limit
        self.confirmed: list[int] = []
        self.confirmed_at: dict[int, float] = {}
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        next_id = 0
        while not self.stop.is_set() and not (self.limit and next_id >= self.limit):
            try:
                if self.client.store.queue_size(QUEUE) >= self.depth:
                    self.stop.wait(0.005)
                    continue
                self.client.enqueue_to(QUEUE, JOB, next_id, self.seconds)
            except RETRYABLE_ERRORS:
                self.errors += 1
                self.stop.wait(0.05)
                continue
            self.confirmed.append(next_id)
            self.confirmed_at[next_id] = time.monotonic()
            next_id += 1

    def finish(self) -> None:
        self.stop.set()
        self.join(30)


UNREADABLE = (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError)


def _ids(payloads: list[bytes]) -> list[int]:
    """The ids of the numbered jobs among ``payloads`` (hostile ones are skipped)."""
    out = []
    for raw in payloads:
        with contextlib.suppress(*UNREADABLE):
            data = json.loads(raw)
            if data.get("class") == JOB and int(data["args"][0]) >= 0:
                out.append(int(data["args"][0]))
    return out


@dataclass
class Tally:
    confirmed: int = 0
    performed: int = 0  # distinct ids whose perform ended
    started_only: int = 0  # started, never ended (killed mid-job), not queued
    duplicates: int = 0  # performs beyond the first
    duplicated_ids: list[int] = field(default_factory=list)
    queued: int = 0
    in_flight: int = 0
    failed: int = 0
    lost: list[int] = field(default_factory=list)  # confirmed, never started, nowhere in Redis
    hosts: dict[str, int] = field(default_factory=dict)  # performs per hostname

    def line(self) -> str:
        return (
            f"confirmed {self.confirmed}, performed {self.performed}, "
            f"duplicates {self.duplicates} ({len(self.duplicated_ids)} ids), queued {self.queued}, "
            f"in flight {self.in_flight}, failed {self.failed}, lost {len(self.lost)} "
            f"{self.lost[:10]}"
        )


def jobs_in(jobs: redis.Redis, prefix: str = "resque:") -> tuple[list[int], list[int], set[int]]:
    """(queued ids, in-flight ids, failed ids) in the jobs' Redis."""
    queued = _ids(jobs.lrange(f"{prefix}queue:{QUEUE}", 0, -1))
    in_flight: list[int] = []
    for key in jobs.scan_iter(f"{prefix}inflight:*"):
        if jobs.type(key) == b"hash":
            in_flight += _ids([v for k, v in jobs.hgetall(key).items() if k])
    for key in jobs.scan_iter(f"{prefix}landing:*"):
        in_flight += _ids(jobs.lrange(key, 0, -1))
    failed = set()
    for raw in jobs.lrange(f"{prefix}failed", 0, -1):
        with contextlib.suppress(*UNREADABLE):
            payload = json.loads(raw)["payload"]
            if payload["class"] == JOB:
                failed.add(int(payload["args"][0]))
    return queued, in_flight, failed


def tally(ledger: redis.Redis, jobs: redis.Redis, confirmed: list[int]) -> Tally:
    done_entries = [e.decode().split() for e in ledger.lrange(DONE, 0, -1)]
    started = {int(e.split()[0]) for e in ledger.lrange(STARTED, 0, -1)}
    done = collections.Counter(int(e[0]) for e in done_entries)
    queued, in_flight, failed = jobs_in(jobs)
    out = Tally(confirmed=len(confirmed))
    out.performed = len(done)
    out.started_only = len(started - set(done) - set(queued) - set(in_flight))
    out.duplicates = sum(n - 1 for n in done.values())
    out.duplicated_ids = sorted(i for i, n in done.items() if n > 1)
    out.queued, out.in_flight, out.failed = len(queued), len(in_flight), len(failed)
    somewhere = started | set(queued) | set(in_flight) | failed
    out.lost = sorted(set(confirmed) - somewhere)
    out.hosts = dict(collections.Counter(e[1] for e in done_entries))
    return out


def drained(jobs: redis.Redis) -> bool:
    queued, in_flight, _failed = jobs_in(jobs)
    return not queued and not in_flight


def wait_drained(jobs: Callable[[], redis.Redis], timeout: float) -> bool:
    """Whether the queue and every in-flight hash emptied within ``timeout`` (errors retried)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(*RETRYABLE_ERRORS):
            if drained(jobs()):
                return True
        time.sleep(0.1)
    return False
