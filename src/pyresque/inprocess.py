"""Running a job inside the worker's own process (``FORK_PER_JOB=false``).

There is no child to signal, so the job is interrupted by raising in the main thread from a signal
handler: the one place where raising from a handler is the point. TERM/INT arm a timer
(``RESQUE_PRE_SHUTDOWN_TIMEOUT`` with ``TERM_CHILD``, else at once) whose handler raises
:class:`TermException`; USR1 raises :class:`JobKilled`. Both only while a job runs.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from types import FrameType
from typing import Any

from pyresque.errors import JobKilled, TermException
from pyresque.hooks import WorkerHooks
from pyresque.job import Outcome, Result, perform
from pyresque.protocol import Failure
from pyresque.registry import JobSpec
from pyresque.settings import WorkerSettings


class InProcessRunner:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.killed = False  # the last job was killed on an operator's request (USR1)
        self._running = False

    def run(self, spec: JobSpec, args: Sequence[Any], hooks: WorkerHooks, job: object) -> Result:
        """Run the job with the ``before_job``/``after_job`` worker hooks around it."""
        self.killed = False
        self._running = True
        try:
            try:
                hooks.run("before_job", job)
            except Exception as exc:  # the job cannot run as the app wants it: it fails
                return Result(Outcome.FAILED, Failure.from_exception(exc))
            try:
                return perform(spec, args)
            finally:
                hooks.run_logged("after_job", job)
        except TermException:  # raised between perform's own handlers and here
            return Result(Outcome.INTERRUPTED)
        except JobKilled:
            return Result(Outcome.FAILED)
        finally:
            self._running = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def on_signal(self, signum: int) -> None:
        # in signal context: act only while a job runs
        if not self._running:
            return
        if signum in (signal.SIGTERM, signal.SIGINT) and not self.settings.graceful_term:
            delay = self.settings.pre_shutdown_timeout if self.settings.term_child else 0.0
            signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, max(delay, 0.001))
        elif signum == signal.SIGUSR1:
            self._running = False
            self.killed = True
            raise JobKilled("job killed on request (USR1)")

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        # in signal context
        if self._running:
            self._running = False
            raise TermException("job interrupted by shutdown")
