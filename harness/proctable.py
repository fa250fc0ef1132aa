"""The process table, read from /proc (Linux only): who is whose child, in which session, titled what.

The tests look up a worker's children and titles with it; the pool benchmark and the chaos runs
sample and kill whole sessions.

Every pool master a run starts leads a session of its own (``start_new_session=True``), and its
workers and job children stay in that session (they make their own process groups, not sessions),
also once they have lost their parent: the session id finds all of them again, to sample and to
kill at the end. Nothing here signals a process outside those sessions. (The environment cannot
mark them: setproctitle reuses the memory /proc/<pid>/environ shows.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Stat:
    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int
    cpu_ticks: int  # utime + stime


def stat(pid: int) -> Stat | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 of proc(5): state, ppid, pgrp, session, ..., utime (14), stime (15)
    return Stat(
        pid,
        fields[0],
        int(fields[1]),
        int(fields[2]),
        int(fields[3]),
        int(fields[11]) + int(fields[12]),
    )


def snapshot() -> dict[int, Stat]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = stat(int(entry))
            if st is not None:
                out[st.pid] = st
    return out


def title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def in_sessions(sids: Iterable[int], table: dict[int, Stat] | None = None) -> list[Stat]:
    """Live (not zombie) processes of these sessions, this process excepted."""
    table = snapshot() if table is None else table
    wanted = set(sids)
    me = os.getpid()
    return [st for st in table.values() if st.sid in wanted and st.state != "Z" and st.pid != me]


def children(pid: int, table: dict[int, Stat]) -> list[int]:
    return sorted(st.pid for st in table.values() if st.ppid == pid and st.state != "Z")


def cpu_seconds(pid: int) -> float | None:
    st = stat(pid)
    return None if st is None else st.cpu_ticks / CLOCK_TICKS


def kill_sessions(sids: Iterable[int], timeout: float = 10.0) -> int:
    """SIGKILL every live process of these sessions until none is left; returns how many."""
    sids = set(sids)
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = in_sessions(sids)
        if not left:
            break
        for st in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(st.pid, signal.SIGKILL)
            killed.add(st.pid)
        time.sleep(0.02)
    return len(killed)
