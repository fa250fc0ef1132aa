"""What bench/chaos.py reports: every job id accounted for after the run, and the verdict.

:func:`account` reads Redis after the drain: ids performed (the ``chaos:done`` list), still queued
or in flight, failed (by exception), and lost (in none of those); :class:`ChaosReport` holds them
with the kills, zombies and orphans the run saw, and formats them.
"""

from __future__ import annotations

import collections
import contextlib
import json
from dataclasses import dataclass, field

import common  # noqa: F401 - puts the repository root on sys.path, for harness
import redis
from chaos_pool import DONE_KEY, NAMESPACE, QUEUE, ZOMBIE_GRACE

from harness import proctable


@dataclass
class ChaosReport:
    duration: float
    workers: int
    seed: int
    backoff: str = "pyresque's own crash-loop backoff (5 s threshold)"
    enqueued: int = 0
    completed: int = 0  # distinct ids performed to the end
    performs: int = 0  # entries in chaos:done
    duplicates: int = 0  # performs beyond the first, summed over ids
    duplicated_ids: int = 0
    queued: int = 0  # still in the queue after the drain
    in_flight: int = 0  # still in an in-flight hash after the drain
    failed: int = 0  # distinct ids with a failure record
    failure_records: int = 0
    failures_by_exception: dict[str, int] = field(default_factory=dict)
    failed_and_completed: int = 0
    lost: int = 0
    lost_ids: list[int] = field(default_factory=list)
    unknown_ids: int = 0
    worker_kills: int = 0
    left_for_recovery: list[str] = field(default_factory=list)  # dead workers the master left
    child_kills: int = 0
    master_kills: int = 0
    zombies: list[str] = field(default_factory=list)
    transient_zombies: int = 0
    orphans: list[str] = field(default_factory=list)
    ghost_workers: list[str] = field(default_factory=list)
    seconds_without_workers: float = 0.0
    drained: bool = False
    drain_seconds: float = 0.0
    term_seconds: float | None = None
    master_exit: int | None = None
    log_facts: dict[str, int] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)

    queued_ids_only: int = 0  # distinct ids queued or in flight, neither completed nor failed

    def problems(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{self.lost} jobs lost (ids {self.lost_ids[:20]})")
        if self.zombies:
            out.append(f"{len(self.zombies)} zombies: {self.zombies[:10]}")
        if self.orphans:
            out.append(f"{len(self.orphans)} orphans: {self.orphans[:10]}")
        if not self.drained:
            out.append(f"queue not drained: {self.queued} queued, {self.in_flight} in flight")
        if self.master_exit != 0:
            out.append(f"master exit status {self.master_exit} after TERM")
        if self.ghost_workers:
            out.append(f"{len(self.ghost_workers)} registrations left: {self.ghost_workers[:5]}")
        if self.unknown_ids:
            out.append(f"{self.unknown_ids} completed ids that were never enqueued")
        return out

    def format(self) -> str:
        fails = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures_by_exception.items()))
        lines = [
            f"chaos run: {self.duration:.0f} s, {self.workers} workers, seed {self.seed}; "
            f"{self.backoff}",
            f"  kills           {self.worker_kills} workers, {self.child_kills} job children, "
            f"{self.master_kills} master",
            f"  left to recover {len(self.left_for_recovery)} dead workers when the master died "
            f"{self.left_for_recovery[:4]}",
            f"  no worker alive {self.seconds_without_workers:.1f} s of the chaos phase",
            f"  enqueued        {self.enqueued}",
            f"  completed       {self.completed} distinct ids ({self.performs} performs)",
            f"  duplicates      {self.duplicates} extra performs of {self.duplicated_ids} ids "
            "(at-least-once)",
            f"  failed          {self.failed} ids, {self.failure_records} records ({fails or '-'}); "
            f"{self.failed_and_completed} of them also completed",
            f"  still queued    {self.queued} in the queue, {self.in_flight} in flight",
            f"  lost            {self.lost}"
            + (f"  ids {self.lost_ids[:20]}" if self.lost_ids else ""),
            f"  zombies         {len(self.zombies)} (transient, reaped within "
            f"{ZOMBIE_GRACE:.0f} s: {self.transient_zombies})",
            f"  orphans         {len(self.orphans)}",
            f"  drain           {'done' if self.drained else 'NOT DONE'} in "
            f"{self.drain_seconds:.1f} s; TERM -> exit "
            + (
                f"{self.term_seconds:.2f} s, status {self.master_exit}"
                if self.term_seconds is not None
                else "did not exit"
            ),
            f"  ghost workers   {len(self.ghost_workers)}",
            "  master logs     " + ", ".join(f"{k}: {v}" for k, v in self.log_facts.items()),
        ]
        for item in self.zombies[:10]:
            lines.append(f"    zombie: {item}")
        for item in self.orphans[:10]:
            lines.append(f"    orphan: {item}")
        problems = self.problems()
        lines.append("  verdict         " + ("OK" if not problems else "; ".join(problems)))
        return "\n".join(lines)


def _ids_in(payloads: list[bytes]) -> list[int]:
    out = []
    for raw in payloads:
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            out.append(int(json.loads(raw)["args"][0]))
    return out


def left_behind(r: redis.Redis) -> list[str]:
    """Registered or job-holding workers whose process is gone (this host only)."""
    ids = {m.decode() for m in r.smembers(f"{NAMESPACE}:workers")}
    ids |= {m.decode() for m in r.smembers(f"{NAMESPACE}:inflight-workers")}
    out = []
    for worker_id in sorted(ids):
        parts = worker_id.split(":", 2)
        if len(parts) == 3 and parts[1].isdigit():
            st = proctable.stat(int(parts[1]))
            if st is None or st.state == "Z":
                held = r.hlen(f"{NAMESPACE}:inflight:{worker_id}")
                out.append(f"{worker_id} ({held} in flight)")
    return out


def account(r: redis.Redis, report: ChaosReport) -> None:
    """Fill the job figures of ``report`` from what Redis holds after the run."""
    enqueued = set(range(report.enqueued))
    done = collections.Counter(int(x) for x in r.lrange(DONE_KEY, 0, -1))
    queued = _ids_in(r.lrange(f"{NAMESPACE}:queue:{QUEUE}", 0, -1))
    in_flight: list[int] = []
    for key in r.scan_iter(f"{NAMESPACE}:inflight:*"):
        if r.type(key) == b"hash":
            in_flight += _ids_in(list(r.hvals(key)))
    failed_ids: set[int] = set()
    by_exception: collections.Counter[str] = collections.Counter()
    records = r.lrange(f"{NAMESPACE}:failed", 0, -1)
    for raw in records:
        data = json.loads(raw)
        by_exception[str(data.get("exception"))] += 1
        payload = data.get("payload") or {}
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            failed_ids.add(int(payload["args"][0]))
    completed = set(done)
    lost = sorted(enqueued - completed - set(queued) - set(in_flight) - failed_ids)
    report.completed = len(completed & enqueued)
    report.performs = sum(done.values())
    report.duplicates = sum(n - 1 for n in done.values() if n > 1)
    report.duplicated_ids = sum(1 for n in done.values() if n > 1)
    report.queued = len(queued)
    report.in_flight = len(in_flight)
    report.queued_ids_only = len((set(queued) | set(in_flight)) - completed - failed_ids)
    report.failed = len(failed_ids)
    report.failure_records = len(records)
    report.failures_by_exception = dict(by_exception)
    report.failed_and_completed = len(failed_ids & completed)
    report.lost = len(lost)
    report.lost_ids = lost[:50]
    report.unknown_ids = len(completed - enqueued)
    report.ghost_workers = sorted(m.decode() for m in r.smembers(f"{NAMESPACE}:workers"))
