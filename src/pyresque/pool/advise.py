"""``pyresque pool --advise``: load the app, measure a worker running a sample job, and say how
many workers fit this machine's memory limit.

The worker is forked from the preloaded master exactly as the pool would fork it (after_prefork
hooks included), so what is measured is what ``auto`` will see: its private pages at their peak.
The count follows ``auto``'s rules (:mod:`pyresque.pool.sizing`): a footprint never below the floor,
never more than the ``--max-workers`` cap; the report says which bound decided.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyresque.errors import ConfigError
from pyresque.jobs.job import Outcome, perform
from pyresque.jobs.registry import Registry
from pyresque.pool.hooks import PoolHooks
from pyresque.pool.memory import MemoryLimit, Usage, format_mb, read_usage, read_worker_usage
from pyresque.pool.sizing import SizingPolicy
from pyresque.pool.worker_process import describe_status
from pyresque.worker import forking


@dataclass(frozen=True)
class Fit:
    """How many workers fit, and which bound decided it."""

    count: int
    bound: str

    @classmethod
    def decide(cls, room: int, measured: int, policy: SizingPolicy) -> Fit:
        """``room``: memory left for workers; ``measured``: one worker's peak USS."""
        footprint = max(measured, policy.footprint_floor, 1)
        by_memory = max(0, room) // footprint
        floor = (
            f", the {format_mb(policy.footprint_floor)} footprint floor (measured less)"
            if footprint > measured
            else ""
        )
        if policy.max_workers is not None and by_memory > policy.max_workers:
            return cls(
                policy.max_workers,
                f"the --max-workers cap {policy.max_workers} (memory would allow {by_memory})",
            )
        return cls(
            int(by_memory),
            f"memory: {format_mb(max(0, room))} of room / {format_mb(footprint)} a worker{floor}",
        )


@dataclass(frozen=True)
class Advice:
    limit: MemoryLimit
    headroom: int
    master: Usage
    worker_peak: Usage
    runs: int
    job: str
    fit: Fit

    @property
    def fits(self) -> int:
        return self.fit.count

    def report(self) -> str:
        what = f"running {self.job} ({self.runs} runs)" if self.job else "idle (no --advise-job)"
        lines = [
            f"memory limit: {format_mb(self.limit.bytes)} ({self.limit.source})",
            f"headroom:     {format_mb(self.headroom)}",
            f"master:       {format_mb(self.master.pss)} PSS, app preloaded",
            f"one worker:   {format_mb(self.worker_peak.uss)} USS at its peak, {what}",
            f"fit:          {self.fits} workers (WORKER_CONCURRENCY={self.fits}, or use 'auto')",
            f"decided by:   {self.fit.bound}",
        ]
        if not self.job:
            lines.append("note: an idle worker is smaller than a busy one; pass --advise-job")
        return "\n".join(lines)


def _sample_worker(
    hooks: PoolHooks, registry: Registry, job: str, args: Sequence[Any], runs: int
) -> int:
    """In the child: boot as a pool worker would, run the sample job, and linger a moment."""
    hooks.run("after_prefork", None)
    if job:
        spec = registry.resolve(job)
        for _ in range(runs):
            result = perform(spec, list(args))
            if result.outcome is Outcome.FAILED and result.failure:
                print(f"sample job failed: {result.failure.exception}: {result.failure.error}")
    time.sleep(0.2)  # let the parent take a last sample of the settled worker
    return 0


def measure_worker(
    hooks: PoolHooks, registry: Registry, job: str, args: Sequence[Any], runs: int
) -> Usage:
    """Fork a worker, run the job ``runs`` times in it, and return its peak usage. A worker that
    fails (a hook raises, the job class is unknown) gives no advice: ConfigError."""
    gc.freeze()
    pid = forking.fork(lambda _child: _sample_worker(hooks, registry, job, args, runs))
    peak = Usage()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if os.waitstatus_to_exitcode(status) != 0:
                raise ConfigError(
                    f"--advise: the sample worker failed ({describe_status(status)}; "
                    "its error is logged above): no advice"
                )
            return peak
        usage = read_worker_usage(pid)
        if usage is not None and usage.total.uss > peak.uss:
            peak = usage.total
        time.sleep(0.01)


def advise(
    limit: MemoryLimit,
    headroom: int,
    hooks: PoolHooks,
    registry: Registry,
    policy: SizingPolicy,
    *,
    job: str = "",
    job_args: str = "[]",
    runs: int = 3,
) -> Advice:
    args = json.loads(job_args)
    if not isinstance(args, list):
        raise ValueError("--advise-args must be a JSON list")
    master = read_usage(os.getpid()) or Usage()
    peak = measure_worker(hooks, registry, job, args, runs)
    fit = Fit.decide(limit.bytes - headroom - master.pss, peak.uss, policy)
    return Advice(limit, headroom, master, peak, runs, job, fit)
