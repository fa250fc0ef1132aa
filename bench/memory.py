"""Memory of an 8-worker pool running one realistic app: pyresque vs ``rq worker-pool`` vs Celery.

Every system runs the same app (``memapp``: ~400 modules and a 300,000-object catalogue, about
60 MB over a bare interpreter) and the same job (``memapp.touch``: read a fifth of the catalogue, so
reference counting writes to the pages that hold it). For each system the pool is started in its
own session, measured idle, given a batch of jobs, and measured again once every job is done and
every job child has exited. Memory is read from ``/proc/<pid>/smaps_rollup`` for the master and
all its descendants:

- total PSS: shared pages split between the processes that share them, so the pool's sum is what
  it costs the machine (RSS would count the shared app once per process);
- worker USS: ``Private_Clean + Private_Dirty``, what a worker holds that no other process does,
  i.e. what each additional worker costs.

Systems: pyresque's pool as shipped (app preloaded in the master, ``gc.freeze()`` before forking),
the same without ``gc.freeze()``, and without preload; ``rq worker-pool`` with the app imported in
its master through a settings module (``-c memapp_rq``: RQ's pool has no preload option of its own)
and as it runs by default, where nothing imports the app until a work horse (the child RQ forks for
each job) resolves the job's function, so every job imports the whole app in a throw-away process;
Celery's prefork pool (``-A memapp_celery``, which imports the app in the main process before
forking its pool processes).

Run from the repository root with the virtualenv active::

    python bench/memory.py                      # 8 workers, 200 jobs, all six systems
    python bench/memory.py --systems pyresque,rq --jobs 400 --details
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
from common import (
    BENCH_DIR,
    NAMESPACE,
    Proc,
    environment_summary,
    install_sigterm_handler,
    median,
    private_redis,
    worker_env,
)

QUEUE = "mem"
DONE_KEY = "memapp:done"  # memapp.touch INCRs it as its last step
TARGET_LINE = (
    "targets: pyresque total PSS ≤ 60% of RQ's preloading pool's, ≤ 50% of RQ's default pool's"
    " and of Celery's"
)


# --- reading memory ----------------------------------------------------------------------------


def read_rollup(pid: int) -> dict[str, float] | None:
    """The smaps_rollup fields of a process, in MB; None if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = {}
    for line in lines[1:]:
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            fields[parts[0].rstrip(":")] = int(parts[1]) / 1024.0
    return fields or None


@dataclass(frozen=True)
class ProcMem:
    pid: int
    role: str  # master, worker (the master's children), child (anything deeper)
    title: str
    rss: float
    pss: float
    uss: float
    private_dirty: float
    anonymous: float


@dataclass
class Snapshot:
    procs: list[ProcMem] = field(default_factory=list)

    def role(self, role: str) -> list[ProcMem]:
        return [p for p in self.procs if p.role == role]

    @property
    def total_pss(self) -> float:
        return sum(p.pss for p in self.procs)

    @property
    def total_rss(self) -> float:
        return sum(p.rss for p in self.procs)

    @property
    def worker_uss(self) -> float:
        return median([p.uss for p in self.role("worker")])


def tree(master_pid: int) -> list[tuple[psutil.Process, str]]:
    """The master and every descendant, each with its role."""
    try:
        master = psutil.Process(master_pid)
        found = [(master, "master")]
        for p in master.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                found.append((p, "worker" if p.ppid() == master_pid else "child"))
        return found
    except psutil.Error:
        return []


def snapshot(master_pid: int) -> Snapshot:
    snap = Snapshot()
    for proc, role in tree(master_pid):
        rollup = read_rollup(proc.pid)
        if rollup is None:
            continue
        try:
            title = " ".join(proc.cmdline()) or proc.name()
        except psutil.Error:
            title = "?"
        snap.procs.append(
            ProcMem(
                pid=proc.pid,
                role=role,
                title=title[:70],
                rss=rollup.get("Rss", 0.0),
                pss=rollup.get("Pss", 0.0),
                uss=rollup.get("Private_Clean", 0.0) + rollup.get("Private_Dirty", 0.0),
                private_dirty=rollup.get("Private_Dirty", 0.0),
                anonymous=rollup.get("Anonymous", 0.0),
            )
        )
    return snap


def app_footprint(env: dict[str, str]) -> dict[str, float]:
    """RSS (and anonymous memory) that importing memapp adds to a bare interpreter, in MB."""
    code = (
        "import gc, json, sys\n"
        "def roll():\n"
        "    out = {}\n"
        "    for line in open('/proc/self/smaps_rollup').read().splitlines()[1:]:\n"
        "        p = line.split()\n"
        "        out[p[0].rstrip(':')] = int(p[1]) / 1024\n"
        "    return out\n"
        "before = roll(); modules = len(sys.modules)\n"
        "import memapp\n"
        "gc.collect(); after = roll()\n"
        "print(json.dumps({'bare': before['Rss'], 'rss': after['Rss'] - before['Rss'],\n"
        "    'anon': after['Anonymous'] - before['Anonymous'],\n"
        "    'modules': len(sys.modules) - modules, 'objects': len(gc.get_objects())}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=str(BENCH_DIR),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {k: float(v) for k, v in json.loads(out.stdout).items()}


# --- the systems -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    url: str
    workers: int
    config_path: str


def pyresque_argv(*flags: str, app: str = "memapp") -> Callable[[Context], list[str]]:
    def argv(ctx: Context) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pyresque",
            "pool",
            "--config",
            ctx.config_path,
            "--app",
            app,
            "--allow-module",
            app,
            "--appname",
            "membench",
            *flags,
        ]

    return argv


def rq_argv(ctx: Context) -> list[str]:
    return [*rq_nopreload_argv(ctx)[:-1], "--config", "memapp_rq", QUEUE]


def rq_nopreload_argv(ctx: Context) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rq.cli",
        "worker-pool",
        "--num-workers",
        str(ctx.workers),
        "--url",
        ctx.url,
        "--path",
        str(BENCH_DIR),
        QUEUE,
    ]


def celery_argv(ctx: Context) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "memapp_celery",
        "-b",
        ctx.url,
        "worker",
        "--pool=prefork",
        f"--concurrency={ctx.workers}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def pyresque_ready(client: redis.Redis, proc: Proc, workers: int) -> bool:
    return int(client.scard(f"{NAMESPACE}:workers")) >= workers


def rq_ready(client: redis.Redis, proc: Proc, workers: int) -> bool:
    return int(client.scard("rq:workers")) >= workers


def celery_ready(client: redis.Redis, proc: Proc, workers: int) -> bool:
    try:
        return " ready." in Path(proc.log_path).read_text(errors="replace")
    except OSError:
        return False


def pyresque_enqueue(url: str, jobs: int) -> None:
    from pyresque.jobs.client import Client

    client = Client(url=url, namespace=NAMESPACE)
    for i in range(jobs):
        client.enqueue_to(QUEUE, "memapp.touch", i)


def rq_enqueue(url: str, jobs: int) -> None:
    from rq import Queue

    queue = Queue(QUEUE, connection=redis.Redis.from_url(url))
    for i in range(jobs):
        queue.enqueue("memapp.touch", i)


def celery_enqueue(url: str, jobs: int) -> None:
    from celery import Celery

    app = Celery("membench-client", broker=url)
    app.conf.broker_connection_retry_on_startup = True
    try:
        for i in range(jobs):
            app.send_task("memapp.touch", args=[i], ignore_result=True)
    finally:
        app.close()


@dataclass(frozen=True)
class System:
    key: str
    label: str
    argv: Callable[[Context], list[str]]
    ready: Callable[[redis.Redis, Proc, int], bool]
    enqueue: Callable[[str, int], None]
    stop_signal: int


SYSTEMS = {
    s.key: s
    for s in (
        System(
            "pyresque",
            "pyresque pool (preload + gc.freeze)",
            pyresque_argv(),
            pyresque_ready,
            pyresque_enqueue,
            signal.SIGQUIT,
        ),
        System(
            "pyresque-nofreeze",
            "pyresque pool --no-gc-freeze",
            pyresque_argv("--no-gc-freeze"),
            pyresque_ready,
            pyresque_enqueue,
            signal.SIGQUIT,
        ),
        System(
            "pyresque-nopreload",
            "pyresque pool --no-preload",
            pyresque_argv("--no-preload"),
            pyresque_ready,
            pyresque_enqueue,
            signal.SIGQUIT,
        ),
        System(
            "rq",
            "rq worker-pool (-c memapp_rq)",
            rq_argv,
            rq_ready,
            rq_enqueue,
            signal.SIGTERM,
        ),
        System(
            "rq-nopreload",
            "rq worker-pool (no preload)",
            rq_nopreload_argv,
            rq_ready,
            rq_enqueue,
            signal.SIGTERM,
        ),
        System(
            "celery",
            "celery prefork (-A memapp_celery)",
            celery_argv,
            celery_ready,
            celery_enqueue,
            signal.SIGTERM,
        ),
    )
}


# --- running one system ------------------------------------------------------------------------


class BenchError(RuntimeError):
    pass


@dataclass
class Result:
    system: System
    idle: Snapshot
    after: Snapshot
    peak: Snapshot
    startup: float
    batch: float


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, proc: Proc) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.popen.poll() is not None:
            raise BenchError(
                f"{proc.label} exited ({proc.popen.returncode}) while waiting for {what}"
            )
        if time.monotonic() > deadline:
            raise BenchError(f"{proc.label}: no {what} within {timeout:.0f} s")
        time.sleep(0.1)


def wait_steady(proc: Proc, timeout: float, tolerance_mb: float = 1.0) -> Snapshot:
    """Snapshots 0.5 s apart until the process set is unchanged and total RSS moves < tolerance."""
    deadline = time.monotonic() + timeout
    previous = snapshot(proc.pid)
    while True:
        time.sleep(0.5)
        current = snapshot(proc.pid)
        same_procs = {p.pid for p in current.procs} == {p.pid for p in previous.procs}
        if same_procs and abs(current.total_rss - previous.total_rss) < tolerance_mb:
            return current
        if time.monotonic() > deadline:
            raise BenchError(f"{proc.label}: memory did not settle within {timeout:.0f} s")
        previous = current


def kill_session(sid: int) -> None:
    """SIGKILL every process still in the session we started (workers may have left the pgid)."""
    for p in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getsid(p.pid) == sid:
                p.kill()


def run_system(system: System, ctx: Context, jobs: int, env: dict[str, str]) -> Result:
    client = redis.Redis.from_url(ctx.url)
    client.flushall()
    started = time.monotonic()
    proc = Proc(system.argv(ctx), env, f"mem-{system.key}")
    try:
        wait_until(
            lambda: (
                system.ready(client, proc, ctx.workers)
                and len(snapshot(proc.pid).role("worker")) >= ctx.workers
            ),
            120,
            f"{ctx.workers} ready workers",
            proc,
        )
        idle = wait_steady(proc, 60)
        startup = time.monotonic() - started
        idle_count = len(idle.procs)

        batch_start = time.monotonic()
        system.enqueue(ctx.url, jobs)
        peak = idle
        deadline = time.monotonic() + max(120.0, jobs * 1.0)
        while int(client.get(DONE_KEY) or 0) < jobs:
            if proc.popen.poll() is not None:
                raise BenchError(f"{proc.label} exited ({proc.popen.returncode}) during the batch")
            if time.monotonic() > deadline:
                done = int(client.get(DONE_KEY) or 0)
                raise BenchError(f"{proc.label}: only {done}/{jobs} jobs done in time")
            sample = snapshot(proc.pid)
            if sample.total_pss > peak.total_pss:
                peak = sample
            time.sleep(0.2)
        batch = time.monotonic() - batch_start

        wait_until(
            lambda: len(snapshot(proc.pid).procs) <= idle_count,
            60,
            "return to idle (job children gone)",
            proc,
        )
        after = wait_steady(proc, 60)
        return Result(system, idle, after, peak, startup, batch)
    except BaseException:
        print(f"--- {proc.label} log ({proc.log_path}) ---\n{proc.log_tail(30)}", file=sys.stderr)
        raise
    finally:
        proc.signal(system.stop_signal)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(10)
        kill_session(proc.pid)
        proc.stop()
        kill_session(proc.pid)
        proc.discard_log()


# --- report ------------------------------------------------------------------------------------


def print_table(results: list[Result], phase: str) -> None:
    base = next((r for r in results if r.system.key == "pyresque"), None)
    print(
        f"{'system':38} | {'total PSS (MB)':>14} | {'median worker USS (MB)':>22} | "
        f"{'ratio vs pyresque default':>25}"
    )
    print(f"{'-' * 38}-+-{'-' * 14}-+-{'-' * 22}-+-{'-' * 25}")
    for r in results:
        snap: Snapshot = getattr(r, phase)
        ratio = (
            f"{snap.total_pss / getattr(base, phase).total_pss:.2f}x" if base is not None else "n/a"
        )
        print(
            f"{r.system.label:38} | {snap.total_pss:14.1f} | {snap.worker_uss:22.1f} | {ratio:>25}"
        )


def print_details(results: list[Result], per_process: bool) -> None:
    print(
        f"{'system / phase':44} | {'procs':>5} | {'RSS sum':>7} | {'master PSS/USS':>14} | "
        f"{'workers PSS':>11} | {'worker USS min/med/max':>22} | {'worker dirty':>12} | "
        f"{'children PSS':>12}"
    )
    for r in results:
        for phase in ("idle", "peak", "after"):
            snap: Snapshot = getattr(r, phase)
            master = snap.role("master")
            workers = snap.role("worker")
            children = snap.role("child")
            uss = sorted(p.uss for p in workers)
            m = f"{master[0].pss:.1f}/{master[0].uss:.1f}" if master else "-"
            spread = f"{uss[0]:.1f}/{median(uss):.1f}/{uss[-1]:.1f}" if uss else "-"
            dirty = median([p.private_dirty for p in workers])
            kids = f"{len(children)}: {sum(p.pss for p in children):.1f}"
            print(
                f"{r.system.key + ' / ' + phase:44} | {len(snap.procs):5} | {snap.total_rss:7.1f} | "
                f"{m:>14} | {sum(p.pss for p in workers):11.1f} | {spread:>22} | {dirty:12.1f} | "
                f"{kids:>12}"
            )
            if per_process:
                for p in snap.procs:
                    print(
                        f"    {p.role:6} {p.pid:>7} pss {p.pss:6.1f} uss {p.uss:6.1f} "
                        f"dirty {p.private_dirty:6.1f} anon {p.anonymous:6.1f} rss {p.rss:6.1f}  "
                        f"{p.title}"
                    )


# (system, name, the most pyresque's total PSS may be as a share of that system's)
COMPARED = (
    ("rq", "RQ (preloaded)", 0.6),
    ("rq-nopreload", "RQ (no preload)", 0.5),
    ("celery", "Celery", 0.5),
)


def verdict(results: list[Result], phase: str) -> tuple[str, bool | None]:
    """pyresque's total PSS as a share of each RQ and Celery pool measured; None if either is
    missing (the target needs at least one RQ pool and the Celery pool)."""
    by_key = {r.system.key: r for r in results}
    base = by_key.get("pyresque")
    if base is None:
        return "pyresque not measured", None
    parts = []
    ok = True
    for key, name, target in COMPARED:
        other = by_key.get(key)
        if other is None:
            continue
        ratio = getattr(base, phase).total_pss / getattr(other, phase).total_pss
        passed = ratio <= target
        parts.append(f"{ratio:.0%} of {name} {'PASS' if passed else 'FAIL'}")
        ok = ok and passed
    have_rq = "rq" in by_key or "rq-nopreload" in by_key
    if not have_rq or "celery" not in by_key:
        return ", ".join(parts) + " (RQ or Celery not measured)", None
    return ", ".join(parts), ok


# --- --idle: the trivial app's idle pool, per process and per mapping --------------------------


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


def idle_main(args: argparse.Namespace) -> int:
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
    return 0


def main() -> int:
    if "--idle" in sys.argv[1:]:
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
        install_sigterm_handler()
        return idle_main(idle.parse_args())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--records", type=int, default=100_000, help="catalogue size in memapp")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated, from {', '.join(SYSTEMS)}",
    )
    parser.add_argument("--details", action="store_true", help="print every process")
    args = parser.parse_args()
    keys = [k.strip() for k in args.systems.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    install_sigterm_handler()

    command = shlex.join(["python", "bench/memory.py", *sys.argv[1:]])
    print(f"reproduce (repository root): . .venv/bin/activate && {command}")
    print(environment_summary())
    print(f"{args.workers} workers per pool, {args.jobs} jobs of memapp.touch per system")

    with private_redis("tcp") as server, tempfile.TemporaryDirectory(prefix="membench-") as tmp:
        config_path = os.path.join(tmp, "resque-pool.yml")
        Path(config_path).write_text(f"{QUEUE}: {args.workers}\n")
        env = worker_env(server.url, MEMAPP_REDIS_URL=server.url, MEMAPP_RECORDS=str(args.records))
        env.pop("PYRESQUE_APP", None)
        print(f"redis: {server.describe()}")
        app = app_footprint(env)
        print(
            f"app footprint (memapp): {app['rss']:.1f} MB RSS ({app['anon']:.1f} MB anonymous) over "
            f"a bare interpreter of {app['bare']:.1f} MB; {app['modules']:.0f} modules imported, "
            f"{app['objects']:.0f} objects tracked by the collector"
        )
        print()
        ctx = Context(server.url, args.workers, config_path)
        results = []
        for key in keys:
            system = SYSTEMS[key]
            result = run_system(system, ctx, args.jobs, env)
            results.append(result)
            print(
                f"{system.label}: ready and steady in {result.startup:.1f} s, {args.jobs} jobs in "
                f"{result.batch:.1f} s; total PSS idle {result.idle.total_pss:.1f} MB, "
                f"peak while busy {result.peak.total_pss:.1f} MB, "
                f"after {result.after.total_pss:.1f} MB",
                flush=True,
            )

    print()
    print(f"== idle ({args.workers} workers started and settled, no job run yet) ==")
    print_table(results, "idle")
    print()
    print(f"== after {args.jobs} jobs, idle again (steady state) ==")
    print_table(results, "after")
    print()
    print("== where it goes (MB; peak = largest total PSS sampled while the batch ran) ==")
    print_details(results, args.details)
    print()
    overall: bool | None = True
    for phase, name in (("idle", "idle"), ("after", "after jobs")):
        text, ok = verdict(results, phase)
        print(f"{TARGET_LINE} — {name}: {text}")
        overall = None if ok is None or overall is None else overall and ok
    text, _ = verdict(results, "peak")
    print(f"(for information, peak while busy: {text})")
    print(f"{TARGET_LINE}: {'n/a' if overall is None else 'PASS' if overall else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
