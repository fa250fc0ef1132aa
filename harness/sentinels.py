"""A real Redis master, one replica and three sentinels on free TCP ports, for failover tests.

Every process is started here from ``redis-server`` (sentinels with ``--sentinel``), in a
temporary directory, bound to 127.0.0.1, and stopped by :meth:`SentinelCluster.stop`. Sentinels
declare the master down after ``down_after_ms`` and fail over within a few seconds of that.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis

from harness.redis_server import find_redis_server, free_port

SERVICE = "mymaster"


def _until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if predicate():  # type: ignore[operator]
                return
        time.sleep(0.05)
    raise RuntimeError(f"sentinel cluster: {what} not within {timeout} s")


@dataclass
class SentinelCluster:
    directory: str
    down_after_ms: int
    address: str = "127.0.0.1"  # what the sentinels announce (also bound, besides loopback)
    aof: bool = False  # appendonly with appendfsync always, so a restarted server keeps its data
    password: str | None = None  # requirepass of the servers (the sentinels have none)
    servers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)  # port -> process
    sentinels: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis+sentinel://{self.url_hosts}/{SERVICE}/0"

    def start_server(self, port: int, replica_of: int | None = None) -> None:
        args = [
            find_redis_server(),
            "--port",
            str(port),
            "--bind",
            *self._binds(),
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "yes" if self.aof else "no",
            "--appendfsync",
            "always",
            "--appendfilename",
            f"appendonly-{port}.aof",
            "--dir",
            self.directory,
            "--dbfilename",
            f"dump-{port}.rdb",
            "--logfile",
            os.path.join(self.directory, f"redis-{port}.log"),
            "--replica-announce-ip",
            self.address,
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ]
        if replica_of is not None:
            args += ["--replicaof", self.address, str(replica_of)]
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        self.servers[port] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _until(lambda: self.server(port).ping(), 20, f"redis-server on {port}")

    def start_sentinel(self, port: int, master_port: int) -> None:
        conf = os.path.join(self.directory, f"sentinel-{port}.conf")
        with open(conf, "w") as f:
            f.write(
                f"port {port}\nbind {' '.join(self._binds())}\ndir {self.directory}\n"
                f"logfile {self.directory}/sentinel-{port}.log\n"
                f"sentinel monitor {SERVICE} {self.address} {master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            if self.password:
                f.write(f"sentinel auth-pass {SERVICE} {self.password}\n")
        self.sentinels[port] = subprocess.Popen(
            [find_redis_server(), conf, "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _binds(self) -> list[str]:
        return ["127.0.0.1"] if self.address == "127.0.0.1" else ["127.0.0.1", self.address]

    @property
    def url_hosts(self) -> str:
        return ",".join(f"{self.address}:{p}" for p in self.sentinels)

    def server(self, port: int) -> redis.Redis:
        return redis.Redis("127.0.0.1", port, socket_timeout=2, password=self.password)

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis("127.0.0.1", port, socket_timeout=2)

    def master_port(self) -> int:
        """The master port the first answering sentinel names."""
        for port in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                _host, master = self.sentinel(port).sentinel_get_master_addr_by_name(SERVICE)
                return int(master)
        raise RuntimeError("no sentinel answers")

    def replica_port(self) -> int:
        return next(p for p in self.servers if p != self.master_port())

    def settled(self) -> bool:
        """Every sentinel names the same master, which says it is one, with its replica in sync
        and every sentinel aware of the two others."""
        masters = set()
        for port in self.sentinels:
            state = self.sentinel(port).sentinel_master(SERVICE)
            if state["num-other-sentinels"] != len(self.sentinels) - 1:
                return False
            if state["num-slaves"] < 1 or state["flags"] != "master":
                return False
            masters.add(int(state["port"]))
        if len(masters) != 1:
            return False
        master = masters.pop()
        info = self.server(master).info("replication")
        if info["role"] != "master" or info["connected_slaves"] < 1:
            return False
        return all(
            self.server(p).info("replication").get("master_link_status") == "up"
            for p in self.servers
            if p != master and self.servers[p].poll() is None
        )

    def wait_settled(self, timeout: float = 30.0) -> None:
        _until(self.settled, timeout, "a settled master, replica and sentinels")

    def failover(self, timeout: float = 30.0) -> tuple[int, int]:
        """SENTINEL FAILOVER; returns (old, new) master ports once the sentinels agree."""
        old = self.master_port()
        self.sentinel(next(iter(self.sentinels))).execute_command("SENTINEL FAILOVER", SERVICE)
        _until(lambda: self.master_port() != old, timeout, "a new master")
        return old, self.master_port()

    def kill_master(self, timeout: float = 30.0) -> tuple[int, int]:
        """SIGKILL the master; returns (old, new) ports once the sentinels promoted the replica."""
        old = self.master_port()
        self.servers[old].send_signal(signal.SIGKILL)
        self.servers[old].wait(10)
        _until(lambda: self.master_port() != old, timeout, "a new master after the kill")
        return old, self.master_port()

    def restart_server(self, port: int) -> None:
        """Start a stopped server again (as a replica: the sentinels would demote it anyway)."""
        self.start_server(port, replica_of=self.master_port())

    def restart_master(self) -> int:
        """SIGKILL the current master and start it again at once (from its AOF when ``aof``):
        a crash and a supervisor's restart, quicker than the sentinels' down-after."""
        port = self.master_port()
        self.servers[port].kill()
        self.servers[port].wait(10)
        self.start_server(port)
        return port

    def freeze_master(self, seconds: float) -> int:
        """SIGSTOP the master for ``seconds`` (a stalled host or a swapping server), then CONT."""
        port = self.master_port()
        self.servers[port].send_signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            self.servers[port].send_signal(signal.SIGCONT)
        return port

    def stop(self) -> None:
        for proc in [*self.sentinels.values(), *self.servers.values()]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_sentinel_cluster(
    down_after_ms: int = 1000,
    address: str = "127.0.0.1",
    aof: bool = False,
    password: str | None = None,
) -> SentinelCluster:
    """A master, a replica of it and three sentinels watching it, settled."""
    cluster = SentinelCluster(
        tempfile.mkdtemp(prefix="pyresque-sentinel-"), down_after_ms, address, aof, password
    )
    try:
        master = free_port()
        cluster.start_server(master)
        cluster.start_server(free_port(), replica_of=master)
        for _ in range(3):
            cluster.start_sentinel(free_port(), master)
        cluster.wait_settled()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def sentinel_cluster(
    down_after_ms: int = 1000, password: str | None = None
) -> Iterator[SentinelCluster]:
    cluster = start_sentinel_cluster(down_after_ms, password=password)
    try:
        yield cluster
    finally:
        cluster.stop()
