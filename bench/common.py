"""The benchmarks' shared parts: sys.path, the private Redis, worker processes, figures.

A script is run as ``python bench/x.py`` from the repository root with pyresque installed (``pip
install -e``): Python puts bench/ on ``sys.path``, and this module, which every script imports
first, adds the root for ``harness`` (the processes the tests use too), once. Every server starts
here (harness/redis_server.py) on a unix socket in a temporary directory and, for TCP runs, on a
free port of 127.0.0.1, never 6379. Every worker runs in its own session and its whole process
group is killed when it is done, also when the benchmark fails or is interrupted.
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SRC = ROOT / "src"
NAMESPACE = "resque"
QUEUE = "bench"
PYRESQUE_QUEUE_KEY = f"{NAMESPACE}:queue:{QUEUE}"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for harness
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # for the job apps, when imported from elsewhere (a test)

from harness.redis_server import RedisServer, free_port, start_redis_server  # noqa: E402

# --- the private Redis ---------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """A redis-server of our own; ``url`` is what workers and clients use (TCP or unix socket)."""

    server: RedisServer
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


# --- CPU placement -------------------------------------------------------------------------------

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


def add_cpus_argument(parser: argparse.ArgumentParser) -> None:
    """``--cpus split|same|any``: where redis-server and the worker run (:func:`placement`)."""
    parser.add_argument("--cpus", choices=PLACEMENTS, default="split", help=PLACEMENT_HELP)


def add_transport_argument(parser: argparse.ArgumentParser, default: str = "tcp") -> None:
    """``--transport tcp|unix``: how workers and clients reach the private redis-server."""
    choices = ("tcp", "unix") if default == "tcp" else ("unix", "tcp")
    parser.add_argument("--transport", choices=choices, default=default)


def pin(pid: int, cpus: frozenset[int] | None) -> None:
    if cpus is not None:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(pid, cpus)


@contextlib.contextmanager
def private_redis(transport: str, where: Placement | None = None) -> Iterator[PrivateRedis]:
    """A redis-server of our own for the block's duration, stopped after (also at exit)."""
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


# --- worker processes ----------------------------------------------------------------------------

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


# --- Redis statistics ----------------------------------------------------------------------------


class RedisCpuSampler:
    """redis-server's CPU seconds (INFO cpu), sampled by a thread, read back at any instant."""

    def __init__(self, url: str, every: float = 0.02) -> None:
        self._client = redis.Redis.from_url(url)
        self._every = every
        self._times: list[float] = []
        self._cpu: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-cpu", daemon=True)

    def _sample(self) -> None:
        info = self._client.info("cpu")
        self._cpu.append(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))
        self._times.append(time.monotonic())

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._sample()

    def __enter__(self) -> RedisCpuSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()

    def at(self, when: float) -> float:
        """CPU seconds at ``when`` (monotonic), interpolated between the nearest samples."""
        i = bisect.bisect_left(self._times, when)
        if i <= 0:
            return self._cpu[0]
        if i >= len(self._times):
            return self._cpu[-1]
        t0, t1 = self._times[i - 1], self._times[i]
        c0, c1 = self._cpu[i - 1], self._cpu[i]
        return c0 + (c1 - c0) * (when - t0) / (t1 - t0) if t1 > t0 else c1


# --- numbers and output --------------------------------------------------------------------------


def say(text: str = "") -> None:
    """A line of the report, flushed at once (a long run shows its progress)."""
    print(text, flush=True)


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


def pid_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, 0 once it is gone."""
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
        ours += pid_cpu(int(server.server.process.pid))
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
