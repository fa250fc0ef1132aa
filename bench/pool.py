"""Pool supervision, side by side: ``pyresque pool`` against RQ's ``rq worker-pool``.

Measured, as medians over ``--runs`` runs against a private redis-server:

(a) start-up: from starting the master until N workers are registered in Redis
    (pyresque: ``resque:workers``; RQ: ``rq:workers``);
(b) replacement: from ``kill -9`` of one idle worker until a job enqueued after the kill starts
    its perform in the replacement (the job records ``time.time()``), and until the replacement is
    registered. Two variants: the job pushed right after the kill, and pushed once the killed
    process is dead (zombie or gone). pyresque: one pool with one single-worker group per sample,
    each worker up for longer than the crash-loop threshold (5 s) so no backoff applies; RQ: one
    pool with one worker, killed once per sample;
(c) TERM to the master until it exits: idle (same pools as (a)), and busy (every worker in a 60 s
    job; pyresque interrupts and requeues them; RQ's warm shutdown waits for the jobs, so RQ is
    cut off at ``--busy-cap`` and measured once);
(d) the master's CPU while idle with 32 workers, from utime+stime in /proc/<pid>/stat over
    ``--cpu-window`` s, in % of one core (and its workers' together, for comparison).

Every master runs in a session of its own; everything in that session is SIGKILLed after each
measurement. Run ``python bench/pool.py --help`` for the options; the default takes ~2-3 minutes.

Its parts: pool_masters.py (a master of either system, started, watched and stopped) and
pool_report.py (the figures, the table and the targets).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from common import (
    add_transport_argument,
    environment_summary,
    install_sigterm_handler,
    private_redis,
)
from pool_masters import (
    QUEUE,
    STARTED_KEY,
    BenchError,
    Pool,
    enqueue,
    gone,
    registered,
    running_pool,
    started_at,
    term_and_wait,
    wait_for,
    wait_ready,
)
from pool_report import Results, print_table

from harness import proctable

SYSTEMS = ("pyresque", "rq")
CRASH_LOOP_THRESHOLD = 5.0  # pyresque's Backoff threshold: an earlier death backs off 0.1 s
VARIANTS = ("now", "gone")  # the replacement's job: pushed right after the kill / once it is dead


# --- the measurements ----------------------------------------------------------------------------


@dataclass
class Bench:
    """One benchmark session: the private Redis, a scratch directory, the options, the figures."""

    r: redis.Redis
    url: str
    tmp: Path
    args: argparse.Namespace
    res: Results = field(default_factory=Results)

    def pool(self, system: str, **kw: object) -> contextlib.AbstractContextManager[Pool]:
        if system == "pyresque":
            kw["extra"] = tuple(self.args.pyresque_arg)
        return running_pool(system, self.url, self.tmp, **kw)  # type: ignore[arg-type]

    def startup_run(self, system: str, n: int, cpu_window: float) -> None:
        """(a) start-up, (d) idle CPU when ``cpu_window``, then (c) idle TERM, on one pool."""
        r, res = self.r, self.res
        r.flushall()
        with self.pool(system, workers=n) as pool:
            res.startup.setdefault((system, n), []).append(wait_ready(r, pool, n))
            time.sleep(0.3)  # let every worker reach its idle wait
            if cpu_window > 0:
                time.sleep(1.0)
                self.sample_cpu(pool, cpu_window)
            took = term_and_wait(pool, 30.0)
            if took is None:
                raise BenchError(f"{system} master did not exit within 30 s of TERM when idle")
            res.idle_term.setdefault((system, n), []).append(took)
            time.sleep(0.2)
            left = len(proctable.in_sessions([pool.pid]))
            res.idle_leftovers[(system, n)] = res.idle_leftovers.get((system, n), 0) + left

    def sample_cpu(self, pool: Pool, window: float) -> None:
        master0 = proctable.cpu_seconds(pool.pid) or 0.0
        tree0 = [st for st in proctable.in_sessions([pool.pid]) if st.pid != pool.pid]
        t0 = time.monotonic()
        time.sleep(window)
        master1 = proctable.cpu_seconds(pool.pid) or 0.0
        tree1 = {st.pid: st for st in proctable.in_sessions([pool.pid]) if st.pid != pool.pid}
        elapsed = time.monotonic() - t0
        # only processes alive over the whole window (one that left took its ticks along)
        ticks = sum(tree1[st.pid].cpu_ticks - st.cpu_ticks for st in tree0 if st.pid in tree1)
        self.res.master_cpu.setdefault(pool.system, []).append(100 * (master1 - master0) / elapsed)
        self.res.workers_cpu.setdefault(pool.system, []).append(
            100 * ticks / proctable.CLOCK_TICKS / elapsed
        )

    def replacement(self, system: str) -> None:
        """(b), both variants, ``runs`` times each: the job pushed right after the kill, and
        pushed once the killed process is gone (its sockets closed)."""
        self.r.flushall()
        plan = [(variant, i) for variant in VARIANTS for i in range(self.args.runs)]
        if system == "pyresque":
            groups = {f"repl{k}": 1 for k in range(len(plan))}
            with self.pool(system, groups=groups) as pool:
                wait_ready(self.r, pool, len(plan))
                # older than the crash-loop threshold: a normal replacement, no backoff
                time.sleep(max(0.0, pool.started + CRASH_LOOP_THRESHOLD + 0.5 - time.monotonic()))
                for k, (variant, i) in enumerate(plan):
                    queue = f"repl{k}"
                    titles = pool.worker_titles()
                    [victim] = [p for p, t in titles.items() if t.endswith(f"Waiting for {queue}")]
                    self.replace_once(pool, victim, queue, f"{variant}-{i}", variant)
        else:
            with self.pool(system, workers=1) as pool:
                wait_ready(self.r, pool, 1)
                for variant, i in plan:
                    [victim] = wait_for(pool.workers, 30, "the RQ worker")
                    wait_for(
                        lambda v=victim: "Listening on" in proctable.title(v), 30, "idle worker"
                    )
                    time.sleep(0.5)
                    self.replace_once(pool, victim, QUEUE, f"{variant}-{i}", variant)

    def replace_once(self, pool: Pool, victim: int, queue: str, sample: str, variant: str) -> None:
        r, res, cap = self.r, self.res, self.args.replace_cap
        before = registered(r, pool.system)
        kill_wall = time.time()
        kill_mono = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        if variant == "gone":
            wait_for(lambda: gone(victim), 5, "the killed worker to die", 0.0002)
        enqueue(r, pool.system, queue, "stamp", sample)
        reg_at: float | None = None
        key = (pool.system, variant)
        while time.monotonic() < kill_mono + cap:
            if reg_at is None:
                fresh = registered(r, pool.system) - before
                if pool.system == "pyresque":
                    fresh = {w for w in fresh if w.endswith(f":{queue}")}
                if fresh:
                    reg_at = time.monotonic() - kill_mono
                    res.replace_registered.setdefault(key, []).append(reg_at)
            when = started_at(r, sample)
            if when is not None:
                res.replace_job.setdefault(key, []).append(when - kill_wall)
                return
            time.sleep(0.001)
        res.replace_job.setdefault(key, []).append(None)
        stranded = sorted(k.decode() for k in r.keys("rq:queue:*:intermediate"))
        where = f"; the job sits in {', '.join(stranded)}" if stranded else ""
        res.replace_notes.setdefault(key, []).append(
            f"{sample}: not started within {cap:.0f} s{where}"
        )

    def busy_term(self, system: str) -> None:
        """(c) busy: every worker in a 60 s job, then TERM to the master."""
        r, res, n, cap = self.r, self.res, self.args.busy_size, self.args.busy_cap
        for run in range(self.args.runs):
            r.flushall()
            with self.pool(system, workers=n) as pool:
                wait_ready(r, pool, n)
                for i in range(n):
                    enqueue(r, system, QUEUE, "sleep", f"busy-{run}-{i}", 60)
                wait_for(lambda: r.llen(STARTED_KEY) >= n, 60, f"{n} busy jobs to start", 0.005)
                time.sleep(0.2)
                took = term_and_wait(pool, cap if system == "rq" else 30.0)
                res.busy_term.setdefault(system, []).append(took)
                if system == "pyresque":
                    queued = r.llen(f"resque:queue:{QUEUE}")
                    failed = r.llen("resque:failed")
                    res.busy_notes[system] = (
                        f"{queued}/{n} jobs back in the queue, {failed} failure records"
                    )
                if took is None:
                    res.busy_notes[system] = (
                        f"still running {cap:.0f} s after TERM (warm shutdown waits for the "
                        "60 s jobs); killed, so measured once"
                    )
                    return


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--sizes", default="2,8,32", help="pool sizes for start-up and idle TERM (2,8,32)"
    )
    p.add_argument("--runs", type=int, default=3, help="runs per measurement (3)")
    p.add_argument("--busy-size", type=int, default=8, help="workers in the busy TERM test (8)")
    p.add_argument(
        "--busy-cap",
        type=float,
        default=10.0,
        help="give up on RQ's busy TERM after this many seconds (10)",
    )
    p.add_argument("--cpu-size", type=int, default=32, help="pool size of the idle CPU sample (32)")
    p.add_argument("--cpu-window", type=float, default=10.0, help="CPU sampling window, s (10)")
    p.add_argument("--cpu-runs", type=int, default=3, help="runs that sample CPU (3)")
    p.add_argument(
        "--replace-cap",
        type=float,
        default=5.0,
        help="give up on a replacement's job after this many seconds (5)",
    )
    p.add_argument("--systems", default="pyresque,rq", help="pyresque,rq")
    p.add_argument(
        "--pyresque-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `pyresque pool` (repeatable), e.g. --pyresque-arg=--memory-interval=60",
    )
    p.add_argument(
        "--only",
        default="abcd",
        help="measurements to run, a subset of abcd (abcd); (a), (c) idle and (d) share pools",
    )
    add_transport_argument(p, default="unix")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.cpu_size not in args.sizes:
        args.sizes.append(args.cpu_size)
    args.systems = tuple(s for s in args.systems.split(",") if s)
    for s in args.systems:
        if s not in SYSTEMS:
            p.error(f"unknown system {s!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    command = "python bench/pool.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# reproduce: {command.strip()}")
    print(f"# {environment_summary()}")
    began = time.monotonic()
    with private_redis(args.transport) as server, tempfile.TemporaryDirectory() as d:
        bench = Bench(server.client(), server.url, Path(d), args)
        print(f"# {server.describe()}")
        print(flush=True)
        for system in args.systems:
            for run in range(args.runs):
                for n in args.sizes:
                    sample = "d" in args.only and n == args.cpu_size and run < args.cpu_runs
                    if sample or "a" in args.only or "c" in args.only:
                        bench.startup_run(system, n, args.cpu_window if sample else 0)
            if "b" in args.only:
                bench.replacement(system)
            if "c" in args.only:
                bench.busy_term(system)
            print(f"# {system} done after {time.monotonic() - began:.0f} s", flush=True)
        res = bench.res
    print()
    print_table(args, res, args.systems)
    print(f"\n# total {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
