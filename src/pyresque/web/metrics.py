"""Prometheus metrics: queues, workers, jobs, per-job durations and the pools' state.

Collected on scrape from Redis (through :class:`~pyresque.store.operations.Store`), so any dashboard instance
answers for the whole fleet. Per-job counters come from the per-minute hashes the workers write;
those expire, so a collector adds each *completed* minute to its own running totals once: counters
stay monotonic (what ``rate()`` needs) however long the collector runs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pyresque.pool.publisher import pool_families
from pyresque.store.operations import Store
from pyresque.web.jobstats import BUCKETS, JobTotals, parse_minute
from pyresque.wire.jobmetrics import METRICS_TTL, SETTLED_AFTER

WINDOW_MINUTES = METRICS_TTL // 60


class JobMetricsAccumulator:
    """Running per-class totals over completed minutes, each minute counted exactly once."""

    def __init__(self) -> None:
        self.totals: dict[str, JobTotals] = {}
        self.last_minute: int | None = None
        self._lock = threading.Lock()

    def advance(self, now: float, fetch: Callable[[Sequence[int]], list[dict[str, int]]]) -> None:
        # a minute counts once its figures are all written, a few seconds after it ends
        current = int(now - SETTLED_AFTER) // 60
        with self._lock:
            first = current - WINDOW_MINUTES if self.last_minute is None else self.last_minute + 1
            minutes = list(range(first, current))  # the current minute is still being written
            if not minutes:
                return
            for fields in fetch(minutes):
                for name, row in parse_minute(fields).items():
                    self.totals.setdefault(name, JobTotals(name)).add(row)
            self.last_minute = current - 1

    def snapshot(self) -> list[JobTotals]:
        with self._lock:
            return sorted(self.totals.values(), key=lambda r: r.name)


def job_families(rows: Iterable[JobTotals]) -> Iterator[Metric]:
    processed = CounterMetricFamily(
        "pyresque_job_processed", "Jobs finished, by job class", labels=["class"]
    )
    failed = CounterMetricFamily(
        "pyresque_job_failed", "Jobs that raised, by job class", labels=["class"]
    )
    duration = HistogramMetricFamily(
        "pyresque_job_duration_seconds", "Job execution time", labels=["class"]
    )
    for row in rows:
        processed.add_metric([row.name], row.processed)
        failed.add_metric([row.name], row.failed)
        cumulative, buckets = 0, []
        for bound, count in zip(BUCKETS, row.buckets, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound / 1000)
            buckets.append((le, float(cumulative)))
        duration.add_metric([row.name], buckets, row.total_ms / 1000)
    yield from (processed, failed, duration)


def parse_states(raw: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for pool_id, text in raw.items():
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            out[pool_id] = value
    return out


class StoreCollector(Collector):
    """Everything the dashboard knows, read from Redis on each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.jobs = JobMetricsAccumulator()

    def collect(self) -> Iterator[Metric]:
        store = self.store
        names = store.queue_names()
        depth = GaugeMetricFamily("pyresque_queue_length", "Jobs waiting", labels=["queue"])
        for name, size in store.queue_sizes(names).items():
            depth.add_metric([name], size)
        ids = store.worker_ids()
        busy = sum(1 for record in store.dashboard.busy_records(ids) if record is not None)
        workers = GaugeMetricFamily("pyresque_workers", "Registered workers", labels=["state"])
        workers.add_metric(["busy"], busy)
        workers.add_metric(["idle"], len(ids) - busy)
        processed, failed = store.stats()
        yield depth
        yield workers
        yield CounterMetricFamily(
            "pyresque_jobs_processed", "Jobs finished (stat:processed)", value=processed
        )
        yield CounterMetricFamily("pyresque_jobs_failed", "Jobs failed (stat:failed)", value=failed)
        yield GaugeMetricFamily(
            "pyresque_failures", "Failure records kept", value=store.failure_count()
        )
        yield GaugeMetricFamily(
            "pyresque_paused", "1 while all workers are paused", value=int(store.paused_all())
        )
        self.jobs.advance(time.time(), store.dashboard.job_metrics)
        yield from job_families(self.jobs.snapshot())
        yield from pool_families(parse_states(store.dashboard.pool_states()))


def metrics_registry(store: Store) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry
