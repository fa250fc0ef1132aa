"""Running a job inside the worker's own process (``FORK_PER_JOB=false``).

There is no child to signal, so the job is interrupted by raising in the main thread from a signal
handler: the one place where raising from a handler is the point. TERM/INT and a time limit arm a
timer (``RESQUE_PRE_SHUTDOWN_TIMEOUT`` with ``TERM_CHILD``, else at once; the limit) whose handler
raises :class:`TermException`; USR1 raises :class:`JobKilled`. Both only while a job runs.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType

from pyresque.errors import JobKilled, TermException
from pyresque.jobs.job import Job, Outcome, Result, perform
from pyresque.wire.protocol import Failure
from pyresque.worker.deadline import JOB_DEADLINE
from pyresque.worker.escalation import Policy, Reason
from pyresque.worker.hooks import WorkerHooks
from pyresque.worker.procname import set_title
from pyresque.worker.runner import (
    Ending,
    RunOutcome,
    outcome_of,
    timeout_failure,
)
from pyresque.worker.watchdog import Watchdog

_NEVER = float("inf")


class InProcessRunner:
    def __init__(self, hooks: WorkerHooks, policy: Policy) -> None:
        self.hooks = hooks
        self.policy = policy
        self._running = False
        self._reason: Reason | None = None  # why the running job was interrupted or killed
        self._interrupt_at = _NEVER  # monotonic
        self._limit_at = _NEVER
        self._timer_set = False  # a setitimer to undo after the job (a system call per job saved)
        self._watchdog = Watchdog()

    def run(
        self,
        job: Job,
        limit: float | None = None,
        on_overrun: Callable[[], None] | None = None,
    ) -> RunOutcome:
        """``on_overrun`` is called from another thread when the job is still running
        ``RESQUE_TERM_TIMEOUT`` after its limit interrupted it (it must end the process)."""
        started = time.monotonic()
        # the title changes once a second at most (set_title skips an unchanged one)
        set_title(f"Processing {job.queue} since {int(time.time())} [{job.payload.short_class}]")
        self._reason = None
        self._interrupt_at = _NEVER
        self._limit_at = started + limit if limit is not None else _NEVER
        self._running = True
        if limit is not None:  # seen by the pool master even while the job holds the GIL
            JOB_DEADLINE.get().arm(started + limit + self.policy.term_timeout, limit)
        if limit is not None and on_overrun is not None:
            self._watchdog.arm(started + limit + self.policy.term_timeout, on_overrun)
        try:
            self._arm()
            result = self._perform(job)
        except TermException:  # raised between perform's own handlers and here
            result = Result(Outcome.INTERRUPTED)
        except JobKilled:
            result = Result(Outcome.FAILED)
        finally:
            self._running = False
            if self._timer_set:
                signal.setitimer(signal.ITIMER_REAL, 0)
                self._timer_set = False
            self._watchdog.disarm()
            if limit is not None:
                JOB_DEADLINE.get().disarm()
        seconds = time.monotonic() - started
        if self._reason is Reason.OPERATOR:  # recorded as fork mode records it
            return RunOutcome(
                Ending.KILLED, Failure("Resque::DirtyExit", "Job killed on request (USR1)"), seconds
            )
        if self._reason is Reason.TIMEOUT and result.outcome is Outcome.INTERRUPTED:
            return RunOutcome(Ending.TIMED_OUT, timeout_failure(limit or 0.0), seconds)
        return outcome_of(result, seconds)

    def _perform(self, job: Job) -> Result:
        """The job between the ``before_job`` and ``after_job`` hooks (and the ``job_failed`` hooks
        of a job that raised), as :func:`~pyresque.worker.runner.perform_with_job_hooks` runs it
        in a child, except that the job stops being killable (USR1) or interruptible (TERM, its
        limit) once its work is done.

        Why: a USR1 landing in ``after_job``, or anywhere between the job's end and its
        acknowledgement, recorded a ``DirtyExit`` for a job that had run, and the acknowledgement
        counted it too; retrying that record ran the job twice."""
        try:
            self.hooks.run("before_job", job)
        except Exception as exc:  # a before_job hook: the job cannot run as the app wants it
            return Result(Outcome.FAILED, Failure.from_exception(exc))
        try:
            result = perform(job.spec, job.args)
            self._running = False  # no signal is handled before this: no call since perform's
            if result.error is not None:  # only a failure pays for it
                self.hooks.run_logged("job_failed", job, result.error)
            return result
        finally:
            self._running = False
            self.hooks.run_logged("after_job", job)

    def _arm(self) -> None:
        due = min(self._interrupt_at, self._limit_at)
        if due < _NEVER:
            signal.signal(signal.SIGALRM, self._on_alarm)
            self._timer_set = True
            signal.setitimer(signal.ITIMER_REAL, max(due - time.monotonic(), 0.001))

    def on_signal(self, signum: int) -> None:
        # in signal context: act only while a job runs
        if not self._running:
            return
        if signum in (signal.SIGTERM, signal.SIGINT) and not self.policy.graceful_term:
            delay = self.policy.pre_shutdown_timeout if self.policy.term_child else 0.0
            self._interrupt_at = min(self._interrupt_at, time.monotonic() + delay)
            self._arm()
        elif signum == signal.SIGUSR1:
            self._running = False
            self._reason = Reason.OPERATOR
            raise JobKilled("job killed on request (USR1)")

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        # in signal context
        if not self._running:
            return
        now = time.monotonic()
        if now >= min(self._interrupt_at, self._limit_at) - 0.0005:
            self._running = False
            self._reason = (
                Reason.TIMEOUT if self._limit_at <= self._interrupt_at else Reason.SHUTDOWN
            )
            raise TermException(
                "job interrupted by shutdown"
                if self._reason is Reason.SHUTDOWN
                else "job ran past its time limit"
            )
        self._arm()  # woken early: wait for what is due
