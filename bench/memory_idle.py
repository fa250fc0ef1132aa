"""``bench/memory.py --idle``: the trivial app's idle pool, per process and per kind of mapping.

Each source tree's pool (``PATH`` or ``PATH::--opt,--opt``) runs on ``memapp_trivial`` in
interleaved rounds; each process's PSS, USS and Private_Dirty are split by what holds the pages
(the interpreter, extension modules, the heap, anonymous arenas).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from common import (
    BENCH_DIR,
    Proc,
    environment_summary,
    install_sigterm_handler,
    median,
    private_redis,
    worker_env,
)
from memory_measure import Snapshot, kill_session, snapshot, wait_steady, wait_until
from memory_systems import QUEUE, Context, pyresque_argv, pyresque_ready


def mapping_kind(name: str) -> str:
    """A mapping of /proc/<pid>/smaps grouped by what holds it."""
    if not name:
        return "anonymous (arenas, mmap)"
    if name in ("[heap]", "[stack]"):
        return name
    if name.startswith("["):
        return "other [..]"
    base = os.path.basename(name)
    if base.startswith("libpython") or base.startswith("python"):
        return "python binary"
    if ".cpython-" in base or "/lib-dynload/" in name or "site-packages" in name:
        return "extension modules"
    return "other files (libc, ...)"


def private_dirty_by_kind(pid: int) -> dict[str, float]:
    """Private_Dirty of a process by kind of mapping, in MB (empty if it is gone)."""
    out: dict[str, float] = {}
    name = ""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(None, 1)[0]
                # a mapping's header line: address perms offset dev inode [path]
                if not first.endswith(":"):
                    parts = line.split(None, 5)
                    name = parts[5].strip() if len(parts) > 5 else ""
                elif first == "Private_Dirty:":
                    kind = mapping_kind(name)
                    out[kind] = out.get(kind, 0.0) + int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    return out


def threads_of(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


IDLE_APP = "memapp_trivial"


@dataclass
class IdleRun:
    tree: str
    in_process: bool
    snap: Snapshot
    by_kind: dict[int, dict[str, float]]
    threads: dict[int, int]


def idle_run(tree: str, in_process: bool, ctx: Context, env: dict[str, str]) -> IdleRun:
    """Start the pool of one source tree on the trivial app, wait until it is steady, read it.

    ``tree`` is a checkout's path, optionally followed by ``::`` and pool options separated by
    commas (``.::--no-gc-freeze``), to compare options of one tree in the same interleaved rounds."""
    path, _, flags = tree.partition("::")
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join((str(Path(path).resolve() / "src"), env["PYTHONPATH"]))
    if in_process:
        env["FORK_PER_JOB"] = "false"
    argv = pyresque_argv(*[f for f in flags.split(",") if f], app=IDLE_APP)(ctx)
    proc = Proc(argv, env, "mem-idle")
    client = redis.Redis.from_url(ctx.url)
    client.flushall()
    try:
        wait_until(
            lambda: (
                pyresque_ready(client, proc, ctx.workers)
                and len(snapshot(proc.pid).role("worker")) >= ctx.workers
            ),
            60,
            f"{ctx.workers} ready workers",
            proc,
        )
        time.sleep(1.0)  # every worker past its start-up and into its idle wait
        snap = wait_steady(proc, 60, tolerance_mb=0.2)
        by_kind = {p.pid: private_dirty_by_kind(p.pid) for p in snap.procs}
        threads = {p.pid: threads_of(p.pid) for p in snap.procs}
        return IdleRun(tree, in_process, snap, by_kind, threads)
    except BaseException:
        print(f"--- {proc.label} log ({proc.log_path}) ---\n{proc.log_tail(30)}", file=sys.stderr)
        raise
    finally:
        proc.signal(signal.SIGQUIT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(10)
        kill_session(proc.pid)
        proc.stop()
        proc.discard_log()


def print_idle(runs: list[IdleRun]) -> None:
    """One block per run: each process's PSS/USS/Private_Dirty and where its dirty pages are."""
    kinds = sorted({k for r in runs for d in r.by_kind.values() for k in d})
    for r in runs:
        mode = "in-process" if r.in_process else "fork per job"
        print(f"-- {r.tree} ({mode}): total PSS {r.snap.total_pss:.1f} MB --")
        print(
            f"  {'process':8} {'pid':>7} {'thr':>3} {'PSS':>6} {'USS':>6} {'dirty':>6}  "
            + " ".join(f"{k[:12]:>12}" for k in kinds)
        )
        for p in r.snap.procs:
            cells = " ".join(f"{r.by_kind[p.pid].get(k, 0.0):12.2f}" for k in kinds)
            print(
                f"  {p.role:8} {p.pid:>7} {r.threads[p.pid]:>3} {p.pss:6.1f} {p.uss:6.1f} "
                f"{p.private_dirty:6.1f}  {cells}"
            )
    print("  (MB; dirty = Private_Dirty, split by mapping kind in the columns after it)")


def parse_idle_args(argv: list[str]) -> argparse.Namespace:
    idle = argparse.ArgumentParser(description="the trivial app's idle pool, per process")
    idle.add_argument("--idle", action="store_true")
    idle.add_argument("--workers", type=int, default=4)
    idle.add_argument("--rounds", type=int, default=3)
    idle.add_argument("--in-process", choices=("no", "yes", "both"), default="no")
    idle.add_argument(
        "trees",
        nargs="*",
        help="checkouts of pyresque (default: this one), each optionally with pool options: "
        "PATH::--opt,--opt",
    )
    return idle.parse_args(argv)


def idle_main(argv: list[str]) -> int:
    """``--idle``: run the trees' idle pools in interleaved rounds, print each and the medians."""
    args = parse_idle_args(argv)
    install_sigterm_handler()
    trees = args.trees or [str(BENCH_DIR.parent)]
    command = shlex.join(["python", "bench/memory.py", *sys.argv[1:]])
    print(f"reproduce (repository root): . .venv/bin/activate && {command}")
    print(environment_summary())
    print(
        f"idle pool of {args.workers} workers on the trivial app ({IDLE_APP}), {args.rounds} rounds"
    )
    modes = [False, True] if args.in_process == "both" else [args.in_process == "yes"]
    runs: list[IdleRun] = []
    with private_redis("tcp") as server, tempfile.TemporaryDirectory(prefix="memidle-") as tmp:
        config_path = os.path.join(tmp, "resque-pool.yml")
        Path(config_path).write_text(f"{QUEUE}: {args.workers}\n")
        env = worker_env(server.url)
        env.pop("PYRESQUE_APP", None)
        ctx = Context(server.url, args.workers, config_path)
        for _ in range(args.rounds):  # interleaved: round 1 of every tree and mode, then round 2
            for in_process in modes:
                for tree in trees:
                    runs.append(idle_run(tree, in_process, ctx, env))
    print()
    last = runs[-len(trees) * len(modes) :]
    print_idle(last)
    print()
    print_idle_medians(runs, trees, modes)
    return 0


def print_idle_medians(runs: list[IdleRun], trees: list[str], modes: list[bool]) -> None:
    """Per tree and mode: the median total PSS over the rounds, and the master's and workers'."""
    print(f"{'tree':40} | {'mode':12} | {'total PSS median (MB)':>21} | {'per round':30}")
    for in_process in modes:
        for tree in trees:
            mine = [r for r in runs if r.tree == tree and r.in_process == in_process]
            totals = [r.snap.total_pss for r in mine]
            workers = [p for r in mine for p in r.snap.role("worker")]
            print(
                f"{tree:40} | {'in-process' if in_process else 'fork':12} | "
                f"{median(totals):21.1f} | {', '.join(f'{t:.1f}' for t in totals)}"
            )
            masters = [p for r in mine for p in r.snap.role("master")]
            print(
                f"{'':40} | {'':12} | master PSS {median([p.pss for p in masters]):.1f} "
                f"USS {median([p.uss for p in masters]):.1f}; worker PSS "
                f"{median([p.pss for p in workers]):.1f} USS {median([p.uss for p in workers]):.1f} "
                f"dirty {median([p.private_dirty for p in workers]):.1f}"
            )
