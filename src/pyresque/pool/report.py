"""The master's INFO report (``kill -IO``): one line per worker, from the process table and Redis."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from pyresque.pool.memory import format_mb, read_worker_usage
from pyresque.pool.worker_process import WorkerProcess


def worker_lines(
    workers: Iterable[WorkerProcess], busy: Mapping[str, str], now: float
) -> Iterator[str]:
    """``worker PID [group] running|stopping, up Ns, USS, its job or idle``, by pid.

    ``busy`` maps worker ids to their busy records (what each is working on, from Redis).
    """
    for w in sorted(workers, key=lambda w: w.pid):
        state = "stopping" if w.stopping_since is not None else "running"
        usage = read_worker_usage(w.pid)
        uss = usage.total.uss if usage is not None else 0
        job = f"working on {busy[w.worker_id]}" if w.worker_id in busy else "idle"
        yield (
            f"worker {w.pid} [{w.group}] {state}, up {now - w.started_at:.0f}s, "
            f"{format_mb(uss)} USS, {job}"
        )
