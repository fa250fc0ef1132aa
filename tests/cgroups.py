"""A private memory cgroup for a test: a child of the one this process belongs to, removed after.

Never touches an existing cgroup's settings: it creates its own child, sets the limit there, and
removes it. Works with cgroup v2 (when the memory controller is enabled for children) or v1.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pyresque.pool.memory import _mounts, _own_cgroups


@dataclass(frozen=True)
class MemoryCgroup:
    path: Path
    version: int

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def oom_kills(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for line in (self.path / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def join(self) -> None:
        """Move the calling process into the cgroup (used as a preexec_fn)."""
        self.procs.write_text(str(os.getpid()))


def create_memory_cgroup(limit: int, name: str) -> MemoryCgroup | None:
    """A child memory cgroup with ``limit`` bytes, or None where this machine does not allow it."""
    v2_root, v1_root = _mounts(Path("/proc/self/mountinfo").read_text())
    v2_own, v1_own = _own_cgroups(Path("/proc/self/cgroup").read_text())
    candidates: list[tuple[Path, int, str]] = []
    if v2_root is not None and v2_own is not None:
        parent = v2_root / v2_own.lstrip("/")
        with contextlib.suppress(OSError):
            if "memory" in (parent / "cgroup.subtree_control").read_text().split():
                candidates.append((parent, 2, "memory.max"))
    if v1_root is not None and v1_own is not None:
        candidates.append((v1_root / v1_own.lstrip("/"), 1, "memory.limit_in_bytes"))
    for parent, version, limit_file in candidates:
        path = parent / name
        try:
            path.mkdir()
        except OSError:
            continue
        try:
            (path / limit_file).write_text(str(limit))
            if version == 1:
                with contextlib.suppress(OSError):
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
            return MemoryCgroup(path, version)
        except OSError:
            remove_cgroup(MemoryCgroup(path, version))
    return None


def remove_cgroup(cgroup: MemoryCgroup) -> None:
    """rmdir once its processes are gone (they are killed by the test's clean-up first)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            cgroup.path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            for pid in cgroup.procs.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            time.sleep(0.05)


@dataclass(frozen=True)
class FreezerCgroup:
    """A child cgroup (v2) whose processes the test can freeze and thaw: stopped without a
    signal, unlike SIGSTOP, whose SIGCONT a worker also reads as "resume"."""

    path: Path

    def join(self) -> None:
        """Move the calling process into the cgroup (used as a preexec_fn)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def freeze(self, frozen: bool = True) -> None:
        (self.path / "cgroup.freeze").write_text("1" if frozen else "0")
        deadline = time.monotonic() + 10
        while f"frozen {int(frozen)}" not in (self.path / "cgroup.events").read_text():
            if time.monotonic() > deadline:
                raise AssertionError(f"cgroup {self.path} not {'frozen' if frozen else 'thawed'}")
            time.sleep(0.01)


def create_freezer_cgroup(name: str) -> FreezerCgroup | None:
    """A child of this process's cgroup v2, or None where there is none or it cannot be made."""
    v2_root, _ = _mounts(Path("/proc/self/mountinfo").read_text())
    v2_own, _ = _own_cgroups(Path("/proc/self/cgroup").read_text())
    if v2_root is None or v2_own is None:
        return None
    path = v2_root / v2_own.lstrip("/") / name
    try:
        path.mkdir()
    except OSError:
        return None
    if not (path / "cgroup.freeze").exists():
        path.rmdir()
        return None
    return FreezerCgroup(path)


def remove_freezer_cgroup(cgroup: FreezerCgroup) -> None:
    """Thaw it and rmdir once its processes are gone (killed by the test's clean-up first)."""
    with contextlib.suppress(OSError):
        cgroup.freeze(False)
    remove_cgroup(MemoryCgroup(cgroup.path, 2))
