"""What a worker does about its signals and a running job's timers: pure decisions.

Two functions, each a table in its tests, as :func:`pyresque.pool.plan.plan` is for the master:

- :func:`on_signals` turns the signals a worker received into its new flags (stopping, stop time,
  paused) and the effects to carry out (kill the job, run the pause hooks). Resque's meanings:
  QUIT finishes the job then exits; TERM/INT exit now (``GRACEFUL_TERM`` makes TERM a QUIT); a
  second INT kills the job at once, a repeated TERM changes nothing (Heroku signals every process,
  so a worker may see TERM twice); USR1 kills the job; USR2 pauses, CONT resumes.
- :func:`decide` says, for a running job at ``now``, whether to interrupt it (``TermException``),
  kill it, or wait, and until when: ``TERM_CHILD`` gives a job ``RESQUE_PRE_SHUTDOWN_TIMEOUT`` to
  finish, then interrupts it and kills it ``RESQUE_TERM_TIMEOUT`` later; without ``TERM_CHILD``
  a shutdown kills it at once; a time limit interrupts it at the limit and kills it
  ``RESQUE_TERM_TIMEOUT`` later.

The worker and the runners own the clock and the processes; these functions only decide.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Iterable
from dataclasses import dataclass, replace


class Action(enum.Enum):
    WAIT = "wait"
    INTERRUPT = "interrupt"  # raise TermException in the job
    KILL = "kill"


class Reason(enum.Enum):
    """Why a job was interrupted or killed: it decides what becomes of the job."""

    SHUTDOWN = "shutdown"  # put back at the front of its queue, no delivery counted
    OPERATOR = "operator"  # USR1: fails as Resque::DirtyExit, not counted in stat:failed
    TIMEOUT = "timeout"  # fails as JobTimeout


@dataclass(frozen=True)
class Policy:
    """The timers of a worker's settings."""

    term_child: bool = False
    pre_shutdown_timeout: float = 0.0
    term_timeout: float = 4.0
    graceful_term: bool = False


@dataclass(frozen=True)
class JobClock:
    """What happened to the running job so far (times are monotonic).

    ``stop_at``: when the worker was told to stop now (TERM/INT); ``kill``: a kill was asked for
    (USR1, a second INT); ``limit``: the job's time limit in seconds (None: none);
    ``interrupted_at``/``killed_at``: when the runner did so, and ``reason`` why.
    """

    started_at: float
    stop_at: float | None = None
    kill: Reason | None = None
    limit: float | None = None
    interrupted_at: float | None = None
    killed_at: float | None = None
    reason: Reason | None = None

    def interrupted(self, now: float, reason: Reason) -> JobClock:
        return replace(self, interrupted_at=now, reason=self.reason or reason)

    def killed(self, now: float, reason: Reason) -> JobClock:
        return replace(self, killed_at=now, reason=self.reason or reason)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason | None = None
    wake_at: float | None = None  # when the decision may change by the clock alone


def decide(now: float, clock: JobClock, policy: Policy) -> Decision:
    """Interrupt, kill, or wait (and until when) for a running job at ``now``."""
    if clock.killed_at is not None:
        return Decision(Action.WAIT)
    if clock.kill is not None:
        return Decision(Action.KILL, clock.kill)
    if clock.interrupted_at is not None:
        if clock.stop_at is not None and not policy.term_child:
            return Decision(Action.KILL, Reason.SHUTDOWN)
        kill_at = clock.interrupted_at + policy.term_timeout
        if now >= kill_at:
            return Decision(Action.KILL, clock.reason)
        return Decision(Action.WAIT, wake_at=kill_at)
    due: list[tuple[float, Reason]] = []
    if clock.stop_at is not None:
        if not policy.term_child:
            return Decision(Action.KILL, Reason.SHUTDOWN)
        due.append((clock.stop_at + policy.pre_shutdown_timeout, Reason.SHUTDOWN))
    if clock.limit is not None:
        due.append((clock.started_at + clock.limit, Reason.TIMEOUT))
    if not due:
        return Decision(Action.WAIT)
    at, reason = min(due, key=lambda d: d[0])
    if now >= at:
        return Decision(Action.INTERRUPT, reason)
    return Decision(Action.WAIT, wake_at=at)


# --- signals to the worker ------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerFlags:
    stopping: bool = False  # leave after the current job
    stop_at: float | None = None  # TERM/INT arrived: the running job must end now (monotonic)
    paused: bool = False


@dataclass(frozen=True)
class SignalEffects:
    flags: WorkerFlags
    kill_job: Reason | None = None  # kill the running job (if any) for this reason
    hooks: tuple[str, ...] = ()  # worker hooks to run, in order (before_pause, after_pause)
    received: tuple[str, ...] = ()  # names of the signals acted on, for the log


def on_signals(
    flags: WorkerFlags, signums: Iterable[int], now: float, policy: Policy
) -> SignalEffects:
    """The worker's new flags after ``signums`` (oldest first), and what to do about them."""
    kill: Reason | None = None
    hooks: list[str] = []
    received: list[str] = []
    for signum in signums:
        if signum == signal.SIGCHLD:
            continue
        received.append(signal.Signals(signum).name)
        if signum == signal.SIGQUIT or (signum == signal.SIGTERM and policy.graceful_term):
            flags = replace(flags, stopping=True)
        elif signum in (signal.SIGTERM, signal.SIGINT):
            if signum == signal.SIGINT and flags.stop_at is not None:
                kill = Reason.SHUTDOWN  # a second Ctrl-C: now
            flags = replace(flags, stopping=True, stop_at=flags.stop_at or now)
        elif signum == signal.SIGUSR1:
            kill = kill or Reason.OPERATOR
        elif signum == signal.SIGUSR2 and not flags.paused:
            hooks.append("before_pause")
            flags = replace(flags, paused=True)
        elif signum == signal.SIGCONT and flags.paused:
            flags = replace(flags, paused=False)
            hooks.append("after_pause")
    return SignalEffects(flags, kill, tuple(hooks), tuple(received))
