"""Jobs the integration tests run in real worker processes. Each records what it did in Redis."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import redis

import pyresque
from pyresque import DontPerform


def _r() -> redis.Redis:
    return pyresque.default_client().redis


def _note(key: str, value: Any) -> None:
    _r().rpush(f"test:{key}", value if isinstance(value, str) else json.dumps(value))


class BoomError(Exception):
    pass


@pyresque.job(queue="oracle", name="Echo")
def echo(*args: Any) -> None:
    # the pid first: a test that saw "done" may read the pids at once
    _note("pids", str(os.getpid()))
    _note("done", list(args))


pyresque.register("Mailers::Welcome", echo)


@pyresque.job(queue="oracle", name="Boom")
class Boom:
    @staticmethod
    def perform(*args: Any) -> None:
        raise BoomError(f"boom: {json.dumps(list(args), separators=(',', ':'))}")

    @staticmethod
    def on_failure(exc: BaseException, *args: Any) -> None:
        _note("on_failure", f"{type(exc).__name__}: {exc}")


@pyresque.job(queue="oracle", name="Sleepy")
class Sleepy:
    @staticmethod
    def perform(seconds: float, marker: str) -> None:
        _note("started", marker)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        _note("done", marker)

    @staticmethod
    def on_failure(exc: BaseException, *args: Any) -> None:
        _note("on_failure", f"{type(exc).__name__}: {exc}")


@pyresque.job(queue="oracle", name="KillSelf")
class KillSelf:
    """Dies of SIGKILL in the middle of its work, like an OOM-killed job."""

    @staticmethod
    def perform(marker: str) -> None:
        _note("started", marker)
        os.kill(os.getpid(), signal.SIGKILL)

    @staticmethod
    def on_failure(exc: BaseException, *args: Any) -> None:
        _note("on_failure", f"{type(exc).__name__}: {exc}")


@pyresque.job(queue="oracle", name="Stubborn")
def stubborn() -> None:
    """Swallows TermException and keeps going: only SIGKILL stops it."""
    _note("started", "stubborn")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            time.sleep(0.01)
        except pyresque.TermException:
            _note("events", "swallowed TermException")


@pyresque.job(queue="oracle", name="ShutdownAware")
def shutdown_aware(marker: str) -> None:
    """Works until its process is asked to shut down, then finishes cleanly."""
    _note("started", marker)
    deadline = time.monotonic() + 30
    while not pyresque.shutdown_requested() and time.monotonic() < deadline:
        time.sleep(0.01)
    _note("done", f"{marker}:shutdown_requested={pyresque.shutdown_requested()}")


@pyresque.job(queue="oracle", name="Hooked")
class Hooked:
    @staticmethod
    def before_perform(*args: Any) -> None:
        _note("events", "before")

    @staticmethod
    def around_perform_a(*args: Any) -> Iterator[None]:
        _note("events", "around_a:enter")
        yield
        _note("events", "around_a:exit")

    @staticmethod
    def around_perform_b(*args: Any) -> Iterator[None]:
        _note("events", "around_b:enter")
        yield
        _note("events", "around_b:exit")

    @staticmethod
    def perform(fail: bool) -> None:
        _note("events", "perform")
        if fail:
            raise BoomError("hooked failure")

    @staticmethod
    def after_perform(*args: Any) -> None:
        _note("events", "after")

    @staticmethod
    def on_failure(exc: BaseException, *args: Any) -> None:
        _note("events", f"on_failure:{exc}")


@pyresque.job(queue="oracle", name="Skipped")
class Skipped:
    @staticmethod
    def before_perform(*args: Any) -> None:
        raise DontPerform("not today")

    @staticmethod
    def perform() -> None:
        _note("events", "skipped-perform-ran")


@pyresque.job(queue="oracle", name="ExitCode")
def exit_code(code: int) -> None:
    _note("attempts", str(os.getpid()))
    os._exit(code)


class _StuckOutput:
    """An output stream whose flush never returns (a pipe nobody reads)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        time.sleep(60)


@pyresque.job(queue="oracle", name="StuckAtExit")
def stuck_at_exit(marker: str) -> None:
    """Succeeds, but its process cannot exit: the flush on the way out never returns."""
    _note("pids", str(os.getpid()))
    _note("done", marker)
    sys.stdout = _StuckOutput()  # type: ignore[assignment]


@pyresque.job(queue="oracle", name="Hang", timeout=0.5)
def hang(marker: str) -> None:
    """Runs past its time limit; ignores nothing, so TermException stops it."""
    _note("started", marker)
    time.sleep(30)
    _note("done", marker)


@pyresque.job(queue="oracle", name="HangHard", timeout=0.5)
def hang_hard(marker: str) -> None:
    """Runs past its time limit and swallows the TermException: only a kill stops it."""
    _note("started", marker)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except BaseException:
            _note("swallowed", marker)


_LEAKED: list[bytes] = []


@pyresque.job(queue="oracle", name="Leak")
def leak(megabytes: int, marker: str) -> None:
    """Keeps ``megabytes`` of memory for the life of its process, like a leaky in-process job."""
    _LEAKED.append(b"x" * (megabytes * 1024 * 1024))
    time.sleep(0.1)
    _note("pids", str(os.getpid()))
    _note("done", marker)


@pyresque.job(queue="oracle", name="Enqueuer")
def enqueuer(n: int) -> None:
    """Enqueues from inside a job child: its Redis connection must be its own."""
    for i in range(n):
        pyresque.enqueue(echo, f"child-{i}")


@pyresque.before_first_fork
def _first(worker: Any) -> None:
    _note("worker_hooks", "before_first_fork")


@pyresque.before_fork
def _before(job: Any) -> None:
    _note("worker_hooks", f"before_fork:{job.payload.class_name}")


@pyresque.after_fork
def _after(job: Any) -> None:
    _note("worker_hooks", f"after_fork:{job.payload.class_name}:{os.getpid()}")


@pyresque.queue_empty
def _empty() -> None:
    _note("worker_hooks", "queue_empty")


@pyresque.worker_exit
def _exit() -> None:
    _note("worker_hooks", "worker_exit")
