"""Fork per job (Resque's isolation): the child runs the job, the worker supervises it.

The :class:`~pyresque.worker.runner.JobRunner` of a worker that forks: a child per job, or, with
``--warm-child``, the next job's child forked ahead while the current job runs and handed its job
over a pipe (:mod:`pyresque.worker.child`). It never touches Redis; it returns how the job ended.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import replace

from pyresque.jobs.job import Job, Outcome, Result, perform
from pyresque.jobs.registry import JobSpec
from pyresque.wire.protocol import Failure, decode_payload
from pyresque.worker import child as job_child
from pyresque.worker.escalation import Action, JobClock, Policy, Reason, decide
from pyresque.worker.hooks import WorkerHooks
from pyresque.worker.procname import set_title
from pyresque.worker.runner import (
    Ending,
    RunOutcome,
    Supervision,
    outcome_of,
    perform_with_job_hooks,
    timeout_failure,
)
from pyresque.worker.signals import signal_name

log = logging.getLogger("pyresque.worker.runner")

SUPERVISE_TICK = 1.0  # the longest wait between checks while a job child runs
# A job child that reported its result is left to exit on its own: tearing down a process costs
# about a millisecond, which the worker spends on the next job instead. It is reaped later.
STILL_EXITING = -1
# The worker does not handle SIGCHLD (a signal per job costs it more than it saves): a child's
# pidfd is readable once it has exited. Where there is no pidfd, the end of the result pipe says
# the child is exiting, and its exit is then polled, first after this long.
EXIT_POLL = 0.0005
EXIT_GRACE = 1.0  # how long a leaving or idle worker waits for such a child before killing it
# With a warm child, how long after handing a job over the next job's child is forked. The fork
# costs the worker about a millisecond of CPU; right after the hand-over it would compete with
# the job's first instructions for the CPU (on one CPU, or a worker pinned to one, it delays the
# job's start by the whole fork). A job that ends sooner gets its successor forked at its end.
FORK_AHEAD_DELAY = 0.002


REHEARSAL = '{"class":"Rehearsal","args":[1,2.5,"text",null,true,{"key":["value"]}]}'


# a job's result line as a child writes it, for the worker's rehearsal of reading one
_REHEARSAL_RESULT = json.dumps(Result(Outcome.PERFORMED).to_wire()).encode()


def _rehearsal_job(*args: object) -> None:
    """The no-op a child forked ahead performs while it waits (no app code, no hook)."""


_REHEARSAL_SPEC = JobSpec("Rehearsal", _rehearsal_job)


def rehearse() -> None:
    """In a child forked ahead, while it waits: walk the start of a job's path once (decode a
    payload, set a title), so that the pages it writes are copied now (copy-on-write) rather than
    after its job arrives."""
    payload = decode_payload(REHEARSAL)
    set_title("Processing rehearsal since 0 [Rehearsal]")
    result = perform(_REHEARSAL_SPEC, payload.args)  # a no-op: no hooks of the app's run
    json.dumps(result.to_wire())


def _exited(pid: int) -> bool:
    """Whether a child has ended (reaping it if so)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True


def _exit_within(pid: int, timeout: float) -> bool:
    """Whether a child has ended or ends within ``timeout`` (reaping it): a pidfd becomes
    readable at its exit, so the wait takes no polling; where there is none, one look."""
    if _exited(pid):
        return True
    if timeout <= 0:
        return False
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return _exited(pid)
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return _exited(pid)


class ForkedRunner:
    """Fork per job (Resque's isolation): the child runs the job, the worker supervises it.

    With ``warm``, the child of the next job is forked ahead, while the current job runs (or while
    the worker waits for work), and handed its job over a pipe: the fork leaves the job's path.
    ``resolve`` finds a job's spec by class name in such a child (it was forked before the job was
    known).
    """

    def __init__(
        self,
        hooks: WorkerHooks,
        policy: Policy,
        supervision: Supervision,
        *,
        blocked_signals: tuple[int, ...],
        gc_freeze: bool = True,
        warm: bool = False,
        resolve: Callable[[str], JobSpec] | None = None,
    ) -> None:
        self.hooks = hooks
        self.policy = policy
        self.supervision = supervision
        self.blocked_signals = blocked_signals
        self.gc_freeze = gc_freeze
        self.warm = warm and resolve is not None
        self.resolve = resolve
        self._ahead: job_child.JobChild | None = None  # a warm child waiting for its job
        self._exiting: list[int] = []  # children that reported their result, not yet reaped
        # Act on a result before the child has exited only where its exit can overlap the
        # worker's next steps: another CPU, or a warm child (whose exit waits for an idle CPU).
        # On one CPU the exit runs on the job's path either way, and the extra switches between
        # the two cost more than they save.
        self.early = self.warm or len(os.sched_getaffinity(0)) > 1
        # when the next warm child is due; the child of the job running now (the next one closes
        # its pipes) and that job
        self._ahead_due: tuple[float, job_child.JobChild, Job] | None = None

    def run(
        self,
        job: Job,
        limit: float | None = None,
        on_overrun: Callable[[], None] | None = None,
    ) -> RunOutcome:
        """Raises OSError when fork fails (the worker puts the job back)."""
        job.spec.prime()  # looked up in the worker (cached per job class): children inherit it
        try:
            self.hooks.run("before_fork", job)
        except Exception as exc:
            log.exception("before_fork hook failed for %s", job)
            return RunOutcome(Ending.FAILED, Failure.from_exception(exc))
        # Without a warm child, the last job's child is gone before the next one is forked: its
        # exit overlaps only the round trip to Redis, and its memory is free before the next
        # job's grows (a pool near its memory limit must not hold two jobs' memory at once). A
        # warm child's predecessor is reaped when it is gone (see docs/design.md).
        self.reap(0.0 if self.warm else EXIT_GRACE)
        started = time.monotonic()
        handle = self._start_warm(job) if self.warm else self._start(job, int(time.time()))
        try:
            clock = JobClock(started, limit=limit)
            status, clock = self._supervise(handle, clock, early=self.early)
            result = handle.result()
            if result is None and status == STILL_EXITING:  # not a result after all: wait on
                status, clock = self._supervise(handle, clock, early=False)
        finally:
            handle.close()
        if status == STILL_EXITING:
            # one child at most is left exiting: an earlier one still there is waited for first
            self.reap(EXIT_GRACE)
            self._exiting.append(handle.pid)
        # a job that ended early: its successor now, unrehearsed (the worker walks that path next)
        self._fork_ahead_if_due(math.inf, rehearse=False)
        seconds = time.monotonic() - started
        timed_out = clock.reason is Reason.TIMEOUT
        if timed_out and (result is None or result.outcome is Outcome.INTERRUPTED):
            return RunOutcome(Ending.TIMED_OUT, timeout_failure(limit or 0.0), seconds)
        if result is not None:
            return outcome_of(result, seconds)
        return self._dirty_exit(handle, status, clock, seconds)

    def _start(self, job: Job, stamp: int) -> job_child.JobChild:
        """Fork the job's child now."""

        def run_in_child() -> Result:  # in the child
            set_title(f"Processing {job.queue} since {stamp} [{job.payload.short_class}]")
            self.hooks.run("after_fork", job)  # a TermException here puts the job back
            return perform_with_job_hooks(job, self.hooks)

        handle = job_child.spawn(run_in_child, self.blocked_signals, freeze=self.gc_freeze)
        set_title(f"Forked {handle.pid} at {stamp}")
        return handle

    # --- the warm child ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Fork a child ahead for the first job (with ``warm``; a no-op otherwise)."""
        if self.warm and self._ahead is None:
            self._ahead = self._fork_ahead(())

    def close(self) -> None:
        """End the child forked ahead, if any, and reap every child (the worker is leaving)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.discard()
        self.reap(EXIT_GRACE, kill=True)

    def reap(self, timeout: float = 0.0, *, kill: bool = False) -> None:
        """Reap the job children that reported their result and were left to exit, waiting up
        to ``timeout`` for them (a worker about to idle leaves no zombie behind); with ``kill``,
        one still there then is killed."""
        if not self._exiting:
            return
        deadline = time.monotonic() + timeout
        self._exiting = [
            pid for pid in self._exiting if not _exit_within(pid, deadline - time.monotonic())
        ]
        for pid in self._exiting if kill else ():
            log.warning("job child %d did not exit after reporting its result; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        if kill:
            self._exiting = []

    def _start_warm(self, job: Job) -> job_child.JobChild:
        """Hand the job to the child forked ahead (one forked now if there is none, or it died
        idle), then fork the next job's child while this one runs."""
        # the bytes as reserved, unless a before_fork hook may have changed the decoded payload
        # (encoding it again costs ~0.07 ms on an idle worker's first job, its caches cold)
        fresh = job.raw and not self.hooks.has("before_fork")
        payload = job.raw if fresh else job.payload.encode()
        handle, self._ahead = self._ahead, None
        # a child that died while waiting has closed its end: the hand-over fails (EPIPE)
        if handle is None or not handle.hand(job.queue, payload):
            if handle is not None:
                handle.discard()
            handle = self._fork_ahead(())
            if handle is None or not handle.hand(job.queue, payload):
                raise OSError("no job child could be started")
        # The child woken by the hand-over shares this CPU when the worker's affinity or the
        # scheduler put them together: let it start its job now, not once the worker has done
        # its bookkeeping and blocked (measured with both on one CPU: 0.1-0.2 ms a job).
        os.sched_yield()
        set_title(f"Forked {handle.pid} at {int(time.time())}")
        if self.supervision.wants_more():
            self._ahead_due = (time.monotonic() + FORK_AHEAD_DELAY, handle, job)
        return handle

    def _fork_ahead_or_wait(self, now: float, timeout: float) -> float:
        """While a job runs: fork the next job's child if it is due; ``timeout`` shortened to
        when it will be."""
        self._fork_ahead_if_due(now)
        if self._ahead_due is None:
            return timeout
        return min(timeout, max(self._ahead_due[0] - now, 0.0))

    def _fork_ahead_if_due(self, now: float, *, rehearse: bool = True) -> None:
        """Fork the next job's child if one is due by ``now``."""
        if self._ahead_due is not None and now >= self._ahead_due[0]:
            _, running, job = self._ahead_due
            self._ahead_due = None
            self._ahead = self._fork_ahead(running.fds)  # closes the running job's pipes
            if rehearse:
                self._rehearse(job)

    def _rehearse(self, job: Job) -> None:
        """Right after a fork ahead, while ``job`` runs, walk the path from its result to the
        next job's hand-over, changing nothing: every page the worker writes after a fork is
        copied, and these are the pages that path writes (reading a result, the worker's
        ``CYCLE``, decoding and resolving the next job). Measured
        with 10 ms jobs: 143 page faults between two jobs before, ~60 after; 0.3 ms a job."""
        try:
            outcome_of(Result.from_wire(json.loads(_REHEARSAL_RESULT)), 0.0)
            self.supervision.rehearse(job)
        except Exception:  # it changes nothing: a failure must not leave the running job
            log.debug("rehearsal failed", exc_info=True)

    def _fork_ahead(self, inherited: tuple[int, ...]) -> job_child.JobChild | None:
        """A child that waits for its job; None (logged) when fork fails: the next job forks."""
        hooks, resolve = self.hooks, self.resolve
        assert resolve is not None

        def ready() -> None:  # in the child: the running job's pipes are not its business
            for fd in inherited:
                with contextlib.suppress(OSError):
                    os.close(fd)
            rehearse()
            set_title("Ready for a job (forked ahead)")

        def run_in_child(queue: str, raw: str) -> Result:  # in the child, given its job
            payload = decode_payload(raw)
            job = Job(queue, payload, resolve(payload.class_name))
            set_title(f"Processing {queue} since {int(time.time())} [{payload.short_class}]")
            hooks.run("after_fork", job)  # a TermException here puts the job back
            return perform_with_job_hooks(job, hooks)

        try:
            return job_child.spawn_ahead(
                run_in_child, self.blocked_signals, ready, freeze=self.gc_freeze
            )
        except OSError as exc:
            log.warning("could not fork a child ahead (%s); the next job forks its own", exc)
            return None

    def _supervise(
        self, handle: job_child.JobChild, clock: JobClock, *, early: bool
    ) -> tuple[int, JobClock]:
        """Wait for the job child, acting on signals and timers; its exit status and the clock.
        With ``early``, return :data:`STILL_EXITING` as soon as it has reported its result.

        While the child lives, every page the worker writes is copied (copy-on-write, for both
        processes): with nothing asked of the job (no signal, no limit), the loop only waits,
        allocating nothing, and makes no decision that could only say "wait". The child's exit is
        seen through its result pipe (readable at its end) and then polled, not through SIGCHLD.
        """
        fds = [handle.result_fd] + ([handle.exit_fd] if handle.exit_fd >= 0 else [])
        longest = SUPERVISE_TICK  # without a pidfd, once the pipe has ended: a short poll, growing
        quiet = clock.limit is None
        while True:
            stop_at, kill = self.supervision.job_signals()
            if stop_at is not None and clock.stop_at is None:
                clock, quiet = replace(clock, stop_at=stop_at), False
            if kill is not None and clock.kill is None:
                clock, quiet = replace(clock, kill=kill), False
            pid, status = os.waitpid(handle.pid, os.WNOHANG)
            if pid:
                return status, clock
            if quiet:
                timeout = longest
                if self._ahead_due is not None:
                    timeout = self._fork_ahead_or_wait(time.monotonic(), timeout)
            else:
                now = time.monotonic()
                decision = decide(now, clock, self.policy)
                if decision.action is Action.INTERRUPT and decision.reason is not None:
                    handle.interrupt()
                    clock = clock.interrupted(now, decision.reason)
                    continue
                if decision.action is Action.KILL and decision.reason is not None:
                    if decision.reason is Reason.SHUTDOWN and clock.interrupted_at is not None:
                        log.warning("job child %d ignored TermException; killing it", handle.pid)
                    handle.kill()
                    clock = clock.killed(now, decision.reason)
                    continue
                timeout = self._fork_ahead_or_wait(now, longest)
                if decision.wake_at is not None:
                    timeout = min(timeout, max(decision.wake_at - now, 0.0))
            readable = self.supervision.wait(timeout, fds)
            if handle.result_fd in readable:
                if not handle.read_available():  # the pipe ended: the child is exiting
                    fds = [fd for fd in fds if fd != handle.result_fd]
                    if not fds:
                        longest = EXIT_POLL
                elif early and handle.reported:
                    return STILL_EXITING, clock
            elif not fds:
                longest = min(longest * 2, SUPERVISE_TICK)

    def _dirty_exit(
        self, handle: job_child.JobChild, status: int, clock: JobClock, seconds: float
    ) -> RunOutcome:
        """The child ended without reporting a result: killed, or exited early."""
        if os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            message = (
                f"Child process received unhandled signal pid {handle.pid} "
                f"{signal_name(signum)} (signal {signum})"
            )
        else:
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                return RunOutcome(Ending.DONE, seconds=seconds)  # it ended its process itself
            message = f"Child process exited with status {code} before reporting a result"
        failure = Failure("Resque::DirtyExit", message)
        if clock.reason is Reason.OPERATOR:
            return RunOutcome(Ending.KILLED, failure, seconds)
        if clock.reason is Reason.SHUTDOWN:
            return RunOutcome(Ending.INTERRUPTED, seconds=seconds)
        return RunOutcome(Ending.DIED, failure, seconds)
