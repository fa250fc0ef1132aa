"""A Resque worker: reserve a job, run it (in a forked child by default), record how it ended.

One loop: act on recorded signals, acknowledge the last job and reserve the next in one script call,
run it, repeat; when every queue is empty, wait on the wake-up channel, the signal pipe and a poll
timer at once. A reserved job sits in this worker's in-flight hash until it is acknowledged, so a
SIGKILL at any instant leaves it in Redis for recovery.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from pyresque import child as job_child
from pyresque import protocol
from pyresque.connection import RETRYABLE_ERRORS
from pyresque.errors import DirtyExit, PyresqueError
from pyresque.heartbeat import Heartbeat
from pyresque.hooks import WorkerHooks, default_hooks
from pyresque.inprocess import InProcessRunner
from pyresque.job import Job, Outcome, Result, perform, run_failure_hooks
from pyresque.procname import set_title
from pyresque.protocol import Failure
from pyresque.queues import QueueSelector
from pyresque.recovery import WorkerId, prune_dead_workers, recover_worker
from pyresque.registry import Registry, default_registry
from pyresque.settings import WorkerSettings
from pyresque.signals import SignalInbox, signal_name
from pyresque.store import PAUSED, Ack, Reservation, Store
from pyresque.wakeup import BlockingMove, WakeupListener

log = logging.getLogger(__name__)

T = TypeVar("T")

WORKER_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCONT,
    signal.SIGCHLD,
)
FIRST_POLL = 0.05  # idle poll for jobs pushed by clients that do not publish a wake-up
QUEUE_REFRESH = 1.0  # how long a resolved '*' or glob list is reused while busy
MAX_BACKOFF = 10.0


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
        self._in_process = None if settings.fork_per_job else InProcessRunner(settings)
        self._inbox = SignalInbox(
            WORKER_SIGNALS, None if self._in_process is None else self._in_process.on_signal
        )
        self._stopping = False  # exit after the current job
        self._stop_now: float | None = None  # monotonic time TERM/INT arrived
        self._paused = False
        self._operator_kill = False
        self._pending_ack: Ack | None = None
        self._queues_cache: tuple[float, list[str]] = (-1e9, [])
        self._static_queues = [] if selector.is_dynamic else selector.resolve()
        self._wakeups = WakeupListener(store, selector)
        self._blocking = (
            BlockingMove(store, self.id, selector.patterns[0])
            if selector.blocks_on_one_queue
            else None
        )
        self._heartbeat = Heartbeat(store, self.id, settings.heartbeat_interval, self.redis_label)
        self._registered = False
        self._signals_installed = False
        self.jobs_done = 0
        self._nonce = os.urandom(4).hex()  # reservation tokens: <nonce>.<counter>
        self._tokens = 0
        # called once registered and about to work (a pool worker tells its master)
        self.on_ready: Callable[[], None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def install_signals(self) -> None:
        """Take over the worker's signals (a pool child does this before unmasking them)."""
        if not self._signals_installed:
            self._inbox.install()
            self._signals_installed = True

    def work(self) -> int:
        """Run until told to stop (or, in burst mode, until the queues are empty).

        Returns 0, or 1 when the worker could not clean up after itself in Redis (so that a pool
        master treats it as an unclean exit and cleans up for it).
        """
        self.install_signals()
        try:
            set_title("Starting")
            if not self._retry_redis("start", self._startup):
                return 0
            log.info("Worker %s started, queues %s", self.id, self.selector)
            if self.on_ready is not None:
                self.on_ready()
            self._loop()
        finally:
            clean = self._finish()
        return 0 if clean else 1

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
        prune_dead_workers(
            self.store,
            self.identity,
            self.selector,
            now=now,
            lock_ttl=int(self.settings.heartbeat_interval),
            prune_interval=self.settings.prune_interval,
            max_deliveries=self.settings.max_deliveries,
        )
        self.store.register_worker(self.id, now)
        self._registered = True
        self.hooks.run("before_first_fork", self)
        if self.settings.fork_per_job:
            if self.settings.gc_freeze:
                gc.freeze()  # objects loaded so far stay out of the collector: forks share them
        else:
            self._heartbeat.start_thread()
        return True

    def _finish(self) -> bool:
        """Acknowledge the last job, hand back anything still held, unregister. False if Redis
        could not be reached to do it."""
        self._heartbeat.stop()
        try:
            if self._pending_ack is not None:
                self.store.cycle(self.id, time.time(), ack=self._pending_ack)
                self._pending_ack = None
            if self._blocking is not None:
                self._blocking.close()
                self.store.return_landed(self.id, self._blocking.queue)
            for queue, payload in self.store.inflight(self.id).items():
                self.store.requeue(self.id, queue, payload, count_delivery=False)
            self.store.unregister_worker(self.id)
            self.store.forget_inflight_owner(self.id)
            log.info("Worker %s exiting", self.id)
            return True
        except RETRYABLE_ERRORS as exc:
            log.error(
                "Worker %s could not unregister: %s unreachable (%s); a later prune recovers it",
                self.id,
                self.redis_label,
                exc,
            )
            return False
        finally:
            self._wakeups.close()
            if self._blocking is not None:
                self._blocking.close()
            self.hooks.run_logged("worker_exit")

    def _loop(self) -> None:
        poll = FIRST_POLL
        busy = False
        while True:
            self._handle_signals(self._inbox.drain())
            self._check_parent()
            if self._stopping:
                return
            if self._paused:
                set_title("Paused")
                if self._pending_ack is not None:  # the finished job is acknowledged first
                    ack = self._pending_ack
                    self._retry_redis("ack", functools.partial(self._acknowledge, ack))
                if self._blocking is not None:  # a job the blocking move took goes back for others
                    self._retry_redis(
                        "return",
                        functools.partial(self.store.return_landed, self.id, self._blocking.queue),
                    )
                self._wait(self.settings.heartbeat_interval)
                continue
            reply = self._retry_redis("reserve", self._reserve)
            if reply is None and self._stopping:
                return
            if isinstance(reply, Reservation):
                busy = True
                poll = FIRST_POLL
                self._pending_ack = self._process(reply)
                self.jobs_done += 1
                if self.settings.max_jobs and self.jobs_done >= self.settings.max_jobs:
                    log.info("Worker %s: %d jobs done (max); exiting", self.id, self.jobs_done)
                    self._stopping = True
                continue
            if reply == PAUSED:
                set_title("Paused (pause-all-workers)")
                self._wait(max(self.settings.interval, FIRST_POLL))
                continue
            if busy:
                busy = False
                self.hooks.run_logged("queue_empty")
            if self.settings.burst:
                log.info("Worker %s: queues empty, burst mode exits", self.id)
                return
            set_title(f"Waiting for {self.selector}")
            self._wait_for_work(poll)
            poll = min(poll * 2, max(self.settings.interval, FIRST_POLL))

    # --- reserving -----------------------------------------------------------------------------

    def _queues(self, refresh: bool) -> list[str]:
        """The concrete queues, in priority order: fixed for a list of names, re-read from Redis
        at most once a second for ``*`` and globs."""
        if not self.selector.is_dynamic:
            return self._static_queues
        stamp, cached = self._queues_cache
        now = time.monotonic()
        if refresh or now - stamp > QUEUE_REFRESH:
            cached = self.selector.resolve(self.store.queue_names())
            self._queues_cache = (now, cached)
        return cached

    def _reserve(self) -> Reservation | str | None:
        ack, self._pending_ack = self._pending_ack, None
        self._tokens += 1
        token = f"{self._nonce}.{self._tokens}"
        try:
            return self.store.cycle(
                self.id, time.time(), ack=ack, queues=self._queues(False), token=token
            )
        except RETRYABLE_ERRORS:
            self._pending_ack = ack
            raise

    def _acknowledge(self, ack: Ack) -> None:
        self.store.cycle(self.id, time.time(), ack=ack)
        self._pending_ack = None

    def _reconcile_after_outage(self) -> None:
        """After a lost reply, learn from the in-flight hash what the server actually did.

        The hash carries the token of the reservation it holds. If that is still the token of the
        job we were acknowledging, the acknowledgement was not applied (the retried call applies
        it). Otherwise it was, and whatever the hash holds now was reserved for us by a call whose
        reply never came: put it back at the front of its queue.
        """
        if self._registered and not self.store.is_registered(self.id):
            log.warning(
                "Worker %s: registration lost (Redis restarted?); registering again", self.id
            )
            self.store.register_worker(self.id, time.time())
        token, held = self.store.held(self.id)
        ack = self._pending_ack
        if ack is not None and ack.reservation.token and token == ack.reservation.token:
            return
        self._pending_ack = None
        for queue, payload in held.items():
            self.store.requeue(self.id, queue, payload, count_delivery=False)

    def _wait_for_work(self, timeout: float) -> None:
        """Sleep until a job may be there, a signal arrives, or ``timeout`` passes."""
        if self._blocking is not None:
            # the server's timeout ends the command before our own deadline (its + 1 s): only a
            # signal abandons it
            block = min(timeout, max(self._heartbeat.seconds_left(), 0.01))
            waited = self._blocking.wait(block, self._inbox.wait)
            self._heartbeat.beat_if_due()
            if waited:
                return
            if self._blocking.unsupported:
                self._blocking = None
        if self._wakeups.pending():
            return
        fd = self._wakeups.fileno()
        self._wait(timeout, [] if fd is None else [fd])
        self._wakeups.pending()

    def _wait(self, timeout: float, fds: list[int] | None = None) -> list[int]:
        """Block on signals and ``fds``, heartbeating on time; returns the readable fds."""
        readable = self._inbox.wait(min(timeout, self._heartbeat.seconds_left()), fds or [])
        self._heartbeat.beat_if_due()
        return readable

    # --- running a job -------------------------------------------------------------------------

    def _process(self, res: Reservation) -> Ack | None:
        """Run a reserved job; return the acknowledgement (None if the job was put back)."""
        try:
            payload = protocol.decode_payload(res.payload)
            spec = self.registry.resolve(payload.class_name)
        except PyresqueError as exc:
            log.error("job from %s rejected: %s", res.queue, exc)
            return self._failed(res, Failure(protocol.exception_name(exc), str(exc)))
        job = Job(res.queue, payload, spec)
        log.debug("got: %s", job)
        self._operator_kill = False
        if self.settings.fork_per_job:
            return self._run_forked(job, res)
        return self._run_in_process(job, res)

    def _failed(self, res: Reservation, failure: Failure, count_failed: bool = True) -> Ack:
        record = protocol.failure_record(res.payload, failure, self.id, res.queue, time.time())
        return Ack(res, record, count_failed)

    def _ack_for(self, job: Job, res: Reservation, result: Result) -> Ack | None:
        if result.outcome is Outcome.INTERRUPTED:
            log.info("job interrupted by shutdown, put back: %s", job)
            self._retry_redis("requeue", lambda: self._put_back(res))
            return None
        if result.outcome is Outcome.FAILED and result.failure is not None:
            log.info("failed: %s: %s: %s", job, result.failure.exception, result.failure.error)
            return self._failed(res, result.failure)
        log.debug("done: %s", job)
        return Ack(res)

    def _perform_with_job_hooks(self, job: Job) -> Result:  # in the job's process
        self.hooks.run("before_job", job)
        try:
            return perform(job.spec, job.args)
        finally:
            self.hooks.run_logged("after_job", job)

    def _put_back(self, res: Reservation) -> str:
        return self.store.requeue(self.id, res.queue, res.payload, count_delivery=False)

    def _run_forked(self, job: Job, res: Reservation) -> Ack | None:
        try:
            self.hooks.run("before_fork", job)
        except Exception as exc:
            log.exception("before_fork hook failed for %s", job)
            return self._failed(res, Failure.from_exception(exc))
        started = int(time.time())

        def run_in_child() -> Result:  # in the child
            set_title(f"Processing {job.queue} since {started} [{job.payload.class_name}]")
            self.hooks.run("after_fork", job)  # a TermException here puts the job back
            return self._perform_with_job_hooks(job)

        try:
            handle = job_child.spawn(run_in_child, WORKER_SIGNALS, freeze=self.settings.gc_freeze)
        except OSError as exc:
            log.error("fork failed (%s); job put back", exc)
            self._retry_redis("requeue", lambda: self._put_back(res))
            self._wait(1.0)
            return None
        set_title(f"Forked {handle.pid} at {started}")
        try:
            status = self._supervise(handle)
            result = handle.result()
        finally:
            handle.close()
        if result is not None:
            return self._ack_for(job, res, result)
        return self._ack_for_dirty_exit(job, res, handle, status)

    def _supervise(self, handle: job_child.JobChild) -> int:
        """Wait for the job child while heartbeating and acting on signals; returns its status."""
        interrupted_at = 0.0
        fds = [handle.result_fd]
        while True:
            self._handle_signals(self._inbox.drain(), handle)
            pid, status = os.waitpid(handle.pid, os.WNOHANG)
            if pid:
                return status
            now = time.monotonic()
            timeout = 1.0
            if self._stop_now is not None and not handle.killed:
                if not self.settings.term_child:
                    handle.kill()
                elif not handle.interrupted:
                    wait = self._stop_now + self.settings.pre_shutdown_timeout - now
                    if wait <= 0:
                        handle.interrupt()
                        interrupted_at = now
                    else:
                        timeout = min(timeout, wait)
                else:
                    wait = interrupted_at + self.settings.term_timeout - now
                    if wait <= 0:
                        log.warning("job child %d ignored TermException; killing it", handle.pid)
                        handle.kill()
                    else:
                        timeout = min(timeout, wait)
            if handle.result_fd in self._wait(timeout, fds) and not handle.read_available():
                fds = []  # end of file: the child is exiting; SIGCHLD wakes us

    def _ack_for_dirty_exit(
        self, job: Job, res: Reservation, handle: job_child.JobChild, status: int
    ) -> Ack | None:
        if os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            message = (
                f"Child process received unhandled signal pid {handle.pid} "
                f"{signal_name(signum)} (signal {signum})"
            )
        else:
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                return Ack(res)  # the job ended its process itself, after doing its work
            message = f"Child process exited with status {code} before reporting a result"
        failure = Failure(protocol.DIRTY_EXIT, message)
        if handle.killed and self._operator_kill:
            log.warning("job killed on request (USR1): %s", job)
            run_failure_hooks(job.spec, DirtyExit(message), job.args)
            return self._failed(res, failure, count_failed=False)
        if (handle.killed or handle.interrupted) and self._stop_now is not None:
            log.info("job stopped by shutdown, put back: %s", job)
            self._retry_redis("requeue", lambda: self._put_back(res))
            return None
        if os.WIFSIGNALED(status):
            record = protocol.failure_record(res.payload, failure, self.id, res.queue, time.time())
            outcome = self._retry_redis(
                "requeue",
                lambda: self.store.requeue(
                    self.id,
                    res.queue,
                    res.payload,
                    count_delivery=True,
                    max_deliveries=self.settings.max_deliveries,
                    failure_record=record,
                ),
            )
            log.warning("%s: %s; %s", message, job, outcome)
            if outcome == "failed":
                run_failure_hooks(job.spec, DirtyExit(message), job.args)
            return None
        run_failure_hooks(job.spec, DirtyExit(message), job.args)
        return self._failed(res, failure, count_failed=False)

    def _run_in_process(self, job: Job, res: Reservation) -> Ack | None:
        set_title(f"Processing {job.queue} since {int(time.time())} [{job.payload.class_name}]")
        assert self._in_process is not None
        result = self._in_process.run(job.spec, job.args, self.hooks, job)
        if self._in_process.killed:  # recorded as fork mode records it: Ruby's name, not counted
            log.warning("job killed on request (USR1): %s", job)
            failure = Failure(protocol.DIRTY_EXIT, "Job killed on request (USR1)")
            return self._failed(res, failure, count_failed=False)
        return self._ack_for(job, res, result)

    # --- signals -------------------------------------------------------------------------------

    def _handle_signals(self, signums: list[int], handle: job_child.JobChild | None = None) -> None:
        for signum in signums:
            if signum == signal.SIGCHLD:
                continue
            log.info("%s received", signal_name(signum))
            if signum == signal.SIGQUIT or (
                signum == signal.SIGTERM and self.settings.graceful_term
            ):
                self._stopping = True
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self._stopping = True
                if signum == signal.SIGINT and self._stop_now is not None and handle is not None:
                    handle.kill()  # a second Ctrl-C: now (a repeated TERM is the platform's echo)
                self._stop_now = self._stop_now or time.monotonic()
            elif signum == signal.SIGUSR1:
                if handle is not None:
                    self._operator_kill = True
                    handle.kill()
            elif signum == signal.SIGUSR2 and not self._paused:
                self.hooks.run_logged("before_pause", self)
                self._paused = True
            elif signum == signal.SIGCONT and self._paused:
                self._paused = False
                self.hooks.run_logged("after_pause", self)

    def _check_parent(self) -> None:
        if self.parent_pid is not None and os.getppid() != self.parent_pid and not self._stopping:
            log.warning("Worker %s: pool master %d is gone; exiting", self.id, self.parent_pid)
            self._stopping = True

    # --- Redis outages -------------------------------------------------------------------------

    def _retry_redis(self, what: str, action: Callable[[], T]) -> T | None:
        """Run ``action``, retrying with backoff while Redis is unreachable.

        Returns None without running it if a stop signal arrives during an outage.
        """
        delay = 0.1
        outage = False
        while True:
            try:
                if outage:
                    self._reconcile_after_outage()
                result = action()
                if outage:
                    log.warning("%s reachable again; resuming", self.redis_label)
                return result
            except RETRYABLE_ERRORS as exc:
                outage = True
                log.error(
                    "%s: %s unreachable or refusing (%s: %s); retrying in %.1fs",
                    what,
                    self.redis_label,
                    type(exc).__name__,
                    exc,
                    delay,
                )
            self._wait(delay)
            self._handle_signals(self._inbox.drain())
            if self._stopping and what in ("start", "reserve"):
                return None
            delay = min(delay * 2, MAX_BACKOFF)
