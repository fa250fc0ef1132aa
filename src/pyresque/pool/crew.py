"""The master's workers: spawn, signal, stop, kill and reap them through the process layer, and
clean up after the ones that die.

The master decides what should happen (:func:`~pyresque.pool.plan.plan`, the governor, a signal);
:class:`Crew` does it and keeps the facts: which workers live, since when, which were asked to stop,
which were killed and why.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
from collections.abc import Callable, Iterable

from pyresque.pool.clients import PoolClients
from pyresque.pool.hooks import PoolHooks
from pyresque.pool.janitor import Janitor
from pyresque.pool.memory import OomWatch
from pyresque.pool.options import PoolOptions
from pyresque.pool.plan import Backoff, Child, Plan
from pyresque.pool.sizing import Retirements
from pyresque.pool.spawn import worker_factory
from pyresque.pool.system import ProcessLayer
from pyresque.pool.worker_process import WorkerProcess, describe_status
from pyresque.settings import WorkerSettings
from pyresque.worker.deadline import JOB_DEADLINE, JobDeadline
from pyresque.worker.loop import Worker

log = logging.getLogger("pyresque.pool")

# After an in-process job's deadline, the worker's own watchdog fails the job and leaves when it
# can (its record says more); the master kills the worker only this much later.
OVERDUE_MARGIN = 0.5


class Crew:
    """The live workers of one master, by pid."""

    def __init__(
        self,
        options: PoolOptions,
        worker_settings: WorkerSettings,
        hooks: PoolHooks,
        processes: ProcessLayer,
        janitor: Janitor,
        *,
        clients: PoolClients,
        clock: Callable[[], float],
    ) -> None:
        self.options = options
        self.worker_settings = worker_settings
        self.hooks = hooks
        self.processes = processes
        self.janitor = janitor
        self.clients = clients
        self.clock = clock
        self.workers: dict[int, WorkerProcess] = {}
        self.backoff = Backoff()
        self.last_spawn = -1e9
        self.unexpected_deaths = 0
        self.oom = OomWatch()

    def children(self) -> list[Child]:
        return [w.as_child() for w in self.workers.values()]

    # --- signalling ----------------------------------------------------------------------------

    def signal_all(self, signum: int, include_stopping: bool = True) -> None:
        now = self.clock()
        for w in list(self.workers.values()):
            if w.stopping_since is not None and not include_stopping:
                continue
            self.processes.signal(w.pid, signum)
            if signum in (signal.SIGTERM, signal.SIGQUIT) and w.stopping_since is None:
                w.stopping_since = now

    def stop(self, w: WorkerProcess, now: float) -> None:
        """Ask a worker to finish its job and leave (QUIT), once."""
        self.processes.signal(w.pid, signal.SIGQUIT)
        w.stopping_since = now

    def kill_all(self) -> None:
        for w in list(self.workers.values()):
            self.kill(w)

    def kill(self, w: WorkerProcess) -> None:
        """SIGKILL a worker and its job child (its process group)."""
        w.killed_at = self.clock()
        self.processes.kill(w.pid, not self.options.single_process_group)

    # --- acting on decisions -------------------------------------------------------------------

    def apply(self, the_plan: Plan, now: float, generation: int) -> None:
        """Stop, kill and spawn as planned (spawns spaced by ``--spawn-delay``)."""
        for pid in the_plan.stop:
            w = self.workers[pid]
            log.info("stopping worker %d [%s]", pid, w.group)
            self.stop(w, now)
        for pid in the_plan.kill:
            w = self.workers[pid]
            if w.killed_at is None:
                log.warning(
                    "worker %d [%s] still running %.0fs after stop; killing",
                    pid,
                    w.group,
                    now - (w.stopping_since or now),
                )
                self.kill(w)
        for group in the_plan.spawn:
            delay = self.options.spawn_delay
            if delay and now - self.last_spawn < delay:
                break
            self.spawn(group, generation)

    def retire(self, decision: Retirements, now: float) -> None:
        """Act on the memory governor: retire workers after their job, kill jobs at once."""
        for pid in decision.stop:
            w = self.workers.get(pid)
            if w is not None and w.stopping_since is None:
                self.stop(w, now)
                w.for_memory = True
        for pid in decision.kill_jobs:
            jobs = self.processes.children(pid)
            for job_pid in jobs:
                self.processes.signal(job_pid, signal.SIGKILL)
            if not jobs and pid in self.workers:
                self.workers[pid].for_memory = True
                self.kill(self.workers[pid])  # it runs its job in-process

    def spawn(self, group: str, generation: int) -> None:
        if self.options.gc_freeze:
            gc.freeze()  # what the master loaded stays out of the workers' collectors
        deadline = JobDeadline()
        make_worker = worker_factory(self.options, self.worker_settings, group, self.clients)

        def make_worker_watched() -> Worker:  # in the child
            JOB_DEADLINE.replace(deadline)
            return make_worker()

        try:
            pid, ready_fd = self.processes.spawn(make_worker_watched)
        except OSError as exc:
            deadline.close()
            log.error("fork failed for [%s]: %s; retrying with backoff", group, exc)
            now = self.clock()
            self.backoff.record_exit(Child(0, group, generation, now, ready=False), now)
            return
        now = self.clock()
        self.last_spawn = now
        self.workers[pid] = WorkerProcess(
            pid, group, generation, now, ready_fd=ready_fd, deadline=deadline
        )
        log.info("spawned worker %d for [%s]", pid, group)
        self.hooks.run_logged("after_spawn", self.workers[pid], pid)

    def end_overdue_jobs(self, now: float) -> None:
        """Kill each worker whose in-process job is past its time limit and the grace: the worker
        could not end it (C code holding the GIL stops its signal handler and its watchdog), and
        its slot must be free by then. Its job fails as a timeout once it is reaped."""
        for w in self.workers.values():
            limit = w.deadline.overdue(now - OVERDUE_MARGIN) if w.deadline is not None else None
            if limit is None or w.killed_at is not None:
                continue
            log.warning(
                "worker %d [%s]: its job ran past its time limit of %gs and the grace, and the "
                "worker did not end it; killing the worker",
                w.pid,
                w.group,
                limit,
            )
            w.timed_out = limit
            self.kill(w)

    def next_deadline(self) -> float | None:
        """When the soonest running in-process job will be overdue (for the master's sleep)."""
        due = [
            d + OVERDUE_MARGIN
            for w in self.workers.values()
            if w.deadline and (d := w.deadline.due())
        ]
        return min(due, default=None)

    # --- deaths --------------------------------------------------------------------------------

    def reap(self, shutting_down: bool) -> list[WorkerProcess]:
        """Reap every exited child; returns the workers among them."""
        gone = []
        for pid, status in self.processes.reap():
            w = self.workers.pop(pid, None)
            if w is not None:  # else an orphaned job child, reparented to us: nothing more to do
                self._reaped(w, status, shutting_down)
                gone.append(w)
        return gone

    def _reaped(self, w: WorkerProcess, status: int, shutting_down: bool) -> None:
        w.read_ready()  # a byte it wrote just before dying still counts
        w.close_ready_fd()
        if w.deadline is not None:
            w.deadline.close()
        now = self.clock()
        lifetime = now - w.started_at
        text = describe_status(status, self._cause(w, status))
        clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        expected = w.stopping_since is not None or shutting_down
        level = logging.INFO if clean or expected else logging.WARNING
        log.log(level, "reaped worker %d [%s]: %s after %.1fs", w.pid, w.group, text, lifetime)
        if not clean and not expected:
            self.unexpected_deaths += 1  # the dashboard's "restarts"
        if not clean:
            self._kill_orphaned_jobs(w)
            # A worker the master killed (shutdown deadline, kill timeout) did not die of its job,
            # unless memory was why: a job too big for the pool must not be retried for ever.
            count = w.killed_at is None or w.for_memory
            if w.timed_out is not None:
                self.janitor.job_timed_out(w.worker_id, w.timed_out)
            else:
                self.janitor.worker_died(w.worker_id, text, count_delivery=count)
        # a clean exit (max jobs reached, a signal) is no crash; only unclean ones back off
        if not clean and not shutting_down and self.backoff.record_exit(w.as_child(), now):
            log.warning(
                "[%s] worker died %.1fs after start; next spawn in %.1fs (backoff)",
                w.group,
                lifetime,
                self.backoff.not_before()[w.group] - now,
            )
        self.hooks.run_logged("child_exit", w, status)

    def _cause(self, w: WorkerProcess, status: int) -> str:
        """Why a worker was SIGKILLed, when someone can say: never a guess."""
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            return ""
        if w.killed_at is not None:
            return "by the memory governor" if w.for_memory else "by the master"
        if self.oom.claim():
            return "by the kernel's OOM killer (the cgroup's oom_kill count went up)"
        return ""

    def _kill_orphaned_jobs(self, w: WorkerProcess) -> None:
        """A dead worker's job child must not run on while its job is put back."""
        if not self.options.single_process_group:
            self.processes.kill(w.pid, with_group=True)  # the group outlives its leader
            return
        # one process group for all: the orphan was reparented to us (we are the subreaper)
        for pid in self.processes.children(os.getpid()):
            if pid not in self.workers:
                self.processes.signal(pid, signal.SIGKILL)

    def observe_backoff(self, children: Iterable[Child], now: float) -> None:
        for group in self.backoff.observe(list(children), now):
            log.info("[%s] workers stay up again; backoff reset", group)
