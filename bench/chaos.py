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
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from common import BENCH_DIR, install_sigterm_handler, private_redis, worker_env

from harness import proctable

QUEUE = "chaos"
JOB_CLASS = "Chaos::Work"
DONE_KEY = "chaos:done"
NAMESPACE = "resque"
ZOMBIE_GRACE = 1.0
ORPHAN_GRACE = 3.0


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


class Feeder(threading.Thread):
    """Keeps the queue topped up with uniquely numbered jobs until stopped."""

    def __init__(self, url: str, rng: random.Random, low: float, high: float, depth: int):
        super().__init__(name="feeder", daemon=True)
        import pyresque

        self.client = pyresque.Client(redis.Redis.from_url(url), namespace=NAMESPACE)
        self.rng = rng
        self.low, self.high, self.depth = low, high, depth
        self.enqueued = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if self.client.store.queue_size(QUEUE) < self.depth:
                    for _ in range(self.depth):
                        seconds = round(self.rng.uniform(self.low, self.high), 4)
                        self.client.enqueue_to(QUEUE, JOB_CLASS, self.enqueued, seconds)
                        self.enqueued += 1
                self.stop.wait(0.005)
        except BaseException as exc:
            self.error = exc


@dataclass
class Master:
    popen: subprocess.Popen[bytes]
    log_path: str

    @property
    def pid(self) -> int:
        return self.popen.pid


class Chaos:
    def __init__(self, url: str, workers: int, tmp: Path, env: dict[str, str]):
        self.url = url
        self.workers = workers
        self.tmp = tmp
        self.env = worker_env(url, **env)
        self.config = tmp / "chaos-pool.yml"
        self.config.write_text(f"{QUEUE}: {workers}\n")
        self.masters: list[Master] = []
        self.zombie_seen: dict[tuple[int, int], float] = {}
        self.zombies: dict[tuple[int, int], str] = {}
        self.transient: set[tuple[int, int]] = set()
        self.orphans: list[str] = []

    @property
    def sessions(self) -> list[int]:
        """Each master led a session of its own; its workers and job children stay in it."""
        return [m.pid for m in self.masters]

    @property
    def master(self) -> Master:
        return self.masters[-1]

    def start_master(self) -> Master:
        log_path = str(self.tmp / f"master-{len(self.masters)}.log")
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pyresque",
                    "pool",
                    "--config",
                    str(self.config),
                    "--app",
                    "chaosapp",
                    "--appname",
                    "chaos",
                ],
                env=self.env,
                cwd=str(BENCH_DIR),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.masters.append(Master(popen, log_path))
        return self.masters[-1]

    def pool_processes(
        self, table: dict[int, proctable.Stat]
    ) -> tuple[list[int], list[int], set[int]]:
        """(workers of the live master, their job children, every live master or worker pid)."""
        master = self.master.pid
        workers = [
            p for p in proctable.children(master, table) if "Processing" not in proctable.title(p)
        ]
        kids = [c for w in workers for c in proctable.children(w, table)]
        live = {master, *workers} if self.master.popen.poll() is None else set()
        return workers, kids, live

    def sample_zombies(self, table: dict[int, proctable.Stat]) -> None:
        """Remember Z-state processes under a pool process; keep those that outlive the grace."""
        now = time.monotonic()
        parents = {st.pid for st in proctable.in_sessions(self.sessions, table)}
        seen_now = set()
        for st in table.values():
            if st.state != "Z" or st.ppid not in parents:
                continue
            key = (st.pid, st.ppid)
            seen_now.add(key)
            first = self.zombie_seen.setdefault(key, now)
            if now - first >= ZOMBIE_GRACE and key not in self.zombies:
                self.zombies[key] = (
                    f"pid {st.pid} under {st.ppid} ({proctable.title(st.ppid)!r}), "
                    f"zombie for {now - first:.1f} s"
                )
        for key in list(self.zombie_seen):
            if key not in seen_now:
                del self.zombie_seen[key]  # reaped
                if key not in self.zombies:
                    self.transient.add(key)

    @property
    def transient_zombies(self) -> int:
        return len(self.transient - set(self.zombies))

    def check_orphans(self, when: str) -> None:
        """Processes of this run whose parent is not the live master or one of its workers."""
        table = proctable.snapshot()
        _workers, _kids, live = self.pool_processes(table)
        for st in proctable.in_sessions(self.sessions, table):
            if st.pid in live or st.ppid in live:
                continue
            self.orphans.append(
                f"{when}: pid {st.pid} ({proctable.title(st.pid)[:60]!r}), parent {st.ppid} "
                f"({(proctable.title(st.ppid) or 'gone')[:40]!r}), state {st.state}"
            )

    def log_facts(self) -> dict[str, int]:
        text = ""
        for m in self.masters:
            with contextlib.suppress(OSError):
                text += Path(m.log_path).read_text(errors="replace")
        patterns = {
            "spawned": r"spawned worker",
            "reaped unclean": r"reaped worker \d+ \[[^\]]*\]: (killed|exited with status [1-9])",
            "backoff": r"\(backoff\)",
            "recovered by master": r"cleaned up dead worker",
            "pruned": r"Pruning dead worker",
            "jobs requeued on recovery": r"recovered job of dead worker .*: requeued",
            "jobs failed on recovery": r"recovered job of dead worker .*: failed",
            "tracebacks": r"Traceback",
            "errors": r"\]: .*(error|Error)",
        }
        return {name: len(re.findall(p, text)) for name, p in patterns.items()}

    def kill_all(self) -> None:
        for m in self.masters:
            with contextlib.suppress(ProcessLookupError):
                os.kill(m.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                m.popen.wait(10)
        proctable.kill_sessions(self.sessions)


def _wait_until(predicate: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


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
    master_kill_at = duration / 2 if master_kill_at is None else master_kill_at
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
            began = time.monotonic()
            orphan_check_at: float | None = None
            last = began
            while (now := time.monotonic()) < began + duration:
                table = proctable.snapshot()
                chaos.sample_zombies(table)
                pool_workers, kids, _live = chaos.pool_processes(table)
                if not pool_workers:
                    report.seconds_without_workers += now - last
                last = now
                if kill_master and not report.master_kills and now >= began + master_kill_at:
                    # a busy worker first, then the master before it can reap and recover it:
                    # the dead worker's registration and in-flight job are left to the new pool
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
                    orphan_check_at = time.monotonic() + ORPHAN_GRACE
                    say(f"{now - began:.1f} s: master {old.pid} SIGKILLed, {chaos.master.pid} up")
                elif pool_workers or kids:
                    pick_worker = (rng.random() < worker_share and pool_workers) or not kids
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
                time.sleep(kill_interval * rng.uniform(0.5, 1.5))
            feeder.stop.set()
            feeder.join(10)
            if feeder.error is not None:
                raise RuntimeError(f"the feeder failed: {feeder.error!r}")
            report.enqueued = feeder.enqueued
            if orphan_check_at is not None:
                time.sleep(max(0.0, orphan_check_at - time.monotonic()))
                chaos.check_orphans("after the master's SIGKILL")
            say(f"chaos over: {report.enqueued} enqueued; draining")

            # drain: nothing queued, nothing in flight (samples zombies meanwhile)
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
        finally:
            feeder.stop.set()
            chaos.kill_all()
            report.log_facts = chaos.log_facts()
            if keep_logs:
                os.makedirs(keep_logs, exist_ok=True)
                for m in chaos.masters:
                    dest = Path(keep_logs) / Path(m.log_path).name
                    with contextlib.suppress(OSError):
                        dest.write_bytes(Path(m.log_path).read_bytes())
                        report.logs.append(str(dest))
        report.enqueued = feeder.enqueued
        report.zombies = list(chaos.zombies.values())
        report.transient_zombies = chaos.transient_zombies
        report.orphans = chaos.orphans
        account(r, report)
    return report


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
