"""What bench/memory.py measures, and how: a pool's process tree read from /proc, one system run.

Memory is read from ``/proc/<pid>/smaps_rollup`` for the master and all its descendants (PSS,
USS, Private_Dirty, RSS); :func:`run_system` starts one system's pool in its own session, waits
until it is ready and its memory steady, gives it a batch of jobs, samples the peak, and reads it
again once it is idle.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
import redis
from common import BENCH_DIR, Proc, median
from memory_systems import DONE_KEY, Context, System

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
