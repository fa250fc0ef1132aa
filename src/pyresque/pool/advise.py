"""``pyresque pool --advise``: load the app, measure a worker running a sample job, and say how
many workers fit this machine's memory limit.

The worker is forked from the preloaded master exactly as the pool would fork it (after_prefork
hooks included), so what is measured is what ``auto`` will see: its private pages at their peak.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyresque.job import Outcome, perform
from pyresque.pool.hooks import PoolHooks
from pyresque.pool.memory import MemoryLimit, Usage, child_pids, format_mb, read_usage
from pyresque.registry import Registry


@dataclass(frozen=True)
class Advice:
    limit: MemoryLimit
    headroom: int
    master: Usage
    worker_peak: Usage
    runs: int
    job: str
    fits: int

    def report(self) -> str:
        what = f"running {self.job} ({self.runs} runs)" if self.job else "idle (no --advise-job)"
        lines = [
            f"memory limit: {format_mb(self.limit.bytes)} ({self.limit.source})",
            f"headroom:     {format_mb(self.headroom)}",
            f"master:       {format_mb(self.master.pss)} PSS, app preloaded",
            f"one worker:   {format_mb(self.worker_peak.uss)} USS at its peak, {what}",
            f"fit:          {self.fits} workers (WORKER_CONCURRENCY={self.fits}, or use 'auto')",
        ]
        if not self.job:
            lines.append("note: an idle worker is smaller than a busy one; pass --advise-job")
        return "\n".join(lines)


def measure_worker(
    hooks: PoolHooks, registry: Registry, job: str, args: Sequence[Any], runs: int
) -> Usage:
    """Fork a worker, run the job ``runs`` times in it, and return its peak usage."""
    gc.freeze()
    pid = os.fork()
    if pid == 0:  # in the child
        code = 1
        try:
            hooks.run("after_prefork", None)
            if job:
                spec = registry.resolve(job)
                for _ in range(runs):
                    result = perform(spec, list(args))
                    if result.outcome is Outcome.FAILED and result.failure:
                        print(
                            f"sample job failed: {result.failure.exception}: {result.failure.error}"
                        )
            time.sleep(0.2)  # let the parent take a last sample of the settled worker
            code = 0
        finally:
            os._exit(code)
    peak = Usage()
    while True:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            return peak
        usage = read_usage(pid) or Usage()
        for child in child_pids(pid):
            usage = usage + (read_usage(child) or Usage())
        if usage.uss > peak.uss:
            peak = usage
        time.sleep(0.01)


def advise(
    limit: MemoryLimit,
    headroom: int,
    hooks: PoolHooks,
    registry: Registry,
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
    footprint = max(peak.uss, 1)
    fits = max(0, (limit.bytes - headroom - master.pss) // footprint)
    return Advice(limit, headroom, master, peak, runs, job, int(fits))
