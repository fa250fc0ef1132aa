"""The README's one-command quickstart, run as a newcomer would, against the session's private Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.helpers import ROOT
from tests.redis_server import RedisServer


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
