"""The worker's signal and timer decisions, as tables (no processes, no clock)."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyresque.worker.escalation import (
    Action,
    Decision,
    JobClock,
    Policy,
    Reason,
    WorkerFlags,
    decide,
    on_signals,
)

TERM_CHILD = Policy(term_child=True, pre_shutdown_timeout=2.0, term_timeout=4.0)
KILL_AT_ONCE = Policy(term_child=False)
INTR, K, W = Action.INTERRUPT, Action.KILL, Action.WAIT
SHUT, OP, TIME = Reason.SHUTDOWN, Reason.OPERATOR, Reason.TIMEOUT


@pytest.mark.parametrize(
    ("now", "clock", "policy", "expected"),
    [
        # nothing asked: wait for the job, however long
        (5.0, JobClock(0.0), TERM_CHILD, Decision(W)),
        # TERM with TERM_CHILD: pre-shutdown grace, then interrupt, then kill term_timeout later
        (10.5, JobClock(0.0, stop_at=10.0), TERM_CHILD, Decision(W, wake_at=12.0)),
        (12.0, JobClock(0.0, stop_at=10.0), TERM_CHILD, Decision(INTR, SHUT)),
        (13.0, JobClock(0.0, stop_at=10.0, interrupted_at=12.0, reason=SHUT), TERM_CHILD,
         Decision(W, wake_at=16.0)),
        (16.0, JobClock(0.0, stop_at=10.0, interrupted_at=12.0, reason=SHUT), TERM_CHILD,
         Decision(K, SHUT)),
        # TERM without TERM_CHILD: kill at once (Ruby's default)
        (10.0, JobClock(0.0, stop_at=10.0), KILL_AT_ONCE, Decision(K, SHUT)),
        # a kill asked for (USR1, a second INT) comes first
        (1.0, JobClock(0.0, kill=OP), TERM_CHILD, Decision(K, OP)),
        (11.0, JobClock(0.0, stop_at=10.0, kill=SHUT), TERM_CHILD, Decision(K, SHUT)),
        # once killed, nothing more to do
        (30.0, JobClock(0.0, stop_at=10.0, killed_at=16.0, reason=SHUT), TERM_CHILD, Decision(W)),
        # a time limit: interrupt at the limit, kill term_timeout later
        (0.4, JobClock(0.0, limit=0.5), TERM_CHILD, Decision(W, wake_at=0.5)),
        (0.5, JobClock(0.0, limit=0.5), KILL_AT_ONCE, Decision(INTR, TIME)),
        (4.5, JobClock(0.0, limit=0.5, interrupted_at=0.5, reason=TIME), TERM_CHILD,
         Decision(K, TIME)),
        # the earlier of a shutdown and a limit decides, and its reason sticks
        (1.0, JobClock(0.0, stop_at=0.9, limit=5.0), TERM_CHILD, Decision(W, wake_at=2.9)),
        (3.0, JobClock(0.0, stop_at=2.0, limit=3.0), TERM_CHILD, Decision(INTR, TIME)),
        # a shutdown during a timed-out job's grace, without TERM_CHILD: kill now
        (1.0, JobClock(0.0, stop_at=1.0, limit=0.5, interrupted_at=0.5, reason=TIME),
         KILL_AT_ONCE, Decision(K, SHUT)),
    ],
)  # fmt: skip
def test_decide(now: float, clock: JobClock, policy: Policy, expected: Decision) -> None:
    assert decide(now, clock, policy) == expected


@given(
    st.floats(0, 100),
    st.one_of(st.none(), st.floats(0, 100)),
    st.one_of(st.none(), st.floats(0.1, 100)),
    st.booleans(),
)
def test_decide_never_acts_before_anything_is_due(
    now: float, stop_at: float | None, limit: float | None, term_child: bool
) -> None:
    policy = Policy(term_child=term_child, pre_shutdown_timeout=1.0, term_timeout=2.0)
    decision = decide(now, JobClock(0.0, stop_at=stop_at, limit=limit), policy)
    if stop_at is None and limit is None:
        assert decision == Decision(W)
    if decision.action is W and decision.wake_at is not None:
        assert decision.wake_at > now
    if decision.action is not W:
        assert decision.reason is not None


T, INT, Q, U1, U2, C = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCONT,
)
IDLE = WorkerFlags()


@pytest.mark.parametrize(
    ("flags", "signums", "policy", "flags_after", "kill", "hooks"),
    [
        (IDLE, [Q], KILL_AT_ONCE, WorkerFlags(stopping=True), None, ()),
        (IDLE, [T], KILL_AT_ONCE, WorkerFlags(stopping=True, stop_at=7.0), None, ()),
        (IDLE, [T], Policy(graceful_term=True), WorkerFlags(stopping=True), None, ()),
        # a repeated TERM is the platform's echo; a second INT means now
        (WorkerFlags(True, 1.0), [T], KILL_AT_ONCE, WorkerFlags(True, 1.0), None, ()),
        (WorkerFlags(True, 1.0), [INT], KILL_AT_ONCE, WorkerFlags(True, 1.0), SHUT, ()),
        (IDLE, [INT, INT], KILL_AT_ONCE, WorkerFlags(True, 7.0), SHUT, ()),
        (IDLE, [U1], KILL_AT_ONCE, IDLE, OP, ()),
        (IDLE, [U2], KILL_AT_ONCE, WorkerFlags(paused=True), None, ("before_pause",)),
        (IDLE, [U2, U2], KILL_AT_ONCE, WorkerFlags(paused=True), None, ("before_pause",)),
        (WorkerFlags(paused=True), [C], KILL_AT_ONCE, IDLE, None, ("after_pause",)),
        (IDLE, [C], KILL_AT_ONCE, IDLE, None, ()),
        (IDLE, [signal.SIGCHLD], KILL_AT_ONCE, IDLE, None, ()),
    ],
)
def test_on_signals(
    flags: WorkerFlags,
    signums: list[int],
    policy: Policy,
    flags_after: WorkerFlags,
    kill: Reason | None,
    hooks: tuple[str, ...],
) -> None:
    effects = on_signals(flags, signums, 7.0, policy)
    assert (effects.flags, effects.kill_job, effects.hooks) == (flags_after, kill, hooks)
