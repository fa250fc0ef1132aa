"""A Resque worker: reserve a job, hand it to a runner, record how it ended.

One loop: act on recorded signals, acknowledge the last job and reserve the next in one script call,
run it (a :mod:`~pyresque.worker.runner` forks a child per job, or runs it in-process), repeat; when every
queue is empty, wait for a wake-up or a blocking move, a signal, or the poll timer. A reserved job
sits in this worker's in-flight hash until it is acknowledged, so a SIGKILL at any instant leaves it
in Redis for recovery. Redis outages are ridden out with backoff (:mod:`pyresque.worker.outage`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable

from pyresque.errors import PyresqueError
from pyresque.jobs.job import Job
from pyresque.jobs.registry import Registry, default_registry
from pyresque.settings import WorkerSettings
from pyresque.store.operations import HELD, PAUSED, Ack, Reservation, Store
from pyresque.wire import protocol
from pyresque.wire.protocol import Failure
from pyresque.worker.escalation import Policy, Reason, WorkerFlags, on_signals
from pyresque.worker.forked import ForkedRunner
from pyresque.worker.heartbeat import Heartbeat
from pyresque.worker.hooks import WorkerHooks, default_hooks
from pyresque.worker.inprocess import InProcessRunner
from pyresque.worker.outage import BootFailure, RedisOutage
from pyresque.worker.procname import set_title
from pyresque.worker.queues import QueueSelector
from pyresque.worker.recovery import PeriodicPrune, WorkerId, recover_worker
from pyresque.worker.reserving import Reservations
from pyresque.worker.runner import JobRunner
from pyresque.worker.settlement import Settlement
from pyresque.worker.signals import SignalInbox

log = logging.getLogger(__name__)

WORKER_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCONT,
)
FIRST_POLL = 0.05  # idle poll for jobs pushed by clients that do not publish a wake-up
PARENT_CHECK = 1.0  # how often a busy worker looks whether its pool master is still there
# A worker that could not boot (a hook raised); the pool master backs off (gunicorn's
# WORKER_BOOT_ERROR). The same value as pyresque.pool.spawn.WORKER_BOOT_ERROR.
BOOT_FAILURE_EXIT = 3
# A worker that crashed once working, or could not clean up after itself: an unclean exit.
CRASH_EXIT = 1


class Worker:
    """One worker process working a queue list."""

    def __init__(
        self,
        store: Store,
        selector: QueueSelector,
        settings: WorkerSettings,
        *,
        registry: Registry | None = None,
        hooks: WorkerHooks | None = None,
        redis_label: str = "",
        parent_pid: int | None = None,
    ) -> None:
        """``parent_pid``: the pool master's pid; the worker stops (after its job) once it is
        no longer its parent, so no worker outlives its master."""
        self.store = store
        self.parent_pid = parent_pid
        self.selector = selector
        self.settings = settings
        self.registry = registry or default_registry()
        self.hooks = hooks or default_hooks()
        self.redis_label = redis_label or "Redis"
        self.identity = WorkerId(socket.gethostname(), os.getpid(), str(selector))
        self.id = str(self.identity)
        self.policy = Policy(
            settings.term_child,
            settings.pre_shutdown_timeout,
            settings.term_timeout,
            settings.graceful_term,
        )
        self._forked: ForkedRunner | None = None
        self.runner, self._inbox = self._runner_and_inbox()
        self._flags = WorkerFlags()
        self._job_kill: Reason | None = None
        self._heartbeat = Heartbeat(store, self.id, settings.heartbeat_interval, self.redis_label)
        self._outage = RedisOutage(self, settings.burst, settings.burst_outage_timeout)
        self._settlement = Settlement(store, self.id, settings, self._outage)
        self._registered = False
        self.reservations = Reservations(
            store, self.id, selector, self._heartbeat, lambda: self._registered
        )
        self._signals_installed = False
        self._parent_checked = 0.0
        self.jobs_done = 0
        self._prunes = PeriodicPrune(store, self.identity, selector, self.redis_label)
        # called once registered and about to work (a pool worker tells its master)
        self.on_ready: Callable[[], None] | None = None

    def _runner_and_inbox(self) -> tuple[JobRunner, SignalInbox]:
        """Fork per job (Resque's default), or in-process, whose runner also hears the signals
        (it interrupts a running job from the handler)."""
        if self.settings.fork_per_job:
            forked = ForkedRunner(
                self.hooks,
                self.policy,
                self,
                blocked_signals=WORKER_SIGNALS,
                gc_freeze=self.settings.gc_freeze,
                warm=self.settings.warm_child,
                resolve=self.registry.resolve,
            )
            self._forked = forked
            return forked, SignalInbox(WORKER_SIGNALS)
        if self.settings.warm_child:
            log.warning("--warm-child / PYRESQUE_WARM_CHILD has no effect in-process: no job forks")
        in_process = InProcessRunner(self.hooks, self.policy)
        return in_process, SignalInbox(WORKER_SIGNALS, in_process.on_signal)

    # --- lifecycle -----------------------------------------------------------------------------

    def install_signals(self) -> None:
        """Take over the worker's signals (a pool child does this before unmasking them)."""
        if not self._signals_installed:
            self._inbox.install()
            self._signals_installed = True

    def work(self) -> int:
        """Run until told to stop (or, in burst mode, until the queues are empty).

        Returns 0; 1 (:data:`CRASH_EXIT`) when the worker crashed once working (a pool master
        replaces it at once), could not clean up after itself in Redis (the master cleans up for
        it) or gave up on Redis; :data:`BOOT_FAILURE_EXIT` when it could not boot: its start-up
        or a ``before_first_fork`` hook raised (a pool master backs off: the next one would too).
        """
        self.install_signals()
        try:
            status = self._boot()
            if status is None:
                status = self._work()
        except BootFailure as exc:
            log.error("Worker %s cannot work: %s", self.id, exc)
            status = exc.exit_code
        finally:
            clean = self._finish()
        return status if status or clean else CRASH_EXIT

    def _boot(self) -> int | None:
        """Register, run the ``before_first_fork`` hooks and get ready for the first job. None
        once ready; else the exit status: 0 when told to stop while Redis was away,
        :data:`BOOT_FAILURE_EXIT` (logged with the traceback) when something raised."""
        set_title("Starting")
        try:
            if not self._outage.retry("start", self._startup):
                return 0
        except BootFailure:
            raise
        except Exception:
            log.exception("Worker %s: start-up failed; cannot boot", self.id)
            return BOOT_FAILURE_EXIT
        try:
            self.hooks.run("before_first_fork", self)
        except Exception:
            log.exception("Worker %s: a before_first_fork hook failed; cannot boot", self.id)
            return BOOT_FAILURE_EXIT
        if self.settings.fork_per_job:
            if self.settings.gc_freeze:
                gc.freeze()  # objects loaded so far stay out of the collector: forks share them
            if self._forked is not None:
                self._forked.prepare()  # a warm child for the first job
        else:
            # a job holds the main thread: the heartbeat thread writes the figures meanwhile
            self._heartbeat.start_thread(also=self._settlement.record_metrics)
        log.info("Worker %s started, queues %s", self.id, self.selector)
        if self.on_ready is not None:
            self.on_ready()
        return None

    def _work(self) -> int:
        """The loop, once ready: 0 when it ends, :data:`CRASH_EXIT` when it raised (a bug, or
        data nobody foresaw: logged with its traceback as a crash, never as a boot failure)."""
        try:
            self._loop()
        except BootFailure:
            raise
        except Exception:
            log.exception("Worker %s crashed; exiting", self.id)
            return CRASH_EXIT
        return 0

    def _startup(self) -> bool:
        now = time.time()
        # Our id may be a dead predecessor's (a container restarted with the same hostname and
        # pid): whatever it still holds is that worker's, and goes back before we take jobs.
        reason = Failure(protocol.DIRTY_EXIT, f"Worker {self.id} died (its id is in use again)")
        recovered = recover_worker(self.store, self.id, now, reason, self.settings.max_deliveries)
        if recovered:
            log.warning(
                "Worker %s: a previous worker with this id left jobs: %s", self.id, recovered
            )
        self._prunes.run_at_start(self.settings, now)
        self.store.register_worker(self.id, now)
        self._registered = True
        return True

    def _finish(self) -> bool:
        """Acknowledge the last job, hand back anything still held, unregister. False if Redis
        could not be reached to do it."""
        self._heartbeat.stop()
        try:
            if not self._registered:
                return True  # nothing of ours is in Redis
            self.reservations.acknowledge()
            self._settlement.record_metrics(force=True)
            self.reservations.leave()
            for queue, payload in self.store.inflight(self.id).items():
                self.store.requeue(self.id, queue, payload, count_delivery=False)
            self.store.unregister_worker(self.id)
            self.store.forget_inflight_owner(self.id)
            log.info("Worker %s exiting", self.id)
            return True
        except RedisOutage.ERRORS as exc:
            log.error(
                "Worker %s could not unregister: %s unreachable (%s); a later prune recovers it",
                self.id,
                self.redis_label,
                exc,
            )
            return False
        finally:
            if self._forked is not None:
                self._forked.close()
            self.reservations.close()
            self.hooks.run_logged("worker_exit")

    def _loop(self) -> None:
        poll = FIRST_POLL
        busy = False
        reservations = self.reservations
        while True:
            self.apply_signals()
            self._check_parent()
            if self._flags.stopping:
                return
            self._prunes.run_if_due(self.settings)
            if self._flags.paused and reservations.pause():
                self._idle_paused()
                continue
            reply = self._outage.retry("reserve", reservations.reserve)
            # the figures go when due, and whenever the worker stops taking jobs for a while
            self._settlement.record_metrics(force=not isinstance(reply, Reservation))
            if reply is None and self._flags.stopping:
                return
            if isinstance(reply, Reservation):
                busy = True
                poll = FIRST_POLL
                reservations.finished(self._process(reply))
                self._count_job()
                continue
            if reply == HELD:
                if reservations.progress.held == 1:
                    log.warning(
                        "Worker %s holds a reservation it never heard back about; putting it back",
                        self.id,
                    )
                else:  # still there after putting it back: never a busy loop, whatever it is
                    self.wait(FIRST_POLL, [])
                continue
            if reply == PAUSED:
                set_title("Paused (pause-all-workers)")
                self.wait(max(self.settings.interval, FIRST_POLL), [])
                continue
            if busy:
                busy = False
                self.hooks.run_logged("queue_empty")
            if self.settings.burst:
                log.info("Worker %s: queues empty, burst mode exits", self.id)
                return
            set_title(f"Waiting for {self.selector}")
            if self._forked is not None:
                self._forked.reap(1.0)  # the last job's child is not left a zombie while idle
            self._wait_for_work(poll)
            poll = min(poll * 2, max(self.settings.interval, FIRST_POLL))

    def _count_job(self) -> None:
        self.jobs_done += 1
        if self.settings.max_jobs and self.jobs_done >= self.settings.max_jobs:
            log.info("Worker %s: %d jobs done (max); exiting", self.id, self.jobs_done)
            self._flags = WorkerFlags(True, self._flags.stop_at, self._flags.paused)

    def _idle_paused(self) -> None:
        set_title("Paused")
        # a job the server reserved as the pause ended the wait goes back for other workers
        self._outage.retry("reconcile", self.reservations.reconcile_if_unsure)
        self._outage.retry("ack", self.reservations.acknowledge)  # the finished job first
        self._settlement.record_metrics(force=True)
        # a job the blocking move took goes back for others
        self._outage.retry("return", self.reservations.return_landed)
        self.wait(self.settings.heartbeat_interval, [])

    def reconcile_after_outage(self) -> None:
        """After a lost reply, learn from the in-flight hash what the server did
        (:meth:`Reservations.reconcile`)."""
        self.reservations.reconcile()

    def _wait_for_work(self, timeout: float) -> None:
        """Sleep until a job may be there, a signal arrives, or ``timeout`` passes."""
        self.reservations.wait_for_work(timeout, self._inbox.interruptible)

    # --- Supervision: what a runner asks of the worker while a job runs ------------------------

    def wait(self, timeout: float, fds: list[int]) -> list[int]:
        """Block on signals and ``fds``, heartbeating and writing per-job figures on time;
        returns the readable fds."""
        settlement = self._settlement
        timeout = min(timeout, self._heartbeat.seconds_left(), settlement.metrics_due_in())
        readable = self._inbox.wait(timeout, fds)
        self._heartbeat.beat_if_due()
        settlement.record_metrics()
        return readable

    def job_signals(self) -> tuple[float | None, Reason | None]:
        self.apply_signals()
        kill, self._job_kill = self._job_kill, None
        return self._flags.stop_at, kill

    def rehearse(self, job: Job) -> None:
        """The next ``CYCLE`` call packed (not sent), a ``PING`` on its connection, and ``job``
        decoded and resolved as if it came next: after a fork every page the worker writes is
        copied, and these are the pages it writes between two jobs. Measured: 1.1 → 0.8 ms
        between a warm child's job and the next for the call. A Redis error here is left to the
        next real call."""
        with contextlib.suppress(*RedisOutage.ERRORS):
            self.store.rehearse_cycle(self.id, self.reservations.queues())
        payload = protocol.decode_payload(job.raw or job.payload.encode())
        Job(job.queue, payload, self.registry.resolve(payload.class_name))

    def wants_more(self) -> bool:
        if self._flags.stopping:
            return False
        return not self.settings.max_jobs or self.jobs_done + 1 < self.settings.max_jobs

    def apply_signals(self) -> None:
        signums = self._inbox.drain()
        if not signums:
            return  # the usual case, kept free of allocations (see ForkedRunner._supervise)
        effects = on_signals(self._flags, signums, time.monotonic(), self.policy)
        for name in effects.received:
            log.info("%s received", name)
        self._flags = effects.flags
        self._job_kill = effects.kill_job or self._job_kill
        for hook in effects.hooks:
            self.hooks.run_logged(hook, self)

    @property
    def stopping(self) -> bool:
        return self._flags.stopping

    def _check_parent(self) -> None:
        if self.parent_pid is None or self._flags.stopping:
            return
        now = time.monotonic()
        if now - self._parent_checked < PARENT_CHECK:
            return
        self._parent_checked = now
        if os.getppid() != self.parent_pid:
            log.warning("Worker %s: pool master %d is gone; exiting", self.id, self.parent_pid)
            self._flags = WorkerFlags(True, self._flags.stop_at, self._flags.paused)

    # --- running a job -------------------------------------------------------------------------

    def _process(self, res: Reservation) -> Ack | None:
        """Run a reserved job; return the acknowledgement (None if the job was put back).

        Whatever goes wrong here, the job ends as a failure record holding its original bytes:
        a job the worker cannot handle must never take the worker down with it (it would come
        back at the head of its queue and take the next worker too).
        """
        try:
            try:
                payload = protocol.decode_payload(res.payload)
                spec = self.registry.resolve(payload.class_name)
            except PyresqueError as exc:
                log.error("job from %s rejected: %s", res.queue, protocol.shorten(str(exc)))
                return self._settlement.failed(res, Failure(protocol.exception_name(exc), str(exc)))
            job = Job(res.queue, payload, spec, res.payload)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("got: %s", job.describe(self.settings.log_args))
            self._job_kill = None
            try:
                limit = spec.timeout or self.settings.job_timeout or None
                overrun = functools.partial(self._settlement.overran, job, res, limit or 0.0)
                outcome = self.runner.run(job, limit, overrun)
            except OSError as exc:  # fork failed
                log.error("fork failed (%s); job put back", exc)
                self._outage.retry("requeue", lambda: self._settlement.put_back(res))
                self.wait(1.0, [])
                return None
            return self._settlement.settle(job, res, outcome)
        except Exception as exc:
            log.exception("job from %s could not be handled; recording it as failed", res.queue)
            return self._settlement.failed(res, Failure.from_exception(exc))
