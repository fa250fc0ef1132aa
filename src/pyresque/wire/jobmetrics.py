"""Per-job metrics: how long each job class runs, counted per minute, added up in the worker.

Each minute's figures live in one hash (``metrics:jobs:<minute>``, see :mod:`pyresque.wire.keys`) that
expires after :data:`METRICS_TTL`. A class's fields: ``<class>|ms`` (total run time),
``<class>|h<i>`` (jobs in duration bucket ``i``; their sum is the class's count of finished jobs)
and ``<class>|f`` (failures).

A worker adds its jobs' figures up in a :class:`MetricsBatch` and writes them in one pipeline at
most about once a second (:data:`WRITE_INTERVAL`), not with each job: two ``HINCRBY`` a job inside
the worker's ``CYCLE`` call were an eighth of what that call cost the server (Sidekiq 7 also adds
its metrics up in the process and writes them with its heartbeat). A job that finishes more than
a second after the last write is written at once; the figures of a minute are written as soon as a
job finishes in the next one. What a worker killed with ``SIGKILL`` had not written yet (at most
about a second of jobs) is lost; Resque's own counters (``stat:processed``) are written with each
job and lose nothing. A batch whose write fails is dropped too: a write that timed out may have
been applied, and figures are better short than counted twice.
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass

# Upper bounds (ms) of the duration histogram: a job of d ms counts in the first bucket with d <= bound.
BUCKET_BOUNDS_MS: tuple[float, ...] = (
    1,
    2.5,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    math.inf,
)
METRICS_TTL = 8 * 3600
WRITE_INTERVAL = 1.0  # seconds: how often a worker writes its figures while jobs finish
# Seconds after a minute ends by which its figures are written: a worker writes about once a
# second, and this leaves a margin for a slow write and for hosts' clocks. Readers that take a
# completed minute as final (the Prometheus collector, the dashboard's cache) wait this long.
SETTLED_AFTER = 5.0


def bucket_of(ms: float) -> int:
    """The histogram bucket of a run time in milliseconds."""
    return bisect.bisect_left(BUCKET_BOUNDS_MS, ms)


@dataclass(frozen=True)
class MinuteFigures:
    """What one write adds to one minute's hash: field -> increment."""

    minute: int
    increments: dict[str, int]


class MetricsBatch:
    """A worker's per-job figures since its last write.

    Thread-safe: an in-process worker adds from its main thread while its heartbeat thread may
    take the batch to write it during a long job.
    """

    def __init__(self, interval: float = WRITE_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[int, dict[str, int]] = {}
        self._written_at = -math.inf  # time.monotonic() of the last take of something

    def add(self, class_name: str, seconds: float, failed: bool, now: float) -> None:
        """Count one finished job (``now``: epoch seconds, for its minute)."""
        ms = seconds * 1000.0
        with self._lock:
            fields = self._pending.setdefault(int(now // 60), {})
            for field, amount in (
                (f"{class_name}|ms", round(ms)),
                (f"{class_name}|h{bucket_of(ms)}", 1),
                (f"{class_name}|f", 1 if failed else 0),
            ):
                if amount:
                    fields[field] = fields.get(field, 0) + amount

    def seconds_until_due(self, now: float) -> float:
        """Until :meth:`due` (``now``: ``time.monotonic()``); infinite while nothing is pending."""
        with self._lock:
            if not self._pending:
                return math.inf
            if len(self._pending) > 1:  # a minute is over: its figures go now
                return 0.0
            return max(self._written_at + self.interval - now, 0.0)

    def due(self, now: float) -> bool:
        return self.seconds_until_due(now) <= 0.0

    def take(self, now: float) -> list[MinuteFigures]:
        """Everything pending, oldest minute first, as written at ``now`` (``time.monotonic()``)."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if pending:
                self._written_at = now
        return [MinuteFigures(minute, pending[minute]) for minute in sorted(pending)]
