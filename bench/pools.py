"""Pools of two worker processes draining one queue of no-op jobs, side by side with their peers.

    python bench/pools.py [--jobs 20000] [--repeat 3] [--before TREE] [--modes LIST]

Also run by ``throughput.py`` (``--pool-jobs``) after its single-worker figures, on its server.

| mode | what runs |
|---|---|
| ``bare`` | 2 x ``bareloop.py --block``: BRPOP, ``json.loads``, the job looked up by name |
| ``pyresque`` | 2 x ``pyresque work --in-process --burst`` (per-job metrics on: the default) |
| ``pyresque-nometrics`` | the same with ``PYRESQUE_JOB_METRICS=0`` |
| ``pyresque-before`` | the same from ``--before TREE`` (its ``src`` first on the path); with ``--before-no-hiredis``, without hiredis, as a tree from before hiredis was a dependency ran |
| ``dramatiq`` | ``dramatiq dramatiqjobs --processes 2 --threads 8`` (Redis broker, same no-op) |

Each mode runs ``--repeat`` times, interleaved (round 1 of every mode, then round 2, ...; every
other round runs the modes in reverse order, so that no mode always follows the same one); the
summary shows medians. **jobs/s** is measured by the jobs: job 0 and job N-1 write
``time.monotonic()`` when they end, and the rate is ``(N-1) / |end of N-1 - end of 0|``.
**Redis CPU per job** is redis-server's own CPU (``INFO cpu``: ``used_cpu_user + used_cpu_sys``,
sampled every 20 ms by a thread of this script) over the same window, divided by N-1: what a job
costs the server, whatever the client sends.

Nothing is pinned: three busy processes (two workers and Redis) share the CPUs as the scheduler
decides (run from throughput.py, redis-server stays on the CPU its --cpus put it on). Prints
figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from common import (
    BENCH_DIR,
    NAMESPACE,
    PYRESQUE_QUEUE_KEY,
    QUEUE,
    CpuAccount,
    PrivateRedis,
    Proc,
    RedisCpuSampler,
    add_transport_argument,
    environment_summary,
    install_sigterm_handler,
    median,
    placement,
    private_redis,
    pyresque_argv,
    read_marks,
    say,
    worker_env,
)

from pyresque.wire import protocol

WORKERS = 2
DRAMATIQ_THREADS = 8
NO_HIREDIS = BENCH_DIR / "nohiredis"  # a `hiredis` that fails to import: redis-py parses in Python

TARGETS = (
    # (label, numerator mode, denominator mode, target, "%" or "x", higher is better)
    ("pyresque in-process / bare BRPOP loop (jobs/s)", "pyresque", "bare", 0.65, "%", True),
    ("pyresque in-process / Dramatiq 2x8 (jobs/s)", "pyresque", "dramatiq", 2.5, "x", True),
)


@dataclass(frozen=True)
class PoolMode:
    key: str
    label: str
    system: str  # "bare", "pyresque" or "dramatiq"
    env: tuple[tuple[str, str], ...] = ()
    tree: Path | None = None  # another checkout's src for pyresque
    hiredis: bool = True


@dataclass
class PoolRun:
    mode: PoolMode
    jobs: int
    rate: float | None = None
    redis_us: float | None = None  # Redis CPU per job, microseconds
    problems: list[str] = field(default_factory=list)


def modes_for(before: Path | None, before_hiredis: bool = True) -> dict[str, PoolMode]:
    modes = [
        PoolMode("bare", "bare redis-py BRPOP loop x2", "bare"),
        PoolMode("pyresque", "pyresque --in-process x2", "pyresque"),
        PoolMode(
            "pyresque-nometrics",
            "pyresque x2, JOB_METRICS=0",
            "pyresque",
            env=(("PYRESQUE_JOB_METRICS", "0"),),
        ),
    ]
    if before is not None:
        modes.append(
            PoolMode(
                "pyresque-before",
                f"pyresque x2 @ {before.name}",
                "pyresque",
                tree=before,
                hiredis=before_hiredis,
            )
        )
    modes.append(PoolMode("dramatiq", f"Dramatiq {WORKERS}x{DRAMATIQ_THREADS} threads", "dramatiq"))
    return {m.key: m for m in modes}


# --- one run -------------------------------------------------------------------------------------


def prefill(client: redis.Redis, mode: PoolMode, n: int, env: dict[str, str]) -> None:
    if mode.system == "dramatiq":
        os.environ["REDIS_URL"] = env["REDIS_URL"]
        import dramatiqjobs

        dramatiqjobs.broker.client = client  # the URL may differ between servers
        for i in range(n):
            dramatiqjobs.noop.send(i, n)
        return
    for start in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        pipe.sadd(f"{NAMESPACE}:queues", QUEUE)
        pipe.rpush(
            PYRESQUE_QUEUE_KEY,
            *[
                protocol.encode_payload("Bench::Noop", [i, n])
                for i in range(start, min(n, start + 1000))
            ],
        )
        pipe.execute()


def argv_for(mode: PoolMode) -> list[str]:
    if mode.system == "bare":
        return [sys.executable, "bareloop.py", "--block", PYRESQUE_QUEUE_KEY]
    if mode.system == "dramatiq":
        return [
            sys.executable,
            "-m",
            "dramatiq",
            "dramatiqjobs",
            "--processes",
            str(WORKERS),
            "--threads",
            str(DRAMATIQ_THREADS),
            "--path",
            str(BENCH_DIR),
        ]
    return pyresque_argv(in_process=True, burst=True)


def env_for(mode: PoolMode, url: str, marks: str) -> dict[str, str]:
    env = worker_env(url, BENCH_MARKS=marks, **dict(mode.env))
    if mode.tree is not None:
        paths = [str(BENCH_DIR), str(mode.tree / "src"), os.environ.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    if not mode.hiredis:
        env["PYTHONPATH"] = os.pathsep.join((str(NO_HIREDIS), env["PYTHONPATH"]))
    return env


def dramatiq_left(client: redis.Redis) -> int:
    return int(client.hlen(f"dramatiq:{QUEUE}.msgs"))  # acknowledged messages leave this hash


def verify(client: redis.Redis, mode: PoolMode, n: int, procs: list[Proc]) -> list[str]:
    if mode.system == "dramatiq":
        left = dramatiq_left(client)
        return [f"dramatiq: {left} messages not acknowledged"] if left else []
    problems = []
    left = client.llen(PYRESQUE_QUEUE_KEY)
    if left:
        problems.append(f"{left} jobs left in the queue")
    if mode.system == "bare":
        done = sum(int(p.log_tail(1).strip() or 0) for p in procs)
        if done != n:
            problems.append(f"bare loops ran {done} jobs, expected {n}")
        return problems
    processed = int(client.get(f"{NAMESPACE}:stat:processed") or 0)
    failed = int(client.get(f"{NAMESPACE}:stat:failed") or 0)
    inflight = [k for k in client.scan_iter(f"{NAMESPACE}:inflight:*") if client.hlen(k)]
    if processed != n or failed or inflight:
        problems.append(
            f"pyresque: processed {processed}/{n}, failed {failed}, "
            f"{len(inflight)} non-empty in-flight hashes"
        )
    return problems


def run_pool(server: PrivateRedis, mode: PoolMode, n: int) -> PoolRun:
    client = server.client()
    client.flushall()
    run = PoolRun(mode, n)
    fd, marks_path = tempfile.mkstemp(prefix="bench-pool-marks-")
    os.close(fd)
    procs: list[Proc] = []
    env = env_for(mode, server.url, marks_path)
    try:
        prefill(client, mode, n, env)
        deadline = time.monotonic() + 60 + n * 0.002
        with RedisCpuSampler(server.url) as cpu:
            if mode.system == "dramatiq":
                procs.append(Proc(argv_for(mode), env, mode.key))
                while dramatiq_left(client) and time.monotonic() < deadline:
                    time.sleep(0.05)
            else:
                for w in range(WORKERS):
                    procs.append(Proc(argv_for(mode), env, f"{mode.key}-{w}"))
                for proc in procs:
                    if proc.wait(max(0.0, deadline - time.monotonic())) is None:
                        run.problems.append(f"{proc.label} still running at the deadline")
        run.problems += verify(client, mode, n, procs)
        marks = read_marks(marks_path)
        if 0 in marks and n - 1 in marks and marks[0][0] != marks[n - 1][0]:
            t0, t1 = sorted((marks[0][0], marks[n - 1][0]))
            run.rate = (n - 1) / (t1 - t0)
            run.redis_us = (cpu.at(t1) - cpu.at(t0)) / (n - 1) * 1e6
        else:
            run.problems.append(f"timing marks missing: {sorted(marks)}")
        if run.problems and procs:
            run.problems.append(f"log {procs[0].log_path}:\n{procs[0].log_tail()}")
        return run
    finally:
        for proc in procs:
            proc.stop(grace=5.0 if mode.system == "dramatiq" else 0.0)
            if not run.problems:
                proc.discard_log()
        os.unlink(marks_path)


# --- reporting -----------------------------------------------------------------------------------


def ratio_line(label: str, num: float | None, den: float | None, target: float, unit: str) -> str:
    if not num or not den:
        return f"  {label:<52} n/a"
    ratio = num / den
    shown = f"{ratio * 100:.0f}%" if unit == "%" else f"{ratio:.2f}x"
    wanted = f">= {target * 100:.0f}%" if unit == "%" else f">= {target:g}x"
    return (
        f"  {label:<52} {shown:>7}   (target {wanted}: {'meets' if ratio >= target else 'BELOW'})"
    )


def cpu_line(label: str, num: float | None, den: float | None, limit: float) -> str:
    if not num or not den:
        return f"  {label:<52} n/a"
    ratio = num / den
    verdict = "meets" if ratio <= limit else "ABOVE"
    return f"  {label:<52} {ratio:6.2f}x   (target <= {limit:g}x: {verdict})"


def run_pools(
    server: PrivateRedis, modes: list[PoolMode], jobs: int, repeat: int
) -> dict[str, list[PoolRun]]:
    say(
        f"POOLS OF {WORKERS} PROCESSES ({jobs} no-op jobs per run, {repeat} rounds interleaved, "
        "every other round in reverse order; nothing pinned)"
    )
    runs: dict[str, list[PoolRun]] = {m.key: [] for m in modes}
    for rep in range(repeat):
        say(f"  round {rep + 1}/{repeat}:")
        # a mode's place in the round would otherwise bias it the same way in every round
        for mode in modes if rep % 2 == 0 else modes[::-1]:
            run = run_pool(server, mode, jobs)
            runs[mode.key].append(run)
            rate = f"{run.rate:8.0f}" if run.rate else "     n/a"
            cpu = f"{run.redis_us:6.1f}" if run.redis_us else "   n/a"
            say(f"    {mode.label:<34} {rate} jobs/s   Redis CPU {cpu} us/job")
            for problem in run.problems:
                say(f"      !! {problem}")
    say()
    rate: dict[str, float | None] = {}
    cpu: dict[str, float | None] = {}
    say(
        f"  {'mode':<34} {'jobs/s':>8} {'[min..max]':>15} {'Redis CPU us/job':>17} {'[min..max]':>13}"
    )
    for mode in modes:
        good = [r for r in runs[mode.key] if r.rate and not r.problems]
        rates = [r.rate for r in good if r.rate]
        cpus = [r.redis_us for r in good if r.redis_us]
        rate[mode.key] = median(rates) if rates else None
        cpu[mode.key] = median(cpus) if cpus else None
        say(
            f"  {mode.label:<34} {rate[mode.key] or float('nan'):8.0f} "
            f"{f'[{min(rates):.0f}..{max(rates):.0f}]' if rates else '':>15} "
            f"{cpu[mode.key] or float('nan'):17.1f} "
            f"{f'[{min(cpus):.1f}..{max(cpus):.1f}]' if cpus else '':>13}"
        )
    say()
    say("  RATIOS (medians)")
    for label, num, den, target, unit, _ in TARGETS:
        say(ratio_line(label, rate.get(num), rate.get(den), target, unit))
    say(
        cpu_line(
            "Redis CPU per job: pyresque / bare loop", cpu.get("pyresque"), cpu.get("bare"), 1.5
        )
    )
    say(
        cpu_line(
            "  the same with JOB_METRICS=0",
            cpu.get("pyresque-nometrics"),
            cpu.get("bare"),
            1.5,
        )
    )
    if "pyresque-before" in rate:
        before = rate.get("pyresque-before")
        now = rate.get("pyresque")
        if before and now:
            say(f"  {'pyresque now / before (jobs/s)':<52} {now / before:6.2f}x")
        cb, cn = cpu.get("pyresque-before"), cpu.get("pyresque")
        if cb and cn:
            say(f"  {'pyresque now / before (Redis CPU per job)':<52} {cn / cb:6.2f}x")
    say()
    return runs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=20000, help="jobs per run (20000)")
    p.add_argument("--repeat", "-r", type=int, default=3, help="rounds; medians shown (3)")
    add_transport_argument(p)
    p.add_argument("--before", type=Path, help="another checkout to run as pyresque-before")
    p.add_argument(
        "--before-no-hiredis",
        action="store_true",
        help="run the --before tree without hiredis (a tree from before it was a dependency)",
    )
    p.add_argument("--modes", help="comma-separated subset of the modes (default: all)")
    return p.parse_args(argv)


def select(args: argparse.Namespace) -> list[PoolMode]:
    available = modes_for(args.before, not args.before_no_hiredis)
    keys = args.modes.split(",") if args.modes else list(available)
    unknown = set(keys) - set(available)
    if unknown:
        raise SystemExit(f"unknown modes {sorted(unknown)}; known: {','.join(available)}")
    return [available[k] for k in available if k in keys]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    modes = select(args)
    with private_redis(args.transport, placement("any")) as server:
        say(f"pools: {server.describe()}")
        say(environment_summary())
        cpu = CpuAccount()
        run_pools(server, modes, args.jobs, args.repeat)
        say(cpu.report(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
