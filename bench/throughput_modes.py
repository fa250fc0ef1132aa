"""The modes of bench/throughput.py and one run of a mode: prefill, the worker, its figures.

A mode is one worker program (a bare redis-py loop, pyresque in-process, fork per job or with a
warm child, RQ's two workers); :func:`run_once` fills the queue, runs the worker as a burst
process, checks that every job was done, and reads the timing marks, Redis's CPU and the commands
it ran (INFO commandstats, and MONITOR for the split between what the worker sent and what ran in
Lua scripts).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import redis
from common import (
    NAMESPACE,
    PYRESQUE_QUEUE_KEY,
    QUEUE,
    PrivateRedis,
    Proc,
    RedisCpuSampler,
    pyresque_argv,
    read_marks,
    rq_argv,
    worker_env,
)

from pyresque.wire import protocol

JOB_NAMES = {"noop": "Bench::Noop", "sleep": "Bench::Sleep", "spin": "Bench::Spin"}
SLEEP_SECONDS = 0.010


@dataclass(frozen=True)
class Mode:
    key: str
    label: str
    system: str  # "bare", "pyresque" or "rq"
    forks: bool
    options: tuple[str, ...] = ()  # more options for the worker

    def argv(self, server: PrivateRedis, rq_quiet: bool) -> list[str]:
        if self.system == "pyresque":
            return [*pyresque_argv(in_process=not self.forks, burst=True), *self.options]
        if self.system == "rq":
            return rq_argv(server.url, simple=not self.forks, burst=True, quiet=rq_quiet)
        return [sys.executable, "bareloop.py", PYRESQUE_QUEUE_KEY]


MODES = {
    m.key: m
    for m in (
        Mode("bare", "bare redis-py LPOP loop", "bare", False),
        Mode("pyresque-inproc", "pyresque --in-process", "pyresque", False),
        Mode("rq-simple", "RQ SimpleWorker", "rq", False),
        Mode("pyresque-fork", "pyresque fork per job", "pyresque", True),
        Mode("pyresque-warm", "pyresque fork, warm child", "pyresque", True, ("--warm-child",)),
        Mode("rq-fork", "RQ Worker (fork per job)", "rq", True),
    )
}


@dataclass
class Run:
    mode: Mode
    jobs: int
    wall: float = float("nan")  # seconds, process start to exit
    steady: float | None = None  # jobs/s between the first and the last job's end
    window: tuple[float, float] | None = None  # wall-clock ends of the first and last job
    commands: collections.Counter[str] = field(default_factory=collections.Counter)
    redis_us: float | None = None  # redis-server's own CPU per job over the same window
    problems: list[str] = field(default_factory=list)


# --- one run -------------------------------------------------------------------------------------


def prefill(client: redis.Redis, mode: Mode, n: int, job: str) -> None:
    if mode.system == "rq":
        from rq import Queue

        queue = Queue(QUEUE, connection=client)
        for start in range(0, n, 500):
            queue.enqueue_many(
                [
                    Queue.prepare_data(f"benchjobs.{job}", args=(i, n))
                    for i in range(start, min(n, start + 500))
                ]
            )
        return
    name = JOB_NAMES[job]
    for start in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        pipe.sadd(f"{NAMESPACE}:queues", QUEUE)
        pipe.rpush(
            PYRESQUE_QUEUE_KEY,
            *[protocol.encode_payload(name, [i, n]) for i in range(start, min(n, start + 1000))],
        )
        pipe.execute()


def verify(client: redis.Redis, mode: Mode, n: int, proc: Proc) -> list[str]:
    """What looks wrong after the worker exited: jobs left, lost, failed or unacknowledged."""
    problems = []
    if mode.system == "rq":
        from rq import Queue

        queue = Queue(QUEUE, connection=client)
        left = queue.count
        finished = queue.finished_job_registry.count
        failed = queue.failed_job_registry.count
        started = queue.started_job_registry.count
        if left or finished != n or failed or started:
            problems.append(
                f"rq: {left} left in queue, {finished}/{n} finished, {failed} failed, "
                f"{started} still started"
            )
        return problems
    left = client.llen(PYRESQUE_QUEUE_KEY)
    if left:
        problems.append(f"{left} jobs left in the queue")
    if mode.system == "bare":
        tail = proc.log_tail(1).strip()
        if tail != str(n):
            problems.append(f"bare loop ran {tail!r} jobs, expected {n}")
        return problems
    processed = int(client.get(f"{NAMESPACE}:stat:processed") or 0)
    failed = int(client.get(f"{NAMESPACE}:stat:failed") or 0)
    records = client.llen(f"{NAMESPACE}:failed")
    inflight = [
        key for key in client.scan_iter(f"{NAMESPACE}:inflight:*", count=1000) if client.hlen(key)
    ]
    workers = client.scard(f"{NAMESPACE}:workers")
    if processed != n or failed or records or inflight or workers:
        problems.append(
            f"pyresque: processed {processed}/{n}, failed {failed}, {records} failure records, "
            f"{len(inflight)} non-empty in-flight hashes, {workers} workers still registered"
        )
    return problems


def run_once(
    server: PrivateRedis,
    mode: Mode,
    n: int,
    *,
    job: str = "noop",
    rq_quiet: bool = False,
    monitor: Monitor | None = None,
) -> Run:
    client = server.client()
    client.flushall()
    run = Run(mode, n)
    marks_fd, marks_path = tempfile.mkstemp(prefix="bench-marks-")
    os.close(marks_fd)
    proc: Proc | None = None
    try:
        prefill(client, mode, n, job)
        env = worker_env(server.url, BENCH_MARKS=marks_path)
        before = command_calls(client)
        ctx = monitor if monitor is not None else contextlib.nullcontext()
        with ctx, RedisCpuSampler(server.url) as cpu:
            proc = Proc(mode.argv(server, rq_quiet), env, mode.key, server.worker_cpus)
            timeout = 60 + n * (0.15 if mode.forks else 0.03)
            code = proc.wait(timeout)
            run.wall = (proc.ended or time.monotonic()) - proc.started
            if code is None:
                run.problems.append(
                    f"worker still running after {timeout:.0f} s (hang?); killed; "
                    f"{client.llen(PYRESQUE_QUEUE_KEY)} left in the pyresque queue"
                )
            elif code != 0:
                run.problems.append(f"worker exited with status {code}")
        after = command_calls(client)
        run.commands = command_delta(before, after)
        if monitor is not None:
            run.commands["echo"] -= 1  # the monitor's stop word
            run.commands["monitor"] -= 1
        if code is not None:
            run.problems += verify(client, mode, n, proc)
        marks = read_marks(marks_path)
        if n >= 2 and 0 in marks and n - 1 in marks:
            (m0, w0), (m1, w1) = marks[0], marks[n - 1]
            if m1 > m0:
                run.steady = (n - 1) / (m1 - m0)
                run.window = (w0, w1)
                run.redis_us = (cpu.at(m1) - cpu.at(m0)) / (n - 1) * 1e6
        elif n >= 2:
            run.problems.append(f"timing marks missing: {sorted(marks)}")
        if run.problems:
            run.problems.append(f"log {proc.log_path}:\n{proc.log_tail()}")
        return run
    finally:
        if proc is not None:
            proc.stop()
            if not run.problems:
                proc.discard_log()
        with contextlib.suppress(OSError):
            os.unlink(marks_path)


# --- Redis commands ------------------------------------------------------------------------------


def command_calls(client: redis.Redis) -> collections.Counter[str]:
    """Calls per command so far (INFO commandstats; commands run by Lua scripts included)."""
    stats = client.info("commandstats")
    return collections.Counter(
        {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    )


def command_delta(
    before: collections.Counter[str], after: collections.Counter[str]
) -> collections.Counter[str]:
    """What ran between two snapshots, minus the first snapshot's own INFO call."""
    delta = collections.Counter(after)
    delta.subtract(before)
    delta["info"] -= 1
    return collections.Counter({k: v for k, v in delta.items() if v > 0})


_MONITOR_LINE = re.compile(
    r'^(?P<time>[0-9.]+) \[(?P<db>\d+) (?P<client>[^\]]*)\] "(?P<cmd>[^"]*)"'
)
MONITOR_STOP = "bench-monitor-stop"


@dataclass
class MonitorLog:
    """Commands seen by MONITOR: (server time, 'lua' or 'client', command name)."""

    entries: list[tuple[float, str, str]] = field(default_factory=list)
    error: str = ""


class Monitor:
    """MONITOR on its own connection, read by a thread until the harness echoes the stop word."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.log = MonitorLog()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("MONITOR did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        redis.Redis.from_url(self.url).echo(MONITOR_STOP)
        self._thread.join(30)

    def _run(self) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            with client.monitor() as mon:
                self._ready.set()
                while True:
                    raw = mon.connection.read_response()
                    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
                    match = _MONITOR_LINE.match(text)
                    if match is None:
                        continue
                    cmd = match["cmd"].lower()
                    if cmd == "echo" and MONITOR_STOP in text:
                        return
                    who = "lua" if match["client"] == "lua" else "client"
                    self.log.entries.append((float(match["time"]), who, cmd))
        except Exception as exc:
            self.log.error = f"{type(exc).__name__}: {exc}"
            self._ready.set()
