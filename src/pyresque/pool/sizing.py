"""Pure decisions about memory: how many ``auto`` workers fit, and whom to retire under pressure.

No processes and no clock here: the master measures (:mod:`pyresque.pool.memory`) and passes the
figures in, so every rule is tested with tables.

How ``auto`` is sized. Adding a worker to a preloaded pool costs its private memory (USS) under
load, worker and job child together; shared pages are already paid for. So the room for workers is
``limit - headroom - (what the pool uses now)``, and ``auto`` groups grow by ``room // footprint``,
where the footprint is the largest USS seen of any worker recently (never below a floor, so idle
workers measured at start cannot make the pool overestimate). A pool starts ``auto`` groups at
``min_workers``, may at most double them per decision while measurements come in, and shrinks them
when the footprint grows. Several ``auto`` groups share the room evenly, in file order, after the
groups with fixed counts have what they ask for.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyresque.pool.memory import MB, PoolMemory, WorkerMemory

DEFAULT_FLOOR = 20 * MB


def default_headroom(limit: int) -> int:
    """10 % of the limit, at least 32 MB: room for the master's own growth and measurement lag."""
    return max(limit // 10, 32 * MB)


@dataclass(frozen=True)
class SizingPolicy:
    limit: int
    headroom: int
    min_workers: int = 1
    max_workers: int | None = None
    footprint_floor: int = DEFAULT_FLOOR


class FootprintTracker:
    """The largest worker USS seen over the last ``window`` samples."""

    def __init__(self, window: int = 120, floor: int = DEFAULT_FLOOR) -> None:
        self._peaks: deque[int] = deque(maxlen=window)
        self.floor = floor

    def observe(self, sample: PoolMemory) -> None:
        if sample.workers:
            self._peaks.append(max(w.uss for w in sample.workers))

    @property
    def measured(self) -> bool:
        return bool(self._peaks)

    @property
    def footprint(self) -> int:
        return max([self.floor, *self._peaks])


def auto_counts(
    auto_groups: Sequence[str],
    current: Mapping[str, int],
    *,
    used: int,
    footprint: int,
    policy: SizingPolicy,
    measured: bool,
) -> dict[str, int]:
    """Target counts for the ``auto`` groups.

    ``current`` is how many workers each auto group runs now, ``used`` the pool's total PSS now
    (master, fixed groups and auto groups alike).
    """
    if not auto_groups:
        return {}
    now_total = sum(current.get(g, 0) for g in auto_groups)
    room = policy.limit - policy.headroom - used
    target_total = now_total + (room // footprint if room >= 0 else -(-room // footprint))
    if not measured:
        target_total = min(target_total, len(auto_groups) * policy.min_workers)
    else:
        target_total = min(target_total, max(2 * now_total, len(auto_groups)))
    shares = _split(max(target_total, 0), len(auto_groups))
    out = {}
    for group, share in zip(auto_groups, shares, strict=True):
        count = max(share, policy.min_workers)
        if policy.max_workers is not None:
            count = min(count, policy.max_workers)
        out[group] = count
    return out


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@dataclass(frozen=True)
class Retirements:
    """Workers to stop gracefully (after their job), and workers whose job (the job child, or the
    worker itself when it runs jobs in-process) must be killed now."""

    stop: tuple[int, ...] = ()
    kill_jobs: tuple[int, ...] = ()
    reasons: tuple[str, ...] = ()


def retirements(
    sample: PoolMemory,
    policy: SizingPolicy,
    stopping: set[int],
    max_worker_memory: int | None,
    retiring_for_memory: bool = False,
) -> Retirements:
    """Who must go before the kernel's OOM killer picks for us.

    Over ``max_worker_memory``: that worker retires after its job. Above ``limit - headroom``: the
    largest running worker retires (one at a time: the next decision sees the memory it freed).
    Above ``limit - headroom / 2`` the largest job child is killed at once: its job is put back and
    counted as a delivery, as an OOM kill would be, but the container survives.
    """
    stop: list[int] = []
    kill: list[int] = []
    reasons: list[str] = []
    running = [w for w in sample.workers if w.pid not in stopping]
    if max_worker_memory is not None:
        for w in running:
            if w.uss > max_worker_memory:
                stop.append(w.pid)
                reasons.append(f"worker {w.pid} uses {w.uss // MB}MB > --max-worker-memory")
    total = sample.total_pss
    if total > policy.limit - policy.headroom:
        candidates = [w for w in running if w.pid not in stop]
        if candidates and not retiring_for_memory:
            largest = _largest(candidates)
            stop.append(largest.pid)
            reasons.append(
                f"pool uses {total // MB}MB of {policy.limit // MB}MB: retiring the largest "
                f"worker {largest.pid} ({largest.uss // MB}MB)"
            )
    if total > policy.limit - policy.headroom // 2 and sample.workers:
        largest = _largest(sample.workers)
        kill.append(largest.pid)
        reasons.append(
            f"pool uses {total // MB}MB, {policy.limit // MB}MB is the limit: killing the job "
            f"of the largest worker {largest.pid} ({largest.uss // MB}MB); it is put back"
        )
    return Retirements(tuple(stop), tuple(kill), tuple(reasons))


def _largest(workers: Sequence[WorkerMemory]) -> WorkerMemory:
    return max(workers, key=lambda w: (w.uss, w.pid))
