"""Turning how a job ended into what Redis records: an acknowledgement, a failure record, or the
job put back at the front of its queue (a delivery counted when its process died unasked)."""

from __future__ import annotations

import functools
import logging
import math
import os
import time

from pyresque.errors import DirtyExit, JobTimeout
from pyresque.jobs import tracing
from pyresque.jobs.job import Job, run_failure_hooks
from pyresque.jobs.retry import Retry, retry_identifier
from pyresque.settings import WorkerSettings
from pyresque.store.cycle import RetryRequest
from pyresque.store.operations import Ack, Reservation, Store
from pyresque.wire import protocol
from pyresque.wire.jobmetrics import MetricsBatch
from pyresque.wire.protocol import Failure
from pyresque.worker.outage import RedisOutage
from pyresque.worker.runner import Ending, RunOutcome, timeout_failure

log = logging.getLogger("pyresque.worker.loop")


class Settlement:
    """Records the jobs of one worker."""

    def __init__(
        self, store: Store, worker_id: str, settings: WorkerSettings, outage: RedisOutage
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.settings = settings
        self.outage = outage
        self.metrics = MetricsBatch() if settings.job_metrics else None
        # one line per finished job with VERBOSE (as Resque logs it), else only at DEBUG
        self._done_level = logging.INFO if settings.verbose else logging.DEBUG

    def settle(self, job: Job, res: Reservation, outcome: RunOutcome) -> Ack | None:
        """The acknowledgement for how a job ended (None: it was put back)."""
        ending, failure = outcome.ending, outcome.failure
        if ending is Ending.DONE and not log.isEnabledFor(self._done_level):
            return self._ack(job, res, outcome)  # the hot path: no log line to format
        shown = job.describe(self.settings.log_args)
        if ending is Ending.INTERRUPTED:
            log.info("job interrupted by shutdown, put back: %s", shown)
            self.outage.retry("requeue", lambda: self.put_back(res))
            return None
        if ending is Ending.DIED and failure is not None:
            self._requeue_counted(job, res, failure, shown)
            return None
        if ending is Ending.DONE:
            log.log(self._done_level, "done: %s", shown)
            return self._ack(job, res, outcome)
        assert failure is not None
        if ending is Ending.KILLED:
            log.warning("job killed on request (USR1): %s", shown)
            self._failed_outside(job, DirtyExit(failure.error))
            return self._ack(job, res, outcome, count_failed=False)
        policy = self._policy(job)
        if ending is Ending.TIMED_OUT:
            log.warning("job timed out: %s: %s", shown, failure.error)
            self._failed_outside(job, JobTimeout(failure.error))
            if policy is not None and policy.covers(JobTimeout):
                return self._retry_or_fail(job, res, outcome, failure, policy)
            return self._ack(job, res, outcome)
        if policy is not None and outcome.retryable:
            return self._retry_or_fail(job, res, outcome, failure, policy)
        error = protocol.shorten(failure.error, 500)
        log.info("failed: %s: %s: %s", shown, failure.exception, error)
        return self._ack(job, res, outcome)

    def _policy(self, job: Job) -> Retry | None:
        """The job's retry policy, else the worker's default (None: no retries)."""
        if job.spec.retry is not None:
            return job.spec.retry
        return Retry(retries=self.settings.retry_attempts) if self.settings.retry_attempts else None

    def _retry_or_fail(
        self, job: Job, res: Reservation, outcome: RunOutcome, failure: Failure, policy: Retry
    ) -> Ack | None:
        """Delay the job's next attempt (through the delayed queue), or, with its retries used
        up, record the failure saying how many it had; either way acknowledged in one call."""
        self._count(job, outcome)
        counter = self.store.keys.retry_attempts(job.payload.class_name, retry_identifier(job.args))
        item = protocol.delayed_item(res.queue, res.payload)
        for _ in range(5):  # another worker retrying an identical job changed the counter: again
            seen = self.outage.retry("retry", lambda: self.store.retry_attempts(counter)) or ""
            done = int(seen) if seen.isdigit() else 0
            again = done < policy.retries
            now = time.time()
            ending = Failure(
                failure.exception, f"{failure.error} (after {done + 1} attempts)", failure.backtrace
            )
            record = protocol.failure_record(res.payload, ending, self.worker_id, res.queue, now)
            request = RetryRequest(
                self.worker_id,
                res,
                counter,
                seen,
                again,
                item,
                policy.due_at(now, done + 1),
                record,
            )
            result = self.outage.retry("retry", functools.partial(self.store.retry_later, request))
            if result == "changed":
                continue
            if result == "retried":
                if tracing.tracers():
                    tracing.notify("retried", res.queue, job.payload, done + 1, request.timestamp)
                log.info(
                    "failed: %s: %s; retry %d of %d at %d",
                    job.describe(self.settings.log_args),
                    failure.exception,
                    done + 1,
                    policy.retries,
                    request.timestamp,
                )
            elif result == "failed":
                log.info(
                    "failed: %s: %s: %s (after %d attempts)",
                    job.describe(self.settings.log_args),
                    failure.exception,
                    protocol.shorten(failure.error, 500),
                    done + 1,
                )
            return None
        return self._ack(job, res, outcome, counted=True)  # its figures were counted above

    def _requeue_counted(self, job: Job, res: Reservation, failure: Failure, shown: str) -> None:
        """The job's process died unasked: put it back, counting a delivery (or fail it once it
        has killed its process too often)."""
        record = protocol.failure_record(
            res.payload, failure, self.worker_id, res.queue, time.time()
        )
        outcome = self.outage.retry(
            "requeue",
            lambda: self.store.requeue(
                self.worker_id,
                res.queue,
                res.payload,
                count_delivery=True,
                max_deliveries=self.settings.max_deliveries,
                failure_record=record,
            ),
        )
        log.warning("%s: %s; %s", failure.error, shown, outcome)
        if outcome == "failed":
            self._failed_outside(job, DirtyExit(failure.error))

    def _failed_outside(self, job: Job, exc: BaseException) -> None:
        """A failure decided here, not raised in the job (a timeout, a kill, a process that died
        too often): the job's on_failure hooks, and the tracers (an error tracker reports it)."""
        run_failure_hooks(job.spec, exc, job.args)
        if tracing.tracers():
            tracing.notify("failed_outside", job, exc)

    def _ack(
        self,
        job: Job,
        res: Reservation,
        outcome: RunOutcome,
        count_failed: bool = True,
        *,
        counted: bool = False,
    ) -> Ack:
        """How ``job`` is acknowledged, its figures counted first unless they were."""
        if not counted:
            self._count(job, outcome)
        forget = ""
        if outcome.ending is Ending.DONE and self._policy(job) is not None:
            # a retried job that now succeeded starts from zero next time, as resque-retry does
            forget = self.store.keys.retry_attempts(
                job.payload.class_name, retry_identifier(job.args)
            )
        record = ""
        if outcome.failure is not None:
            record = protocol.failure_record(
                res.payload, outcome.failure, self.worker_id, res.queue, time.time()
            )
        return Ack(res, record, count_failed, forget)

    def _count(self, job: Job, outcome: RunOutcome) -> None:
        """Add a job that ran to the per-job figures."""
        if self.metrics is not None:
            failed = outcome.failure is not None
            self.metrics.add(job.payload.short_class, outcome.seconds, failed, time.time())

    # --- per-job figures ---------------------------------------------------------------------

    def metrics_due_in(self) -> float:
        """Seconds until the per-job figures are due to be written (inf: none are kept)."""
        batch = self.metrics
        return math.inf if batch is None else batch.seconds_until_due(time.monotonic())

    def record_metrics(self, *, force: bool = False) -> float:
        """Write the per-job figures added up since the last write, when due or ``force``d (the
        worker goes idle or stops). A failed write drops them: it may have been applied before its
        reply was lost, and figures are better short than counted twice. Returns the seconds until
        the next write is due (for the in-process worker's heartbeat thread)."""
        batch = self.metrics
        if batch is None:
            return math.inf
        now = time.monotonic()
        due_in = batch.seconds_until_due(now)
        if force or due_in <= 0.0:
            figures = batch.take(now)
            try:
                self.store.record_metrics(figures)
            except Exception as exc:  # figures never stop a worker, whatever refused them
                log.warning(
                    "Worker %s: per-job figures of %d minute(s) not written, dropped: %s: %s",
                    self.worker_id,
                    len(figures),
                    type(exc).__name__,
                    exc,
                )
            due_in = batch.seconds_until_due(now)
        return due_in

    def failed(self, res: Reservation, failure: Failure, count_failed: bool = True) -> Ack:
        record = protocol.failure_record(
            res.payload, failure, self.worker_id, res.queue, time.time()
        )
        return Ack(res, record, count_failed)

    def put_back(self, res: Reservation) -> str:
        return self.store.requeue(self.worker_id, res.queue, res.payload, count_delivery=False)

    def overran(self, job: Job, res: Reservation, limit: float) -> None:
        """In the watchdog's thread: the in-process job outlived its limit and its interruption.
        Fail it (as a timeout, acknowledged exactly once by its token) and leave, so the pool
        replaces this worker; the stuck main thread never returns."""
        try:
            failure = timeout_failure(limit)
            failure = Failure(
                failure.exception,
                f"{failure.error}; it did not stop when interrupted, so its worker was retired",
            )
            self.store.cycle(self.worker_id, time.time(), ack=self.failed(res, failure))
            log.error("Worker %s: %s overran its limit; retiring", self.worker_id, job.describe())
        finally:
            os._exit(1)  # unclean on purpose: the pool master unregisters this worker
