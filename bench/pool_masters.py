"""The pool masters bench/pool.py measures, of either system: started, watched, stopped.

A master (``pyresque pool`` or ``rq worker-pool``) runs in a session of its own, which the
process table (harness/proctable.py) searches for its workers and kills whole at the end; Redis
tells when its workers are registered and when a job started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from common import BENCH_DIR, worker_env

from harness import proctable

QUEUE = "poolbench"
STARTED_KEY = "poolbench:started"


class BenchError(RuntimeError):
    pass


def wait_for(predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.001):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


# --- a pool master of either system ------------------------------------------------------------


@dataclass
class Pool:
    system: str
    popen: subprocess.Popen[bytes]
    log_path: str
    started: float  # monotonic, just before the master was started

    @property
    def pid(self) -> int:
        return self.popen.pid

    def workers(self) -> list[int]:
        """The master's live worker processes (pyresque: not orphaned job children it adopted)."""
        table = proctable.snapshot()
        kids = proctable.children(self.pid, table)
        if self.system == "pyresque":
            kids = [p for p in kids if "Processing" not in proctable.title(p)]
        return kids

    def worker_titles(self) -> dict[int, str]:
        return {pid: proctable.title(pid) for pid in self.workers()}

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        return ""

    def kill(self) -> None:
        """Kill the master and everything it started (also job children in their own groups)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)
        proctable.kill_sessions([self.pid])  # the master led its session: workers, job children


@contextlib.contextmanager
def running_pool(
    system: str,
    url: str,
    tmp: Path,
    *,
    workers: int = 0,
    groups: dict[str, int] | None = None,
    extra: tuple[str, ...] = (),
) -> Iterator[Pool]:
    """Start a pool master in its own session; kill all it started on the way out."""
    tag = f"{time.monotonic_ns()}"
    env = worker_env(url)
    if system == "pyresque":
        config = tmp / f"pool-{tag}.yml"
        config.write_text("".join(f"{g}: {n}\n" for g, n in (groups or {QUEUE: workers}).items()))
        argv = [
            sys.executable,
            "-m",
            "pyresque",
            "pool",
            "--config",
            str(config),
            "--app",
            "pooljobs",
            "--appname",
            "poolbench",
            *extra,
        ]
    else:
        queues = list(groups) if groups else [QUEUE]
        n = sum(groups.values()) if groups else workers
        argv = [sys.executable, "-m", "rq.cli", "worker-pool", "-n", str(n), "--url", url]
        argv += ["-P", str(BENCH_DIR), *queues]
    log_path = str(tmp / f"{system}-{tag}.log")
    with open(log_path, "wb") as log:
        started = time.monotonic()
        popen = subprocess.Popen(
            argv,
            env=env,
            cwd=str(BENCH_DIR),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pool = Pool(system, popen, log_path, started)
    try:
        yield pool
    finally:
        pool.kill()


def registered(r: redis.Redis, system: str) -> set[str]:
    key = "resque:workers" if system == "pyresque" else "rq:workers"
    return {m.decode() for m in r.smembers(key)}


def wait_ready(r: redis.Redis, pool: Pool, n: int, timeout: float = 120.0) -> float:
    """Seconds from the master's start until n workers are registered."""

    def ready() -> bool:
        if pool.exited():
            raise BenchError(f"{pool.system} master exited:\n{pool.log_tail()}")
        return len(registered(r, pool.system)) >= n

    wait_for(ready, timeout, f"{n} {pool.system} workers")
    return time.monotonic() - pool.started


def enqueue(r: redis.Redis, system: str, queue: str, job: str, *args: object) -> None:
    if system == "pyresque":
        import pyresque

        name = {"stamp": "PoolBench::Stamp", "sleep": "PoolBench::Sleep"}[job]
        pyresque.Client(r, namespace="resque").enqueue_to(queue, name, *args)
    else:
        from rq import Queue

        Queue(queue, connection=r).enqueue(f"pooljobs.{job}", *args, job_timeout=600)


def started_at(r: redis.Redis, sample: str) -> float | None:
    for raw in r.lrange(STARTED_KEY, 0, -1):
        name, when, _pid = raw.decode().split()
        if name == sample:
            return float(when)
    return None


def term_and_wait(pool: Pool, cap: float) -> float | None:
    """Seconds from TERM to the master's exit; None if it was still running after ``cap``."""
    t0 = time.monotonic()
    os.kill(pool.pid, signal.SIGTERM)
    try:
        pool.popen.wait(cap)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - t0


def gone(pid: int) -> bool:
    """Whether a process has died (a zombie or no longer in the table)."""
    st = proctable.stat(pid)
    return st is None or st.state in ("Z", "X")
