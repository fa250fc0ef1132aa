"""Per-job metrics: how long each job class runs, counted per minute in the worker's CYCLE call.

The worker measures a job's run time and hands a :class:`JobMetric` to the call that acknowledges
the job, so recording it costs no round trip (Sidekiq 7 records the same figures with a separate
one). Each minute's figures live in one hash (``metrics:jobs:<minute>``, see :mod:`pyresque.keys`)
that expires after :data:`METRICS_TTL`; a worker sets that expiry once per minute, not per job.
"""

from __future__ import annotations

import bisect
import math
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


def bucket_of(ms: float) -> int:
    """The histogram bucket of a run time in milliseconds."""
    return bisect.bisect_left(BUCKET_BOUNDS_MS, ms)


@dataclass(frozen=True)
class JobMetric:
    """One finished job's figures, for the minute it finished in."""

    class_name: str
    ms: int
    bucket: int
    minute: int
    expire: int = 0  # seconds of life to give the minute's hash (0: it has it already)


class MetricsRecorder:
    """Makes a worker's :class:`JobMetric` values, setting each minute's expiry once."""

    def __init__(self) -> None:
        self._expiry_set_for = -1

    def metric(self, class_name: str, seconds: float, now: float) -> JobMetric:
        ms = seconds * 1000.0
        minute = int(now // 60)
        expire = 0
        if minute != self._expiry_set_for:
            self._expiry_set_for = minute
            expire = METRICS_TTL
        return JobMetric(class_name, round(ms), bucket_of(ms), minute, expire)
