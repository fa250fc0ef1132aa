"""Running one job, in a forked child (:mod:`~pyresque.worker.forked`) or in the worker's own
process (:mod:`~pyresque.worker.inprocess`), behind one interface: this module.

A runner takes a reserved, resolved job and returns how it ended (a :class:`RunOutcome`); it never
touches Redis. The worker turns the outcome into an acknowledgement, a failure record or a job put
back. That keeps the runner below the worker (it needs nothing from it but a :class:`Supervision`:
waiting with heartbeats, and the signals' verdict), and gives time limits and per-job timing one
place to live.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pyresque.jobs.job import Job, Outcome, Result, perform
from pyresque.wire.protocol import Failure
from pyresque.worker import child as job_child
from pyresque.worker.escalation import Reason
from pyresque.worker.hooks import WorkerHooks


class Ending(enum.Enum):
    DONE = "done"  # performed, or skipped by a hook (DontPerform): acknowledged
    FAILED = "failed"  # the job raised: a failure record, counted in stat:failed
    INTERRUPTED = "interrupted"  # stopped by a shutdown: put back, no delivery counted
    KILLED = "killed"  # killed on an operator's request (USR1): fails as DirtyExit, not counted
    DIED = "died"  # its process died unasked: put back, a delivery counted
    TIMED_OUT = "timed_out"  # ran past its time limit: fails as JobTimeout


@dataclass(frozen=True)
class RunOutcome:
    ending: Ending
    failure: Failure | None = None  # FAILED; the DirtyExit of KILLED/DIED; the timeout's
    seconds: float = 0.0  # how long the job ran (for per-job metrics)
    retryable: bool = False  # FAILED: the job's retry policy (or the default) covers it


class Supervision(Protocol):
    """What a runner needs from the worker while a job runs."""

    def wait(self, timeout: float, fds: list[int]) -> list[int]:
        """Block on the worker's signals and ``fds`` (heartbeating on time); readable fds."""
        ...

    def job_signals(self) -> tuple[float | None, Reason | None]:
        """Act on the signals that arrived; return when the worker was told to stop now (or
        None) and a kill it was asked for (or None)."""
        ...

    def wants_more(self) -> bool:
        """Whether the worker expects to run another job after this one (not stopping, not at
        its last job): only then is a child forked ahead for it."""
        ...

    def rehearse(self, job: Job) -> None:
        """Just after a child was forked ahead, while ``job`` runs: walk the worker's own path to
        the next job (taking it as the next one) without changing anything, so that its
        copy-on-write faults happen now."""
        ...


class JobRunner(Protocol):
    def run(
        self,
        job: Job,
        limit: float | None = None,
        on_overrun: Callable[[], None] | None = None,
    ) -> RunOutcome:
        """Run ``job`` (within ``limit`` seconds, if given) and say how it ended.
        ``on_overrun``: what to do when a job outlives its limit and cannot be killed (a runner
        that can kill it ignores it)."""
        ...


def perform_with_job_hooks(job: Job, hooks: WorkerHooks) -> Result:
    """In the job's process: the ``before_job``/``after_job`` hooks around the job, and the
    ``job_failed`` hooks of a job that raised; reported before ``after_job`` (USR1-safe)."""
    hooks.run("before_job", job)
    try:
        if (result := perform(job.spec, job.args)).error is not None:  # only a failure pays
            hooks.run_logged("job_failed", job, result.error)
        job_child.report_result(result)
        return result
    finally:
        hooks.run_logged("after_job", job)


def outcome_of(result: Result, seconds: float) -> RunOutcome:
    """A job's own Result (it reported one) as a RunOutcome."""
    if result.outcome is Outcome.FAILED:
        return RunOutcome(Ending.FAILED, result.failure, seconds, result.retryable)
    if result.outcome is Outcome.INTERRUPTED:
        return RunOutcome(Ending.INTERRUPTED, seconds=seconds)
    return RunOutcome(Ending.DONE, seconds=seconds)


def timeout_failure(limit: float) -> Failure:
    return Failure("pyresque.JobTimeout", f"job ran past its time limit of {limit:g}s")
