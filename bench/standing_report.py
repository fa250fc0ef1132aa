"""What the standing chaos run (bench/standing.py) reports: every job accounted for, the verdict.

:func:`account` reads the ledger and the jobs' Redis after the drain (done, lost, duplicated,
stuck, failed by exception), :func:`log_facts` counts what the pools' logs say, and
:class:`StandingReport` holds them with the faults, zombies and orphans the run saw.
"""

from __future__ import annotations

import collections
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from standing_faults import HEARTBEAT, PRUNE

from harness.ledger import Feeder, jobs_in, tally
from pyresque.store.connection import connect

if TYPE_CHECKING:
    from standing import Run


@dataclass
class StandingReport:
    duration: float
    hosts: int
    workers: int
    seed: int
    namespaces: str
    durable: bool
    faults: dict[str, int] = field(default_factory=dict)
    enqueued: int = 0
    feeder_errors: int = 0
    done: int = 0
    duplicates: int = 0
    duplicated_ids: int = 0
    lost: list[int] = field(default_factory=list)
    stuck: int = 0
    failed: int = 0
    hostile: dict[str, int] = field(default_factory=dict)
    hostile_stuck: int = 0
    stuck_where: list[str] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)  # the faults on Redis and the network
    failures_by_exception: dict[str, int] = field(default_factory=dict)
    zombies: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    drained: bool = False
    drain_seconds: float = 0.0
    exits: dict[str, int | None] = field(default_factory=dict)
    log_facts: dict[str, int] = field(default_factory=dict)
    stuck_faults: Any = None  # stuckfaults.StuckFigures

    def problems(self) -> list[str]:
        out = list(self.stuck_faults.problems()) if self.stuck_faults is not None else []
        if self.lost:
            out.append(f"{len(self.lost)} lost")
        if self.stuck or self.hostile_stuck:
            out.append(f"{self.stuck + self.hostile_stuck} stuck")
        if self.zombies:
            out.append(f"{len(self.zombies)} zombies")
        if self.orphans:
            out.append(f"{len(self.orphans)} orphans")
        if any(code != 0 for code in self.exits.values()):
            out.append(f"master exits {self.exits}")
        return out

    def format(self) -> str:
        def pairs(d: dict[str, int]) -> str:
            return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) or "-"

        lines = [
            f"standing chaos: {self.duration:.0f} s, {self.hosts} hosts ({self.namespaces}), "
            f"{self.workers} workers each, seed {self.seed}, "
            f"{'durable (wait=1)' if self.durable else 'asynchronous replication'}; "
            f"RESQUE_HEARTBEAT_INTERVAL={HEARTBEAT} RESQUE_PRUNE_INTERVAL={PRUNE}",
            f"  faults      {pairs(self.faults)}",
            f"  enqueued    {self.enqueued} (enqueue errors retried: {self.feeder_errors})",
            f"  done        {self.done}",
            f"  lost        {len(self.lost)} {self.lost[:20] if self.lost else ''}",
            f"  duplicated  {self.duplicates} extra performs of {self.duplicated_ids} ids",
            f"  stuck       {self.stuck} jobs + {self.hostile_stuck} hostile payloads "
            f"({'drained' if self.drained else 'NOT drained'} after "
            f"{self.drain_seconds:.1f} s)",
            f"  failed      {self.failed} numbered jobs; records: {pairs(self.failures_by_exception)}",
            f"  hostile     {pairs(self.hostile)}",
            f"  zombies     {len(self.zombies)}",
            f"  orphans     {len(self.orphans)}",
            f"  TERM exits  {self.exits}",
            f"  pool logs   {pairs(self.log_facts)}",
            *(self.stuck_faults.lines() if self.stuck_faults is not None else []),
        ]
        lines += [f"    stuck: {w}" for w in self.stuck_where[:10]]
        lines += [f"    zombie: {z}" for z in self.zombies[:5]]
        lines += [f"    orphan: {o}" for o in self.orphans[:5]]
        problems = self.problems()
        lines.append("  verdict     " + ("OK" if not problems else "; ".join(problems)))
        return "\n".join(lines)


def _failures(jobs: redis.Redis) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    for raw in jobs.lrange("resque:failed", 0, -1):
        try:
            out[str(json.loads(raw.decode("utf-8", "replace")).get("exception"))] += 1
        except (ValueError, AttributeError, RecursionError):
            out["<unreadable record>"] += 1
    return out


def account(run: Run, feeder: Feeder, report: StandingReport) -> None:
    jobs = connect(run.cluster.url)
    figures = tally(run.ledger, jobs, feeder.confirmed)
    queued, in_flight, _failed = jobs_in(jobs)
    everything = jobs.llen("resque:queue:fleet") + sum(
        len([f for f in jobs.hkeys(k) if f]) for k in jobs.scan_iter("resque:inflight:*")
    )
    report.enqueued, report.feeder_errors = len(feeder.confirmed), feeder.errors
    done = {int(e.split()[0]) for e in run.ledger.lrange("ledger:done", 0, -1)}
    report.done = len({i for i in done if i >= 0})  # hostile runnable payloads have ids < 0
    report.duplicates, report.duplicated_ids = figures.duplicates, len(figures.duplicated_ids)
    report.lost, report.failed = figures.lost, figures.failed
    report.stuck = len(queued) + len(in_flight)
    report.hostile_stuck = max(0, everything - report.stuck)
    report.hostile = dict(run.hostile)
    report.timeline = run.timeline
    for key in [b"resque:queue:fleet", *jobs.scan_iter("resque:inflight:*")]:
        held = jobs.hvals(key) if jobs.type(key) == b"hash" else jobs.lrange(key, 0, -1)
        for raw in held:
            if raw and not re.fullmatch(rb"[0-9a-f]+\.\d+", raw):  # not a reservation token
                report.stuck_where.append(f"{key.decode()}: {raw[:80]!r}")
    report.failures_by_exception = dict(_failures(jobs))


def log_facts(text: str) -> dict[str, int]:
    patterns = {
        "tracebacks": r"Traceback",
        "unclean exits": r"reaped worker \d+ \[[^\]]*\]: (killed|exited with status [1-9])",
        "backoff": r"\(backoff\)",
        "pruned": r"Pruning dead worker",
        "requeued on recovery": r"recovered job of dead worker .*: requeued",
        "redis unreachable": r"unreachable",
        "redis full": r"Redis is full",
    }
    return {name: len(re.findall(p, text)) for name, p in patterns.items()}
