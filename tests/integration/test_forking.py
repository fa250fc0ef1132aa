"""The fork helper: the child's exception is reported, the child never returns into the caller,
and the parent's signal mask is what it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from pyresque.worker import forking
from tests.helpers import ROOT


def wait_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_the_body_exit_code_is_the_child_exit_code() -> None:
    assert wait_code(forking.fork(lambda child: 7)) == 7


def test_a_raising_body_is_reported_to_on_error_and_never_returns_here() -> None:
    r, w = os.pipe()
    returned = []

    def report(exc: BaseException) -> int:
        os.write(w, f"{type(exc).__name__}: {exc}".encode())
        return 5

    def body(child: forking.InChild) -> int:
        raise ValueError("bad payload")

    pid = forking.fork(body, on_error=report)
    returned.append(os.getpid())  # a child that fell through would run this too, and exit 0
    os.close(w)
    assert wait_code(pid) == 5
    assert os.read(r, 1000) == b"ValueError: bad payload"
    os.close(r)


def test_signals_stay_blocked_in_the_child_until_it_unblocks_and_the_parent_is_restored() -> None:
    r, w = os.pipe()

    def body(child: forking.InChild) -> int:
        blocked = signal.SIGUSR1 in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        child.unblock()
        after = signal.SIGUSR1 in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        os.write(w, f"{blocked},{after}".encode())
        return 0

    pid = forking.fork(body, block=[signal.SIGUSR1])
    os.close(w)
    assert wait_code(pid) == 0
    assert os.read(r, 100) == b"True,False"
    assert signal.SIGUSR1 not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    os.close(r)


def test_by_default_the_traceback_reaches_the_log_and_output_is_flushed() -> None:
    script = textwrap.dedent(
        """
        import logging, os, sys
        from pyresque.worker import forking
        logging.basicConfig(stream=sys.stderr)

        def body(child):
            print("buffered line from the child", end="")
            raise RuntimeError("lost in the advise copy before")

        pid = forking.fork(body)
        _, status = os.waitpid(pid, 0)
        print("\\nexit", os.waitstatus_to_exitcode(status))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=30,
        check=True,
    )
    assert "RuntimeError: lost in the advise copy before" in out.stderr
    assert "Traceback" in out.stderr
    assert "buffered line from the child" in out.stdout
    assert out.stdout.strip().endswith("exit 1")
