"""Per-job metrics (count, failures, time, percentiles) from the per-minute hashes.

Each worker writes ``metrics:jobs:<minute>`` (:mod:`pyresque.wire.jobmetrics`) with fields
``<class>|h<i>``, ``|f`` and ``|ms`` (see :mod:`pyresque.wire.keys`); this module turns those raw
counters into rows the dashboard and the Prometheus collector show. A class's count of finished
jobs is the sum of its duration buckets: every finished job lands in exactly one. Pure: it never
touches Redis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyresque.wire.jobmetrics import BUCKET_BOUNDS_MS

BUCKETS = BUCKET_BOUNDS_MS


@dataclass
class JobTotals:
    """What one job class did over some minutes."""

    name: str
    processed: int = 0
    failed: int = 0
    total_ms: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))

    def add(self, other: JobTotals) -> None:
        self.processed += other.processed
        self.failed += other.failed
        self.total_ms += other.total_ms
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.processed if self.processed else 0.0

    def percentile(self, q: float) -> float | None:
        return percentile(self.buckets, q)


def percentile(buckets: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) in ms, interpolated inside its bucket as Prometheus does;
    the open last bucket answers with its lower bound. None when no job was counted."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(buckets):
        if count and seen + count >= rank:
            lower = 0.0 if i == 0 else BUCKETS[i - 1]
            upper = BUCKETS[i]
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * max(rank - seen, 0) / count
        seen += count
    return BUCKETS[-2]


def parse_minute(fields: Mapping[str, int]) -> dict[str, JobTotals]:
    """One minute's hash -> totals per job class; unknown fields are ignored (newer writers).

    Hashes written by earlier versions also hold ``<class>|p``, a count of finished jobs equal to
    the sum of the class's buckets; it is ignored, so a minute that both wrote counts once.
    """
    out: dict[str, JobTotals] = {}
    for key, value in fields.items():
        name, sep, kind = key.rpartition("|")
        if not sep or not name:
            continue
        row = out.setdefault(name, JobTotals(name))
        if kind == "f":
            row.failed += value
        elif kind == "ms":
            row.total_ms += value
        elif kind.startswith("h") and kind[1:].isdigit():
            row.processed += value  # a bucket of a newer writer's still counts its jobs
            if int(kind[1:]) < len(BUCKETS):
                row.buckets[int(kind[1:])] += value
    return out


def summarize(minutes: Sequence[Mapping[str, int]]) -> list[JobTotals]:
    """Totals per class over all the given minutes, busiest class first."""
    out: dict[str, JobTotals] = {}
    for fields in minutes:
        for name, row in parse_minute(fields).items():
            out.setdefault(name, JobTotals(name)).add(row)
    return sorted(out.values(), key=lambda r: (-r.processed, r.name))


def per_minute(
    minutes: Sequence[int], hashes: Sequence[Mapping[str, int]], name: str | None = None
) -> dict[str, list[float | None]]:
    """Series for a chart: processed, failed, p50 and p95 per minute (of one class, or all)."""
    series: dict[str, list[float | None]] = {"minute": [], "processed": [], "failed": []}
    series["p50"], series["p95"] = [], []
    for minute, fields in zip(minutes, hashes, strict=True):
        total = JobTotals(name or "*")
        for row_name, row in parse_minute(fields).items():
            if name is None or row_name == name:
                total.add(row)
        series["minute"].append(float(minute * 60))
        series["processed"].append(float(total.processed))
        series["failed"].append(float(total.failed))
        series["p50"].append(total.percentile(0.5))
        series["p95"].append(total.percentile(0.95))
    return series


def bucket_label(i: int) -> str:
    """``≤ 2.5 ms``, ``≤ 1 s``, ``> 60 s``: the duration range of bucket ``i``."""
    bound = BUCKETS[i]
    if math.isinf(bound):
        return f"> {BUCKETS[i - 1] / 1000:g} s"
    return f"≤ {bound:g} ms" if bound < 1000 else f"≤ {bound / 1000:g} s"


def histogram(row: JobTotals) -> list[tuple[str, int, float]]:
    """(label, count, share of the largest bucket 0..1) for each bucket, for a bar chart."""
    top = max(row.buckets) or 1
    return [(bucket_label(i), n, n / top) for i, n in enumerate(row.buckets)]
