"""The pool bench/chaos.py attacks: its masters, the feeder of numbered jobs, what is watched.

Every master is started in a session of its own (``start_new_session=True``); its workers and
job children stay in that session, so the process table (harness/proctable.py) finds all of them
again, to pick victims, to sample for zombies and orphans, and to kill at the end.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from common import BENCH_DIR, worker_env

from harness import proctable

QUEUE = "chaos"
JOB_CLASS = "Chaos::Work"
DONE_KEY = "chaos:done"
NAMESPACE = "resque"
ZOMBIE_GRACE = 1.0
ORPHAN_GRACE = 3.0


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
