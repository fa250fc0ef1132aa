"""Turning how a job ended into what Redis records: an acknowledgement, a failure record, or the
job put back at the front of its queue (a delivery counted when its process died unasked)."""

from __future__ import annotations

import logging
import time

from pyresque import protocol
from pyresque.errors import DirtyExit, JobTimeout
from pyresque.job import Job, run_failure_hooks
from pyresque.jobmetrics import MetricsRecorder
from pyresque.outage import RedisOutage
from pyresque.protocol import Failure
from pyresque.runner import Ending, RunOutcome
from pyresque.settings import WorkerSettings
from pyresque.store import Ack, Reservation, Store

log = logging.getLogger("pyresque.worker")


class Settlement:
    """Records the jobs of one worker."""

    def __init__(
        self, store: Store, worker_id: str, settings: WorkerSettings, outage: RedisOutage
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.settings = settings
        self.outage = outage
        self.metrics = MetricsRecorder() if settings.job_metrics else None
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
            run_failure_hooks(job.spec, DirtyExit(failure.error), job.args)
            return self._ack(job, res, outcome, count_failed=False)
        if ending is Ending.TIMED_OUT:
            log.warning("job timed out: %s: %s", shown, failure.error)
            run_failure_hooks(job.spec, JobTimeout(failure.error), job.args)
            return self._ack(job, res, outcome)
        error = protocol.shorten(failure.error, 500)
        log.info("failed: %s: %s: %s", shown, failure.exception, error)
        return self._ack(job, res, outcome)

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
            run_failure_hooks(job.spec, DirtyExit(failure.error), job.args)

    def _ack(
        self, job: Job, res: Reservation, outcome: RunOutcome, count_failed: bool = True
    ) -> Ack:
        metric = None
        if self.metrics is not None:
            metric = self.metrics.metric(job.payload.short_class, outcome.seconds, time.time())
        record = ""
        if outcome.failure is not None:
            record = protocol.failure_record(
                res.payload, outcome.failure, self.worker_id, res.queue, time.time()
            )
        return Ack(res, record, count_failed, metric)

    def failed(self, res: Reservation, failure: Failure, count_failed: bool = True) -> Ack:
        record = protocol.failure_record(
            res.payload, failure, self.worker_id, res.queue, time.time()
        )
        return Ack(res, record, count_failed)

    def put_back(self, res: Reservation) -> str:
        return self.store.requeue(self.worker_id, res.queue, res.payload, count_delivery=False)
