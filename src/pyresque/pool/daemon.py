"""Running in the background: pidfile, Ruby's shared --lock, daemonizing, reopening logs."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def pidfile(path: str | None) -> Iterator[None]:
    if not path:
        yield
        return
    Path(path).write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if Path(path).read_text().strip() == str(os.getpid()):
                Path(path).unlink()


@contextlib.contextmanager
def shared_lock(path: str | None) -> Iterator[IO[Any] | None]:
    """Ruby's --lock: a shared lock held for the pool's life (deploy tools wait for it)."""
    if not path:
        yield None
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield handle


def daemonize(stdout: str | None, stderr: str | None) -> None:
    """Double fork, new session, standard streams to files (or /dev/null)."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if stdout else devnull
    err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if stderr else out
    os.dup2(out, 1)
    os.dup2(err, 2)


def reopen_logs(stdout_path: str | None, stderr_path: str | None) -> None:
    """Point stdout/stderr at fresh handles of their files (after logrotate moved them)."""
    for path, fd in ((stdout_path, 1), (stderr_path, 2)):
        if path:
            new = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(new, fd)
            os.close(new)
