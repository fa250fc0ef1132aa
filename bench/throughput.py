"""Throughput of ONE worker process draining a pre-filled queue of no-op jobs, on one private Redis.

    python bench/throughput.py [--jobs N] [--repeat R] [--transport tcp|unix] ...

Modes: a bare redis-py LPOP loop (the ceiling), pyresque --in-process, RQ SimpleWorker, pyresque
fork-per-job, RQ Worker (fork per job). Each is a burst worker started as its own process.

Timing: the job itself appends ``time.monotonic()`` to a file when job 0 and job n-1 end; the
steady-state rate is ``(n - 1) / (end of last - end of first)``: n-1 whole cycles (acknowledge,
reserve, run), with interpreter start-up, imports, registration and shutdown outside the window.
The wall-clock rate (process start to exit) and an empty burst run's duration are printed too, and
redis-server's own CPU per job over the same window (``INFO cpu``, as in ``pools.py``).

Redis commands per job: INFO commandstats before and after each run, minus an empty burst run of
the same worker (start-up and shutdown), divided by the jobs. commandstats counts the commands a
Lua script runs as well; a separate short run under MONITOR splits the per-job count into commands
the worker sent and commands run inside scripts (the figures the worker's round trips follow).

Then pools of two processes beside Dramatiq 2x8 threads (``pools.py``, ``--pool-jobs``): jobs/s
and Redis's own CPU per job, with the ratios and their targets.

The modes and one run of a mode are in throughput_modes.py.

Prints figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pools
from common import (
    CpuAccount,
    PrivateRedis,
    add_cpus_argument,
    add_transport_argument,
    environment_summary,
    install_sigterm_handler,
    median,
    placement,
    private_redis,
    say,
)
from throughput_modes import MODES, SLEEP_SECONDS, Mode, Monitor, Run, run_once

# --- reporting ---------------------------------------------------------------------------------


def report_problems(run: Run) -> None:
    for problem in run.problems:
        say(f"    !! {run.mode.label}: {problem}")


def per_job(delta: collections.Counter[str], base: collections.Counter[str], n: int) -> dict:
    out = {}
    for name in set(delta) | set(base):
        value = (delta.get(name, 0) - base.get(name, 0)) / n
        if abs(value) >= 0.005:
            out[name] = value
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def fmt_commands(commands: dict) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in commands.items())


def ratio_line(label: str, num: float | None, den: float | None, target: float, unit: str) -> str:
    if not num or not den:
        return f"  {label:<44} n/a"
    ratio = num / den
    shown = f"{ratio * 100:.0f}%" if unit == "%" else f"{ratio:.2f}x"
    wanted = f">= {target * 100:.0f}%" if unit == "%" else f">= {target:g}x"
    verdict = "meets" if ratio >= target else "BELOW"
    return f"  {label:<44} {shown:>8}   (target {wanted}: {verdict})"


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--jobs",
        type=int,
        default=5000,
        help="jobs per run for the bare loop, pyresque --in-process, RQ SimpleWorker (5000)",
    )
    p.add_argument(
        "--fork-jobs", type=int, default=1000, help="jobs per run for pyresque fork mode (1000)"
    )
    p.add_argument(
        "--rq-fork-jobs",
        type=int,
        default=300,
        help="jobs per run for RQ Worker, which forks at ~30 jobs/s (300)",
    )
    p.add_argument("--repeat", "-r", type=int, default=3, help="runs per mode; medians shown (3)")
    add_transport_argument(p)
    add_cpus_argument(p)
    p.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}"
    )
    p.add_argument(
        "--sleep-jobs", type=int, default=200, help="10 ms jobs for the overhead figure (200)"
    )
    p.add_argument(
        "--monitor-jobs",
        type=int,
        default=200,
        help="jobs of the MONITOR run that splits commands per job (fork modes: half); 0 skips",
    )
    p.add_argument("--rq-quiet", action="store_true", help="run rq workers with --quiet")
    p.add_argument(
        "--pool-jobs",
        type=int,
        default=20000,
        help="jobs per run of the pools of two beside Dramatiq (pools.py; 20000); 0 skips",
    )
    p.add_argument(
        "--before", type=Path, help="another checkout, run as pyresque-before in the pools"
    )
    args = p.parse_args(argv)
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        p.error(f"unknown modes {sorted(unknown)}")
    return args


def jobs_for(mode: Mode, args: argparse.Namespace) -> int:
    if mode.system == "pyresque" and mode.forks:
        return int(args.fork_jobs)
    if mode.key == "rq-fork":
        return int(args.rq_fork_jobs)
    return int(args.jobs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    modes = [MODES[k] for k in MODES if k in args.modes.split(",")]
    with private_redis(args.transport, placement(args.cpus)) as server:
        say(f"throughput: one worker process, {server.describe()}")
        say(environment_summary())
        cpu = CpuAccount()
        say(
            f"repeats {args.repeat}; jobs per run: "
            + ", ".join(f"{m.key} {jobs_for(m, args)}" for m in modes)
        )
        if args.rq_quiet:
            say("rq workers run with --quiet")
        say()
        empty = empty_runs(server, modes, args)
        runs = rounds(server, modes, args)
        med = summary(modes, runs, empty)
        ratios(modes, runs, med)
        commands_per_job(modes, runs, empty)
        if args.monitor_jobs > 0:
            monitor_split(server, modes, args)

        if args.sleep_jobs > 1:
            sleep_overhead(server, modes, args)
        if args.pool_jobs > 0:
            pool_modes = list(pools.modes_for(args.before).values())
            pools.run_pools(server, pool_modes, args.pool_jobs, args.repeat)
        say(cpu.report(server))
    return 0


def empty_runs(server: PrivateRedis, modes: list[Mode], args: argparse.Namespace) -> dict[str, Run]:
    """Start-up cost and start-up commands: one empty burst run per worker."""
    empty: dict[str, Run] = {}
    say("empty burst runs (start-up + shutdown, no jobs):")
    for mode in modes:
        if mode.system == "bare":
            continue
        run = run_once(server, mode, 0, rq_quiet=args.rq_quiet)
        empty[mode.key] = run
        say(
            f"  {mode.label:<28} {run.wall * 1000:7.0f} ms, "
            f"{sum(run.commands.values())} Redis commands"
        )
        report_problems(run)
    say()
    return empty


def rounds(
    server: PrivateRedis, modes: list[Mode], args: argparse.Namespace
) -> dict[str, list[Run]]:
    """``--repeat`` rounds of every mode, interleaved, so drift hits them all alike."""
    runs: dict[str, list[Run]] = {m.key: [] for m in modes}
    for rep in range(args.repeat):
        say(f"round {rep + 1}/{args.repeat}:")
        for mode in modes:
            n = jobs_for(mode, args)
            run = run_once(server, mode, n, rq_quiet=args.rq_quiet)
            runs[mode.key].append(run)
            steady = f"{run.steady:8.0f}" if run.steady else "     n/a"
            redis_cpu = f"{run.redis_us:6.1f}" if run.redis_us else "   n/a"
            say(
                f"  {mode.label:<28} {n:5d} jobs  steady {steady} jobs/s  "
                f"wall {run.wall:6.2f} s ({n / run.wall:6.0f} jobs/s incl. start-up)  "
                f"Redis CPU {redis_cpu} us/job"
            )
            report_problems(run)
    say()
    return runs


def first_per_job(mode: Mode, runs: dict[str, list[Run]], empty: dict[str, Run]) -> dict:
    """Commands per job of the mode's first run, minus its empty run's."""
    first = runs[mode.key][0]
    base = empty.get(mode.key)
    return per_job(first.commands, base.commands if base else collections.Counter(), first.jobs)


def summary(
    modes: list[Mode], runs: dict[str, list[Run]], empty: dict[str, Run]
) -> dict[str, float | None]:
    """The table of medians; returns each mode's median steady rate."""
    med: dict[str, float | None] = {}
    say("SUMMARY (median of runs)")
    say(
        f"  {'mode':<28} {'jobs':>5} {'steady jobs/s':>13} {'[min..max]':>15} "
        f"{'ms/job':>7} {'wall jobs/s':>11} {'start+exit':>10} {'cmds/job':>8}"
    )
    for mode in modes:
        good = [r.steady for r in runs[mode.key] if r.steady and not r.problems]
        med[mode.key] = median(good) if good else None
        walls = [r.jobs / r.wall for r in runs[mode.key] if not r.problems]
        base = empty.get(mode.key)
        first = runs[mode.key][0]
        cmds = first_per_job(mode, runs, empty)
        spread = f"[{min(good):.0f}..{max(good):.0f}]" if good else ""
        m = med[mode.key]
        say(
            f"  {mode.label:<28} {first.jobs:>5} {m or float('nan'):>13.0f} {spread:>15} "
            f"{1000 / m if m else float('nan'):>7.3f} "
            f"{median(walls) if walls else float('nan'):>11.0f} "
            f"{(base.wall * 1000 if base else float('nan')):>8.0f}ms "
            f"{sum(cmds.values()):>8.2f}"
        )
    say()
    return med


def ratios(modes: list[Mode], runs: dict[str, list[Run]], med: dict[str, float | None]) -> None:
    """The ratios of the steady-state medians and of Redis's CPU per job, against their targets."""
    say("RATIOS (steady-state medians)")
    g = med.get
    say(
        ratio_line(
            "pyresque in-process / RQ SimpleWorker", g("pyresque-inproc"), g("rq-simple"), 10, "x"
        )
    )
    say(
        ratio_line(
            "pyresque in-process / bare LPOP loop", g("pyresque-inproc"), g("bare"), 0.5, "%"
        )
    )
    say(ratio_line("pyresque fork / RQ Worker", g("pyresque-fork"), g("rq-fork"), 4, "x"))
    redis_cpu: dict[str, float | None] = {}
    for mode in modes:
        cpus = [r.redis_us for r in runs[mode.key] if r.redis_us and not r.problems]
        redis_cpu[mode.key] = median(cpus) if cpus else None
        if cpus:
            say(
                f"  Redis CPU per job, {mode.label:<28} {median(cpus):6.1f} us "
                f"[{min(cpus):.1f}..{max(cpus):.1f}]"
            )
    say(
        pools.cpu_line(
            "Redis CPU per job: pyresque in-process / bare loop",
            redis_cpu.get("pyresque-inproc"),
            redis_cpu.get("bare"),
            1.5,
        )
    )
    say()


def commands_per_job(modes: list[Mode], runs: dict[str, list[Run]], empty: dict[str, Run]) -> None:
    say("REDIS COMMANDS PER JOB (INFO commandstats delta of round 1 minus the empty run, / jobs;")
    say("  commands run inside Lua scripts are counted too)")
    for mode in modes:
        cmds = first_per_job(mode, runs, empty)
        say(f"  {mode.label:<28} {sum(cmds.values()):6.2f}  ({fmt_commands(cmds)})")
    say()


def monitor_split(server: PrivateRedis, modes: list[Mode], args: argparse.Namespace) -> None:
    say(
        "COMMANDS PER JOB BY ORIGIN (one run under MONITOR, steady-state window between the first "
        "and last job's end;"
    )
    say(
        "  'sent' = commands the worker sent (pipelined ones count one each), 'in Lua' = run by scripts)"
    )
    for mode in modes:
        if mode.system == "bare":
            continue
        n = max(2, args.monitor_jobs // 2 if mode.forks else args.monitor_jobs)
        mon = Monitor(server.url)
        run = run_once(server, mode, n, rq_quiet=args.rq_quiet, monitor=mon)
        if mon.log.error:
            say(f"  {mode.label:<28} MONITOR failed: {mon.log.error}")
            continue
        report_problems(run)
        if run.window is None:
            say(f"  {mode.label:<28} no timing window")
            continue
        w0, w1 = run.window
        inside = [(who, cmd) for t, who, cmd in mon.log.entries if w0 < t <= w1]
        counts = collections.Counter(inside)
        cycles = n - 1
        sent = {c: v / cycles for (who, c), v in counts.most_common() if who == "client"}
        lua = {c: v / cycles for (who, c), v in counts.most_common() if who == "lua"}
        say(
            f"  {mode.label:<28} {n:4d} jobs: sent {sum(sent.values()):5.2f} ({fmt_commands(sent)})"
        )
        if lua:
            say(f"  {'':<28}            in Lua {sum(lua.values()):5.2f} ({fmt_commands(lua)})")
    say()


def measured_sleep_overshoot(samples: int = 100) -> float:
    start = time.monotonic()
    for _ in range(samples):
        time.sleep(SLEEP_SECONDS)
    return (time.monotonic() - start) / samples - SLEEP_SECONDS


def sleep_overhead(server: PrivateRedis, modes: list[Mode], args: argparse.Namespace) -> None:
    say(
        f"OVERHEAD PER 10 ms JOB ({args.sleep_jobs} jobs per run, {args.repeat} runs, median [min..max])"
    )
    overshoot = measured_sleep_overshoot()
    say(
        f"  time.sleep(0.01) itself overshoots by {overshoot * 1000:.3f} ms here "
        "(measured in this process); 'spin' busy-waits 10 ms instead, so the CPU never idles"
    )
    notes: dict[tuple[str, str], Callable[[float], str]] = {
        ("sleep", "bare"): lambda ms: "(reference: one LPOP per job)",
        ("sleep", "pyresque-inproc"): lambda ms: (
            f"(target < 1 ms: {'meets' if ms < 1 else 'ABOVE'})"
        ),
        ("sleep", "pyresque-fork"): lambda ms: "(for information)",
        ("sleep", "pyresque-warm"): lambda ms: "(for information)",
        ("spin", "bare"): lambda ms: "(reference)",
        ("spin", "pyresque-inproc"): lambda ms: "(diagnostic: no idle CPU between jobs)",
    }
    rates: dict[str, float] = {}  # 10 ms jobs per second
    for job in ("sleep", "spin"):
        for mode in modes:
            note = notes.get((job, mode.key))
            if note is None:
                continue
            values = []
            for _ in range(args.repeat):
                run = run_once(server, mode, args.sleep_jobs, job=job)
                report_problems(run)
                if run.steady and not run.problems:
                    values.append(1 / run.steady - SLEEP_SECONDS)
            label = f"{job:<5} {mode.label}"
            if not values:
                say(f"  {label:<34} n/a")
                continue
            ms = median(values) * 1000
            if job == "sleep":
                rates[mode.key] = 1 / (SLEEP_SECONDS + ms / 1000)
            beyond = (
                f" ({ms - overshoot * 1000:.3f} beyond sleep's overshoot)" if job == "sleep" else ""
            )
            say(
                f"  {label:<34} {ms:6.3f} ms per job over 10 ms "
                f"[{min(values) * 1000:.3f}..{max(values) * 1000:.3f}]{beyond} {note(ms)}"
            )
    for key in ("pyresque-fork", "pyresque-warm"):
        if key in rates and "bare" in rates:
            share = rates[key] / rates["bare"]
            verdict = "meets" if share >= 0.9 else "BELOW"
            say(
                f"  10 ms jobs/s, {MODES[key].label} / bare loop: {rates[key]:.1f} / "
                f"{rates['bare']:.1f} = {share:.0%} (warm child's target >= 90%: {verdict})"
            )
    say()


if __name__ == "__main__":
    sys.exit(main())
