"""How much memory the pool may use, and how much each of its processes really uses.

The limit comes from the cgroup the pool runs in (v2 ``memory.max``, v1 ``memory.limit_in_bytes``;
the tightest along the path to the root), else physical memory, unless the operator says otherwise.
Usage is read from ``/proc/<pid>/smaps_rollup``: USS (private pages, what a process costs on its
own) and PSS (shared pages split between their sharers, what adds up to the pool's total). RSS is
never used: it counts a preloaded app once per worker.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from pyresque.errors import ConfigError

MB = 1024 * 1024
_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a page-rounded 2**63 - 1
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": MB, "g": 1024 * MB, "t": 1024 * 1024 * MB}


def parse_size(text: str, what: str = "size") -> int:
    """``512M``, ``1.5G``, ``512MiB``, ``1048576`` -> bytes (binary units, as Heroku quotes them)."""
    m = _SIZE.match(text)
    if not m:
        raise ConfigError(f"{what} {text!r}: expected a size such as 512M, 1.5G or 1048576")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_mb(size: float) -> str:
    return f"{size / MB:.1f}MB"


@dataclass(frozen=True)
class MemoryLimit:
    bytes: int
    source: str


# --- the limit -------------------------------------------------------------------------------


def _mounts(mountinfo: str) -> tuple[Path | None, Path | None]:
    """The cgroup v2 mount point and the cgroup v1 memory controller's, from mountinfo."""
    v2 = v1 = None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mount_point, fstype, options = Path(fields[4]), rfields[0], rfields[2].split(",")
        if fstype == "cgroup2" and v2 is None:
            v2 = mount_point
        elif fstype == "cgroup" and "memory" in options and v1 is None:
            v1 = mount_point
    return v2, v1


def _own_cgroups(proc_cgroup: str) -> tuple[str | None, str | None]:
    """This process's cgroup v2 path and its v1 memory cgroup path, from /proc/self/cgroup."""
    v2 = v1 = None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max" or not text.isdigit():
        return None
    value = int(text)
    return value if value < _UNLIMITED else None


def _tightest(root: Path, cgroup: str, filename: str) -> int | None:
    """The smallest limit set on the cgroup or any ancestor (a parent's limit binds its children)."""
    best = None
    path = root / cgroup.lstrip("/")
    while True:
        value = _read_int(path / filename)
        if value is not None and (best is None or value < best):
            best = value
        if path == root or root not in path.parents:
            return best
        path = path.parent


def _where(
    proc_cgroup: str | None, mountinfo: str | None
) -> tuple[Path | None, str | None, Path | None, str | None]:
    """This process's cgroups: the v2 mount and path, the v1 memory mount and path (read from
    /proc/self unless given)."""
    if proc_cgroup is None:
        proc_cgroup = _read_text("/proc/self/cgroup")
    if mountinfo is None:
        mountinfo = _read_text("/proc/self/mountinfo")
    v2_root, v1_root = _mounts(mountinfo)
    v2_path, v1_path = _own_cgroups(proc_cgroup)
    return v2_root, v2_path, v1_root, v1_path


def cgroup_limit(
    proc_cgroup: str | None = None, mountinfo: str | None = None
) -> MemoryLimit | None:
    """The memory limit of this process's cgroup (v2 first, then v1), or None if unlimited."""
    v2_root, v2_path, v1_root, v1_path = _where(proc_cgroup, mountinfo)
    if v2_root is not None and v2_path is not None:
        limit = _tightest(v2_root, v2_path, "memory.max")
        if limit is not None:
            return MemoryLimit(limit, f"cgroup v2 memory.max ({v2_root / v2_path.lstrip('/')})")
    if v1_root is not None and v1_path is not None:
        limit = _tightest(v1_root, v1_path, "memory.limit_in_bytes")
        if limit is not None:
            return MemoryLimit(
                limit, f"cgroup v1 memory.limit_in_bytes ({v1_root / v1_path.lstrip('/')})"
            )
    return None


def oom_kill_count(proc_cgroup: str | None = None, mountinfo: str | None = None) -> int | None:
    """How many processes the kernel's OOM killer has killed in this process's cgroup (v2
    ``memory.events``, v1 ``memory.oom_control``: ``oom_kill N``); None where it cannot tell.

    A worker killed by SIGKILL may have been killed by the OOM killer, by an operator or by a
    platform; only this counter going up says it was memory.
    """
    v2_root, v2_path, v1_root, v1_path = _where(proc_cgroup, mountinfo)
    if v2_root is not None and v2_path is not None:
        path = v2_root / v2_path.lstrip("/") / "memory.events"
    elif v1_root is not None and v1_path is not None:
        path = v1_root / v1_path.lstrip("/") / "memory.oom_control"
    else:
        return None
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


class OomWatch:
    """Tells, one SIGKILLed process at a time, whether the kernel's OOM killer did it: each rise
    of the cgroup's ``oom_kill`` counter since the watch began explains one such death."""

    def __init__(self, counter: Callable[[], int | None] = oom_kill_count) -> None:
        self.counter = counter
        self._seen = counter()
        self._unexplained = 0

    def claim(self) -> bool:
        """Whether an OOM kill not yet attributed explains a SIGKILL just reaped."""
        count = self.counter()
        if count is not None:
            if self._seen is not None and count > self._seen:
                self._unexplained += count - self._seen
            self._seen = count
        if self._unexplained > 0:
            self._unexplained -= 1
            return True
        return False


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def detect_limit(override: str | None = None, env: Mapping[str, str] | None = None) -> MemoryLimit:
    """``--memory-limit`` > ``$RESQUE_POOL_MEMORY_LIMIT`` > cgroup > physical memory."""
    env = os.environ if env is None else env
    if override:
        return MemoryLimit(parse_size(override, "--memory-limit"), "--memory-limit")
    if env.get("RESQUE_POOL_MEMORY_LIMIT"):
        text = env["RESQUE_POOL_MEMORY_LIMIT"]
        return MemoryLimit(parse_size(text, "RESQUE_POOL_MEMORY_LIMIT"), "RESQUE_POOL_MEMORY_LIMIT")
    return cgroup_limit() or MemoryLimit(psutil.virtual_memory().total, "physical memory")


# --- usage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    uss: int = 0
    pss: int = 0
    rss: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.uss + other.uss, self.pss + other.pss, self.rss + other.rss)


def read_usage(pid: int) -> Usage | None:
    """USS, PSS and RSS of one process in one read of smaps_rollup; None if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    fields: dict[bytes, int] = {}
    for line in data.splitlines()[1:]:
        name, _, rest = line.partition(b":")
        value = rest.split()
        if value:
            fields[name] = int(value[0]) * 1024
    uss = fields.get(b"Private_Clean", 0) + fields.get(b"Private_Dirty", 0)
    return Usage(uss=uss, pss=fields.get(b"Pss", 0), rss=fields.get(b"Rss", 0))


_PAGE = os.sysconf("SC_PAGE_SIZE")


def read_rss(pid: int) -> int:
    """RSS from /proc/<pid>/statm: a cheap upper bound of what the process adds to the pool
    (shared pages counted in full), read far faster than smaps_rollup; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def rss_upper_bound(master_pid: int, worker_pids: Iterable[int]) -> int:
    """The pool's RSS sum, job children included: if even this is under a threshold, so is PSS."""
    total = read_rss(master_pid)
    for pid in worker_pids:
        total += read_rss(pid) + sum(read_rss(c) for c in child_pids(pid))
    return total


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (a worker's job child), from /proc's children list."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass(frozen=True)
class WorkerUsage:
    """A worker's own usage and its job children's, summed."""

    worker: Usage
    job: Usage

    @property
    def total(self) -> Usage:
        return self.worker + self.job


def read_worker_usage(pid: int) -> WorkerUsage | None:
    """USS/PSS/RSS of a worker and, separately, of its job children; None if it is gone.

    The one place that knows a worker's cost includes its job child (fork mode): the governor,
    ``--advise``, the INFO report and ``pyresque status`` all read it here.
    """
    own = read_usage(pid)
    if own is None:
        return None
    job = Usage()
    for child in child_pids(pid):
        job = job + (read_usage(child) or Usage())
    return WorkerUsage(own, job)


@dataclass(frozen=True)
class WorkerMemory:
    """A worker and its job child, if one is running."""

    pid: int
    group: str
    worker: Usage
    job: Usage

    @property
    def uss(self) -> int:
        return self.worker.uss + self.job.uss

    @property
    def pss(self) -> int:
        return self.worker.pss + self.job.pss


@dataclass(frozen=True)
class PoolMemory:
    master: Usage
    workers: tuple[WorkerMemory, ...]

    @property
    def total_pss(self) -> int:
        return self.master.pss + sum(w.pss for w in self.workers)

    @property
    def shared(self) -> int:
        """Pages shared among the pool's processes, counted once (PSS minus private pages)."""
        everyone = [self.master, *(w.worker for w in self.workers), *(w.job for w in self.workers)]
        return max(0, sum(u.pss for u in everyone) - sum(u.uss for u in everyone))


def measure_pool(master_pid: int, workers: Iterable[tuple[int, str]]) -> PoolMemory:
    """Sample the master and every (pid, group) worker with its job children."""
    out = []
    for pid, group in workers:
        usage = read_worker_usage(pid)
        if usage is not None:
            out.append(WorkerMemory(pid, group, usage.worker, usage.job))
    return PoolMemory(read_usage(master_pid) or Usage(), tuple(out))
