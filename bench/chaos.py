"""Chaos run: a pyresque pool working a stream of jobs while its processes are SIGKILLed at random.

A pool of ``--workers`` fork-per-job workers on one queue works jobs of 10-50 ms, each with a unique
id that its perform appends to the Redis list ``chaos:done`` when it finishes. Every ~100 ms one
random worker or one random job child is SIGKILLed; once, in the middle, the master is SIGKILLed
and a new one started (its workers must recover what the dead workers held: pyresque prunes dead
workers at worker start-up and puts their in-flight jobs back; the run sets
RESQUE_HEARTBEAT_INTERVAL=2 and RESQUE_PRUNE_INTERVAL=6 so expiry-based pruning also happens within
it). Then the killing stops, the pool drains the queue, is sent TERM, and the run accounts for
every job id:

  enqueued   ids 0..N-1 pushed by the feeder
  completed  distinct ids in chaos:done (a perform ran to its end at least once)
  duplicates performs beyond the first of an id (at-least-once delivery: expected > 0 here)
  queued     ids still in the queue or in a worker's in-flight hash after the drain (expected 0)
  failed     ids with a failure record: DirtyExit after max deliveries (a job whose process was
             killed RESQUE_MAX_DELIVERIES times, default 3), or any other failure, by exception name
  lost       enqueued ids that are in none of completed, queued and failed: must be 0

It also samples /proc every tick for zombies (Z-state processes whose parent is a live pool master
or worker, still there after a grace of 1 s: a transient zombie between death and reap is normal)
and, a few seconds after the master's SIGKILL and after the final TERM, for orphans (processes of
the run whose parent is not the live master or one of its workers). Both must be 0.

    python bench/chaos.py [--duration 60] [--workers 4] [--seed N]

``--standing`` runs the standing chaos run instead (bench/standing.py): several hosts, Redis behind
Sentinel, Redis and network faults and hostile payloads on top of these kills, and a ledger Redis.

``run_chaos(duration, ...) -> ChaosReport`` runs it from Python (tests/integration/test_chaos.py).
Its parts: chaos_pool.py (the pool, its feeder, what is watched) and chaos_report.py (the
accounting of every id, and the report).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from chaos_pool import NAMESPACE, ORPHAN_GRACE, QUEUE, Chaos, Feeder
from chaos_report import ChaosReport, account, left_behind
from common import install_sigterm_handler, private_redis

from harness import proctable


def _wait_until(predicate: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@contextlib.contextmanager
def _redis_url(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with private_redis("unix") as server:
        yield server.url


def run_chaos(
    duration: float = 60.0,
    *,
    redis_url: str | None = None,
    workers: int = 4,
    kill_interval: float = 0.1,
    worker_share: float = 0.5,
    kill_master: bool = True,
    master_kill_at: float | None = None,
    drain_timeout: float = 60.0,
    job_seconds: tuple[float, float] = (0.01, 0.05),
    seed: int | None = None,
    env: dict[str, str] | None = None,
    keep_logs: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ChaosReport:
    """Run the chaos scenario against ``redis_url`` (an empty database; a private server when
    None) and account for every job. ``worker_share`` is the chance that a kill picks a worker
    rather than a job child; ``master_kill_at`` (seconds, default the middle) when the master is
    SIGKILLed and restarted; ``env`` adds to the pool's environment. The pool runs with its own
    crash-loop backoff: workers killed after they reported ready do not count as a crash loop."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    say = progress or (lambda _msg: None)
    report = ChaosReport(duration=duration, workers=workers, seed=seed)
    pool_env = {"RESQUE_HEARTBEAT_INTERVAL": "2", "RESQUE_PRUNE_INTERVAL": "6"}
    pool_env.update(env or {})
    kill_at = duration / 2 if master_kill_at is None else master_kill_at
    schedule = Schedule(duration, kill_interval, worker_share, kill_master, kill_at, rng)
    with (
        _redis_url(redis_url) as url,
        tempfile.TemporaryDirectory(prefix="pyresque-chaos-") as d,
    ):
        r = redis.Redis.from_url(url)
        if r.dbsize():
            raise RuntimeError("run_chaos needs an empty Redis database")
        chaos = Chaos(url, workers, Path(d), pool_env)
        feeder = Feeder(url, random.Random(seed + 1), *job_seconds, depth=2 * workers + 8)
        try:
            chaos.start_master()
            if not _wait_until(lambda: r.scard(f"{NAMESPACE}:workers") >= workers, 30):
                raise RuntimeError("the pool did not start its workers within 30 s")
            say(f"pool up ({workers} workers); chaos for {duration:.0f} s, seed {seed}")
            feeder.start()
            orphan_check_at = kill_phase(chaos, r, schedule, report, say)
            end_chaos(chaos, feeder, orphan_check_at, report, say)
            drain_and_stop(chaos, r, drain_timeout, report)
        finally:
            feeder.stop.set()
            chaos.kill_all()
            report.log_facts = chaos.log_facts()
            if keep_logs:
                copy_logs(chaos, keep_logs, report)
        report.enqueued = feeder.enqueued
        report.zombies = list(chaos.zombies.values())
        report.transient_zombies = chaos.transient_zombies
        report.orphans = chaos.orphans
        account(r, report)
    return report


def end_chaos(
    chaos: Chaos,
    feeder: Feeder,
    orphan_check_at: float | None,
    report: ChaosReport,
    say: Callable[[str], None],
) -> None:
    """Stop the feeder, count what it enqueued, and finish the orphan check after the master's
    kill if the chaos phase ended before its grace did."""
    feeder.stop.set()
    feeder.join(10)
    if feeder.error is not None:
        raise RuntimeError(f"the feeder failed: {feeder.error!r}")
    report.enqueued = feeder.enqueued
    if orphan_check_at is not None:
        time.sleep(max(0.0, orphan_check_at - time.monotonic()))
        chaos.check_orphans("after the master's SIGKILL")
    say(f"chaos over: {report.enqueued} enqueued; draining")


@dataclass(frozen=True)
class Schedule:
    """When and what the chaos phase kills."""

    duration: float
    kill_interval: float
    worker_share: float
    kill_master: bool
    master_kill_at: float
    rng: random.Random


def kill_phase(
    chaos: Chaos,
    r: redis.Redis,
    schedule: Schedule,
    report: ChaosReport,
    say: Callable[[str], None],
) -> float | None:
    """SIGKILL a worker or a job child every ~``kill_interval``, the master once; returns when
    the orphans are still to be checked after the master's kill (None when that is done)."""
    rng = schedule.rng
    began = time.monotonic()
    orphan_check_at: float | None = None
    last = began
    while (now := time.monotonic()) < began + schedule.duration:
        table = proctable.snapshot()
        chaos.sample_zombies(table)
        pool_workers, kids, _live = chaos.pool_processes(table)
        if not pool_workers:
            report.seconds_without_workers += now - last
        last = now
        if (
            schedule.kill_master
            and not report.master_kills
            and now >= began + schedule.master_kill_at
        ):
            old = kill_and_restart_master(chaos, r, pool_workers, rng, report)
            orphan_check_at = time.monotonic() + ORPHAN_GRACE
            say(f"{now - began:.1f} s: master {old} SIGKILLed, {chaos.master.pid} up")
        elif pool_workers or kids:
            pick_worker = (rng.random() < schedule.worker_share and pool_workers) or not kids
            victim = rng.choice(pool_workers if pick_worker else kids)
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
                if pick_worker:
                    report.worker_kills += 1
                else:
                    report.child_kills += 1
        if orphan_check_at is not None and time.monotonic() >= orphan_check_at:
            chaos.check_orphans("after the master's SIGKILL")
            orphan_check_at = None
        time.sleep(schedule.kill_interval * rng.uniform(0.5, 1.5))
    return orphan_check_at


def kill_and_restart_master(
    chaos: Chaos,
    r: redis.Redis,
    pool_workers: list[int],
    rng: random.Random,
    report: ChaosReport,
) -> int:
    """A busy worker first, then the master before it can reap and recover it: the dead worker's
    registration and in-flight job are left to the new pool. Returns the old master's pid."""
    old = chaos.master
    busy = [w for w in pool_workers if "Forked" in proctable.title(w)]
    if busy:
        with contextlib.suppress(ProcessLookupError):
            os.kill(rng.choice(busy), signal.SIGKILL)
            report.worker_kills += 1
    os.kill(old.pid, signal.SIGKILL)
    old.popen.wait(10)
    report.master_kills += 1
    report.left_for_recovery = left_behind(r)
    chaos.start_master()
    return old.pid


def drain_and_stop(chaos: Chaos, r: redis.Redis, drain_timeout: float, report: ChaosReport) -> None:
    """Until nothing is queued or in flight (sampling zombies meanwhile), then TERM the master."""

    def drained() -> bool:
        chaos.sample_zombies(proctable.snapshot())
        if r.llen(f"{NAMESPACE}:queue:{QUEUE}"):
            return False
        return not any(r.hlen(k) for k in r.scan_iter(f"{NAMESPACE}:inflight:*"))

    t0 = time.monotonic()
    report.drained = _wait_until(drained, drain_timeout)
    report.drain_seconds = time.monotonic() - t0
    chaos.sample_zombies(proctable.snapshot())
    t0 = time.monotonic()
    os.kill(chaos.master.pid, signal.SIGTERM)
    try:
        report.master_exit = chaos.master.popen.wait(30)
        report.term_seconds = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        pass
    time.sleep(ORPHAN_GRACE)
    chaos.check_orphans("after the final TERM")


def copy_logs(chaos: Chaos, keep_logs: str, report: ChaosReport) -> None:
    os.makedirs(keep_logs, exist_ok=True)
    for m in chaos.masters:
        dest = Path(keep_logs) / Path(m.log_path).name
        with contextlib.suppress(OSError):
            dest.write_bytes(Path(m.log_path).read_bytes())
            report.logs.append(str(dest))


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if "--standing" in args_in:  # the fleet-wide run: bench/standing.py
        import standing

        return standing.main(args_in)
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=60.0, help="seconds of chaos (60)")
    p.add_argument("--workers", type=int, default=4, help="pool workers (4)")
    p.add_argument("--kill-interval", type=float, default=0.1, help="seconds between kills (0.1)")
    p.add_argument(
        "--worker-share", type=float, default=0.5, help="share of kills aimed at workers (0.5)"
    )
    p.add_argument("--no-master-kill", action="store_true", help="never kill the master")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to drain (60)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep-logs", metavar="DIR", help="copy the masters' logs to DIR")
    args = p.parse_args(argv)
    install_sigterm_handler()
    print("# reproduce: python bench/chaos.py " + " ".join(sys.argv[1:] if argv is None else argv))
    report = run_chaos(
        args.duration,
        workers=args.workers,
        kill_interval=args.kill_interval,
        worker_share=args.worker_share,
        kill_master=not args.no_master_kill,
        drain_timeout=args.drain_timeout,
        seed=args.seed,
        keep_logs=args.keep_logs,
        progress=lambda msg: print(f"# {msg}", flush=True),
    )
    print(report.format())
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
