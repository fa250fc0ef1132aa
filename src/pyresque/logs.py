"""One log format for every pyresque process (worker, pool master, pool workers, job children).

Every line goes to stderr, so ``2>/dev/null`` hides the logs and stdout keeps what a command
prints as its result. A text line is::

    2026-11-29T18:21:29.123+00:00 INFO resque-pool-manager[myapp][4242]: spawned worker 4250 ...

time (local, with its UTC offset), level, then resque-pool's ``role[APP][PID]:`` prefix that users
already grep for, then the message. ``--log-json`` writes the same fields as one JSON object per
line. redis-py's own loggers are held at WARNING even with ``-v``: their DEBUG lines (one per
connection about ``MAINT_NOTIFICATIONS``) drown ours and tell an operator nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

# Third-party loggers kept at WARNING whatever the verbosity.
QUIET_LOGGERS: tuple[str, ...] = ("redis", "urllib3", "asyncio")

RoleOf = Callable[[logging.LogRecord], str]


def timestamp(created: float) -> str:
    """``2026-11-29T18:21:29.123+00:00``: ISO 8601, local time, milliseconds and offset."""
    local = time.localtime(created)
    offset = time.strftime("%z", local)
    millis = int(created % 1 * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', local)}.{millis:03d}{offset[:3]}:{offset[3:]}"


class LogFormatter(logging.Formatter):
    """``TIME LEVEL role[APP][PID]: message`` (tracebacks on the following lines), or JSON."""

    def __init__(self, app_name: str, role_of: RoleOf, as_json: bool) -> None:
        super().__init__()
        self.app_name = app_name
        self.role_of = role_of
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        role = self.role_of(record)
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if self.as_json:
            return json.dumps(
                {
                    "time": timestamp(record.created),
                    "level": record.levelname.lower(),
                    "role": role,
                    "app": self.app_name,
                    "pid": record.process,
                    "logger": record.name,
                    "message": message,
                },
                ensure_ascii=False,
            )
        return (
            f"{timestamp(record.created)} {record.levelname} "
            f"{role}[{self.app_name}][{record.process}]: {message}"
        )


def by_pid(main_pid: int, main_role: str, other_role: str) -> RoleOf:
    """Role by process: ``main_role`` in the process that set up logging, ``other_role`` in the
    processes it forks (which inherit the handler)."""
    return lambda record: main_role if record.process == main_pid else other_role


class PoolFormatter(LogFormatter):
    """``resque-pool-manager[APP][PID]`` in the master, ``resque-pool-worker`` in forked workers."""

    def __init__(self, app_name: str, master_pid: int, as_json: bool) -> None:
        super().__init__(
            app_name, by_pid(master_pid, "resque-pool-manager", "resque-pool-worker"), as_json
        )
        self.master_pid = master_pid


def install(formatter: logging.Formatter, verbose: int, stream: TextIO | None = None) -> None:
    """Make ``formatter`` on stderr the only handler of the root logger, at INFO (DEBUG with
    ``-v``), with the noisy third-party loggers held at WARNING."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def setup_worker_logging(app_name: str, as_json: bool, verbose: int) -> None:
    """``pyresque work``: ``pyresque-worker`` in the worker, ``pyresque-job`` in its job children."""
    install(
        LogFormatter(app_name, by_pid(os.getpid(), "pyresque-worker", "pyresque-job"), as_json),
        verbose,
    )


def setup_role_logging(role: str, app_name: str, *, as_json: bool, verbose: int) -> None:
    """Any other long-running process (the scheduler): ``role`` in it and in what it forks."""
    install(LogFormatter(app_name, lambda record: role, as_json), verbose)


def setup_pool_logging(app_name: str, as_json: bool, verbose: bool) -> None:
    """The pool: :class:`PoolFormatter`, with this process as the master."""
    install(PoolFormatter(app_name, os.getpid(), as_json), int(verbose))
