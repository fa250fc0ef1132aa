"""What the standing chaos run (bench/standing.py) throws at a fleet: hosts, pools, payloads.

A *host* is a simulated machine (harness/fleet.py: network and UTS namespaces) or, where namespaces
are not allowed, this machine (:class:`LocalHost`: each pool in a session of its own). A
:class:`HostPools` runs one pool per host and kills its pieces. :func:`hostile_payload` builds the
payloads an outside run found breaking workers: out-of-range floats, invalid UTF-8, 20 MB, deep
nesting, unknown and non-string classes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import common  # noqa: F401 - puts the repository root on sys.path, for harness

from harness import APP_DIR, ROOT, proctable

HEARTBEAT, PRUNE = 1, 5  # the pools' RESQUE_HEARTBEAT_INTERVAL and RESQUE_PRUNE_INTERVAL

HOSTILE_KINDS = (
    "top-level 1e999",  # [1e999]: not an object, and not a float Python can write back
    "unknown class, 1e999 arg",
    "class 5, -1e999",
    "meta 1e999",  # a runnable job with an out-of-range extra key (recovery must cope)
    "invalid UTF-8",
    "20 MB",
    "deep nesting",
    "unknown class",
)


def hostile_payload(kind: str, n: int) -> bytes:
    """The hostile payload ``kind``; runnable ones carry ledger id ``-(n + 1)``."""
    job_id = -(n + 1)
    if kind == "top-level 1e999":
        return b"[1e999]"
    if kind == "unknown class, 1e999 arg":
        return b'{"class":"Nope","args":[1e999]}'
    if kind == "class 5, -1e999":
        return b'{"class":5,"x":-1e999}'
    if kind == "meta 1e999":
        return b'{"class":"Ledger::Work","args":[%d,0.05],"meta":1e999}' % job_id
    if kind == "invalid UTF-8":
        return b'{"class":"Ledger::Work","args":[%d,0],"note":"\xff\xfe\xc3"}' % job_id
    if kind == "20 MB":
        pad = b"x" * (20 * 1024 * 1024)
        return b'{"class":"Ledger::Work","args":[%d,0],"pad":"%s"}' % (job_id, pad)
    if kind == "deep nesting":
        depth = 100_000
        return b'{"class":"Ledger::Work","args":[%d,0],"deep":%s%s}' % (
            job_id,
            b"[" * depth,
            b"]" * depth,
        )
    if kind == "unknown class":
        return json.dumps({"class": "Nope::Missing", "args": [n]}).encode()
    raise ValueError(kind)


class HostLike(Protocol):
    name: str

    def run(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]: ...
    def pids(self) -> list[int]: ...
    def kill(self) -> int: ...
    def reap(self) -> None: ...


@dataclass
class LocalHost:
    """This machine as the only host: every pool in a session of its own."""

    name: str = field(default_factory=socket.gethostname)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        full = {**os.environ, **env}
        full["PYTHONPATH"] = os.pathsep.join([str(APP_DIR), str(ROOT / "src")])
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pyresque", *args],
                env=full,
                cwd=str(APP_DIR),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def pids(self) -> list[int]:
        return [st.pid for st in proctable.in_sessions([p.pid for p in self.procs])]

    def kill(self) -> int:
        n = proctable.kill_sessions([p.pid for p in self.procs])
        self.reap()
        return n

    def reap(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0)


@dataclass
class HostPools:
    """One pool per host, started and killed on demand; ``env_for(host)`` gives its environment."""

    hosts: list[Any]
    workers: int
    directory: Path
    env: dict[str, str]
    masters: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, host: Any) -> None:
        config = self.directory / f"pool-{host.name}.yml"
        config.write_text(f"fleet: {self.workers}\n")
        log = self.directory / f"pool-{host.name}.log"
        self.masters[host.name] = host.run(
            ["pool", "--config", str(config), "--app", "ledgerapp"], self.env, log
        )

    def master_pid(self, host: Any) -> int | None:
        proc = self.masters.get(host.name)
        return proc.pid if proc is not None and proc.poll() is None else None

    def tree(self, host: Any, table: dict[int, proctable.Stat]) -> tuple[list[int], list[int]]:
        """(workers, job children) of the host's live master."""
        master = self.master_pid(host)
        if master is None:
            return [], []
        workers = proctable.children(master, table)
        return workers, [c for w in workers for c in proctable.children(w, table)]

    def kill_master(self, host: Any) -> bool:
        master = self.master_pid(host)
        if master is None:
            return False
        os.kill(master, signal.SIGKILL)
        self.masters[host.name].wait(10)
        return True

    def wait_booted(self, timeout: float) -> None:
        """Until every live master has all its workers (a TERM before the master installed its
        handlers would kill it by the default action: a test artefact, not a shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            table = proctable.snapshot()
            if all(
                len(self.tree(h, table)[0]) >= self.workers
                for h in self.hosts
                if self.master_pid(h) is not None
            ):
                return
            time.sleep(0.1)

    def term_all(self, timeout: float) -> dict[str, int | None]:
        """TERM every live master; their exit statuses (None: still running at ``timeout``)."""
        live = {name: p for name, p in self.masters.items() if p.poll() is None}
        for proc in live.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        out: dict[str, int | None] = {}
        for name, proc in live.items():
            try:
                out[name] = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                out[name] = None
        return out

    def log_text(self) -> str:
        text = ""
        for host in self.hosts:
            with contextlib.suppress(OSError):
                text += (self.directory / f"pool-{host.name}.log").read_text(errors="replace")
        return text
