"""How the master shuts down, as a table: signal and TERM mode -> what workers get, whether the
master waits, and its deadlines."""

from __future__ import annotations

import signal

import pytest

from pyresque.pool.options import TermMode
from pyresque.pool.shutdown import begin_shutdown

NOW = 100.0


@pytest.mark.parametrize(
    ("name", "mode", "worker_signal", "wait", "deadline", "clean_up_by"),
    [
        ("TERM", TermMode.DEADLINE, signal.SIGTERM, True, NOW + 25 - 1, NOW + 25 - 0.5),
        ("INT", TermMode.GRACEFUL, signal.SIGTERM, True, NOW + 25 - 1, NOW + 25 - 0.5),
        ("INT", TermMode.GRACEFUL_WAIT, signal.SIGTERM, True, NOW + 25 - 1, NOW + 25 - 0.5),
        ("TERM", TermMode.GRACEFUL_WAIT, signal.SIGQUIT, True, None, None),
        ("QUIT", TermMode.DEADLINE, signal.SIGQUIT, True, None, None),
        ("TERM", TermMode.GRACEFUL, signal.SIGQUIT, False, NOW, NOW),
        ("TERM", TermMode.IMMEDIATE, signal.SIGTERM, False, NOW, NOW),
    ],
)
def test_begin_shutdown(
    name: str,
    mode: TermMode,
    worker_signal: int,
    wait: bool,
    deadline: float | None,
    clean_up_by: float | None,
) -> None:
    start = begin_shutdown(name, mode, NOW, 25.0)
    assert (start.worker_signal, start.wait) == (worker_signal, wait)
    assert start.shutdown.deadline == deadline
    assert start.clean_up_by == clean_up_by
    assert start.shutdown.signal_name == name
    assert start.message.startswith(f"{name}: ")


@pytest.mark.parametrize(("timeout", "margin"), [(5.0, 0.5), (2.0, 0.2), (60.0, 1.0)])
def test_the_kill_margin_is_ten_percent_up_to_a_second(timeout: float, margin: float) -> None:
    start = begin_shutdown("TERM", TermMode.DEADLINE, NOW, timeout)
    assert start.shutdown.deadline == pytest.approx(NOW + timeout - margin)
    assert start.clean_up_by == pytest.approx(NOW + timeout - margin / 2)
