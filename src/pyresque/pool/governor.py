"""The master's memory duties: sample on time, size ``auto`` groups, retire workers under
pressure, and log the ``sample#`` metrics line. Decisions come from :mod:`pyresque.pool.sizing`;
this class keeps the measurements between ticks and says what the master should do."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from pyresque.pool.memory import (
    MemoryLimit,
    PoolMemory,
    format_mb,
    measure_pool,
    rss_upper_bound,
)
from pyresque.pool.sizing import (
    FootprintTracker,
    Retirements,
    SizingPolicy,
    auto_counts,
    retirements,
)

log = logging.getLogger("pyresque.pool")

CHECK_INTERVAL = 1.0


@dataclass(frozen=True)
class WorkerView:
    """What the governor needs to know of a worker: its pid, group, and whether it is stopping."""

    pid: int
    group: str
    stopping: bool


def metric_name(queue: str) -> str:
    """A queue name as one token of the metrics line: percent-encoded, so that a space or an ``=``
    in it cannot split the line's ``key=value`` pairs (``my queue`` -> ``my%20queue``)."""
    return quote(queue, safe="")


class MemoryGovernor:
    def __init__(
        self,
        limit: MemoryLimit,
        policy: SizingPolicy,
        *,
        interval: float = 1.0,
        metrics_interval: float = 60.0,
        max_worker_memory: int | None = None,
        app_name: str = "",
        queue_depths: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.limit = limit
        self.policy = policy
        self.interval = interval
        self.metrics_interval = metrics_interval
        self.max_worker_memory = max_worker_memory
        self.app_name = app_name
        self.queue_depths = queue_depths
        self.tracker = FootprintTracker(floor=policy.footprint_floor)
        self.last: PoolMemory | None = None
        self.auto_targets: dict[str, int] = {}
        self.retiring: set[int] = set()
        self._next_sample = 0.0
        self._next_check = 0.0
        self._next_metrics = 0.0

    def next_at(self) -> float:
        return min(self._next_sample, self._next_check)

    def target(self, group: str) -> int:
        return self.auto_targets.get(group, self.policy.min_workers)

    def tick(
        self, now: float, workers: Sequence[WorkerView], auto_groups: Sequence[str]
    ) -> Retirements:
        """Sample if due; update auto targets; return who must retire. ``now`` is monotonic.

        A full sample (smaps_rollup of every process) costs about half a millisecond a process,
        so it runs every ``interval``; in between, once a second, the pool's RSS sum (statm, far
        cheaper) tells whether memory might be near the limit, and only then samples at once.
        """
        if now < self._next_sample:
            if now < self._next_check:
                return Retirements()
            self._next_check = now + min(CHECK_INTERVAL, self.interval)
            soft = self.policy.limit - self.policy.headroom
            if rss_upper_bound(os.getpid(), [w.pid for w in workers]) < soft:
                return Retirements()
        self._next_sample = now + self.interval
        self._next_check = now + min(CHECK_INTERVAL, self.interval)
        sample = measure_pool(os.getpid(), [(w.pid, w.group) for w in workers])
        self.last = sample
        self.tracker.observe(sample)
        alive = {w.pid for w in workers}
        self.retiring &= alive
        self._size(sample, workers, auto_groups)
        stopping = {w.pid for w in workers if w.stopping}
        decision = retirements(
            sample, self.policy, stopping, self.max_worker_memory, bool(self.retiring)
        )
        for reason in decision.reasons:
            log.warning("memory: %s", reason)
        self.retiring |= set(decision.stop)
        if self.metrics_interval and now >= self._next_metrics:
            self._next_metrics = now + self.metrics_interval
            log.info("%s", self.metrics_line(sample, len(workers)))
        return decision

    def _size(
        self, sample: PoolMemory, workers: Sequence[WorkerView], auto_groups: Sequence[str]
    ) -> None:
        current = dict.fromkeys(auto_groups, 0)
        for w in workers:
            if not w.stopping and w.group in current:
                current[w.group] += 1
        targets = auto_counts(
            auto_groups,
            current,
            used=sample.total_pss,
            footprint=self.tracker.footprint,
            policy=self.policy,
            measured=self.tracker.measured,
        )
        if targets != {g: self.auto_targets.get(g) for g in auto_groups}:
            log.info(
                "memory: auto %s (worker footprint %s, pool %s of %s)",
                ", ".join(f"[{g}] {current.get(g, 0)} -> {n}" for g, n in targets.items()),
                format_mb(self.tracker.footprint),
                format_mb(sample.total_pss),
                format_mb(self.limit.bytes),
            )
        self.auto_targets = targets

    def metrics_line(self, sample: PoolMemory, worker_count: int) -> str:
        """Heroku-style ``sample#name=value`` figures, one line."""
        parts = [
            f"source={self.app_name or 'pool'}",
            f"sample#memory_total={format_mb(sample.total_pss)}",
            f"sample#memory_limit={format_mb(self.limit.bytes)}",
            f"sample#memory_master={format_mb(sample.master.pss)}",
            f"sample#memory_shared={format_mb(sample.shared)}",
            f"sample#worker_footprint={format_mb(self.tracker.footprint)}",
            f"sample#workers={worker_count}",
        ]
        parts += [f"sample#worker.{w.pid}.uss={format_mb(w.uss)}" for w in sample.workers]
        if self.queue_depths is not None:
            try:
                depths = self.queue_depths()
            except Exception as exc:  # metrics must never take the master down
                log.debug("metrics: queue depths unavailable: %s", exc)
            else:
                parts += [f"sample#queue.{metric_name(q)}={n}" for q, n in sorted(depths.items())]
        return " ".join(parts)
