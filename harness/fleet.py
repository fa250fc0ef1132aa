"""Several simulated hosts on one machine: a network and a UTS namespace each, one Redis.

Each :class:`Host` is a network namespace (``ip netns``) joined to the root namespace by a veth
pair; every process started in it also gets its own UTS namespace with the host's name, so
``socket.gethostname()`` (and with it every worker id) differs per host, as on a fleet of dynos
or pods. The jobs' Redis listens in the root namespace on each veth's root-side address; the
ledger Redis is reached over its unix socket, which no partition cuts.

Killing a host is SIGKILL to every process whose network namespace is the host's; partitioning it
is taking its veth down (packets are dropped, connections hang as on a real network split) and
healing it is bringing the veth up again (surviving TCP connections resume).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from harness import APP_DIR, ROOT
from harness.redis_server import find_redis_server, free_port


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def namespaces_unavailable() -> str | None:
    """Why hosts cannot be simulated here (None when they can)."""
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"no {tool!r} command"
    name = f"pyrchk{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", name)
        try:
            _ip("link", "add", f"{name}a", "type", "veth", "peer", "name", f"{name}b")
            _ip("link", "del", f"{name}a")
            subprocess.run(
                ["ip", "netns", "exec", name, "unshare", "--uts", "true"],
                check=True,
                capture_output=True,
                timeout=10,
            )
        finally:
            subprocess.run(
                ["ip", "netns", "del", name], check=False, capture_output=True, timeout=10
            )
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as exc:
        err = getattr(exc, "stderr", b"") or b""
        return f"network namespaces and veths not allowed here ({err.decode().strip() or exc})"
    return None


def _free_subnet() -> int:
    """A third octet of 10.213.x.0/24 that no interface uses yet (hosts take 10.213.x.4i+1/30)."""
    used = subprocess.run(["ip", "-o", "addr"], check=False, capture_output=True, text=True).stdout
    for _ in range(100):
        octet = secrets.randbelow(250) + 1
        if f"10.213.{octet}." not in used:
            return octet
    raise RuntimeError("no free 10.213.x.0/24 subnet")


@dataclass
class Host:
    name: str  # hostname and network namespace name
    veth: str  # root-side end
    root_addr: str
    addr: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def netns_inode(self) -> int:
        return os.stat(f"/run/netns/{self.name}").st_ino

    def pids(self) -> list[int]:
        """Every process in this host (its network namespace)."""
        inode, out = self.netns_inode(), []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.stat(f"/proc/{entry}/ns/net").st_ino == inode:
                        out.append(int(entry))
        return out

    def run(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``python -m pyresque ARGS`` in this host, with its hostname, in its own session."""
        full = {**os.environ, **env}
        full["PYTHONPATH"] = os.pathsep.join([str(APP_DIR), str(ROOT / "src")])
        command = [
            "ip", "netns", "exec", self.name,
            "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.name,
            sys.executable, "-m", "pyresque", *args,
        ]  # fmt: skip
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                command,
                env=full,
                cwd=str(APP_DIR),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def kill(self) -> int:
        """SIGKILL every process in the host, until none is left; returns how many."""
        killed: set[int] = set()
        deadline = time.monotonic() + 10
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            self.reap()
            time.sleep(0.02)
        self.reap()
        return len(killed)

    def reap(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0)

    def partition(self) -> None:
        _ip("link", "set", self.veth, "down")

    def heal(self) -> None:
        _ip("link", "set", self.veth, "up")


class Fleet:
    """``count`` hosts and one jobs' Redis reachable from all of them; :meth:`close` undoes all."""

    def __init__(self, count: int) -> None:
        self.token = secrets.token_hex(2)
        self.directory = tempfile.mkdtemp(prefix="pyresque-fleet-")
        self.hosts: list[Host] = []
        self.redis_proc: subprocess.Popen[bytes] | None = None
        try:
            octet = _free_subnet()
            for i in range(count):
                self.hosts.append(self._add_host(i, octet))
            self.port = free_port()
            self._start_redis()
        except BaseException:
            self.close()
            raise

    def _add_host(self, i: int, octet: int) -> Host:
        name = f"pyr{self.token}h{i}"
        root_addr, addr = f"10.213.{octet}.{4 * i + 1}", f"10.213.{octet}.{4 * i + 2}"
        _ip("netns", "add", name)
        host = Host(name, f"{name}a", root_addr, addr)
        _ip("link", "add", f"{name}a", "type", "veth", "peer", "name", f"{name}b")
        _ip("link", "set", f"{name}b", "netns", name)
        _ip("addr", "add", f"{root_addr}/30", "dev", f"{name}a")
        _ip("link", "set", f"{name}a", "up")
        for args in (
            ["addr", "add", f"{addr}/30", "dev", f"{name}b"],
            ["link", "set", f"{name}b", "up"],
            ["link", "set", "lo", "up"],
            ["route", "add", "default", "via", root_addr],  # every root-namespace address
        ):
            _ip("-n", name, *args)
        return host

    def _start_redis(self) -> None:
        binds = ["127.0.0.1", *(h.root_addr for h in self.hosts)]
        self.redis_proc = subprocess.Popen(
            [
                find_redis_server(),
                "--port", str(self.port), "--bind", *binds, "--protected-mode", "no",
                "--save", "", "--appendonly", "no", "--dir", self.directory,
                "--logfile", os.path.join(self.directory, "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if self.client().ping():
                    return
            time.sleep(0.02)
        raise RuntimeError("the fleet's redis-server did not start")

    @property
    def server_addr(self) -> str:
        """A root-namespace address every host reaches (through its default route)."""
        return self.hosts[0].root_addr

    def url_for(self, host: Host) -> str:
        return f"redis://{host.root_addr}:{self.port}/0"

    def client(self) -> redis.Redis:
        """The test's own connection (root namespace, loopback)."""
        return redis.Redis("127.0.0.1", self.port, socket_timeout=5)

    def close(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(Exception):
                host.kill()
            subprocess.run(
                ["ip", "link", "del", host.veth], check=False, capture_output=True, timeout=10
            )
            subprocess.run(
                ["ip", "netns", "del", host.name], check=False, capture_output=True, timeout=10
            )
        if self.redis_proc is not None and self.redis_proc.poll() is None:
            self.redis_proc.kill()
            self.redis_proc.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)
