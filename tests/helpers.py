"""Polling with deadlines, and worker subprocesses the tests start and always clean up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from harness import proctable

if TYPE_CHECKING:
    import redis

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = Path(__file__).resolve().parent / "apps"


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01) -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


class Proc:
    """A pyresque command run as a subprocess in its own session, its output in a log file."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log_path: Path,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, **env}
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(APP_DIR), str(ROOT / "src"), full_env.get("PYTHONPATH", "")]
        )
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "pyresque", *args],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(APP_DIR),
            preexec_fn=preexec,  # noqa: PLW1509 - the test process starts no threads
        )
        self.pid = self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 15.0) -> int:
        return self.popen.wait(timeout)

    def stop(self) -> None:
        """Kill the whole session if anything is left, reap, close the log.

        The whole session, not only the leader's process group: pool workers lead groups of their
        own, and one left alive (a busy worker finishes its job after its master dies) would go on
        writing to the test Redis that the next tests use."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        for pid in session_members(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)
        self._log.close()


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (zombies included), from /proc."""
    return [st.pid for st in proctable.snapshot().values() if st.ppid == pid]


def title_of(pid: int) -> str:
    return proctable.title(pid)


def session_members(session: int) -> list[int]:
    """Pids of the processes in a session (zombies included), from /proc."""
    return [st.pid for st in proctable.snapshot().values() if st.sid == session]


def job_figures(r: redis.Redis, job_class: str) -> tuple[int, int]:
    """(finished, failed) of a job class over every minute's per-job figures (``metrics:jobs:*``):
    finished is the sum of its duration buckets, read here without the product's own reader."""
    finished = failed = 0
    for key in r.scan_iter("resque:metrics:jobs:*"):
        for field, value in r.hgetall(key).items():
            name, _, kind = field.decode().rpartition("|")
            if name == job_class:
                finished += int(value) if kind.startswith("h") else 0
                failed += int(value) if kind == "f" else 0
    return finished, failed
