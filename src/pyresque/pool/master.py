"""The pool master: one loop that waits for signals or a tick, dispatches each signal to a
``handle_<name>`` method, reaps, reconciles the workers with the plan, and sets its title.

Signal handlers only record (:class:`~pyresque.signals.SignalInbox`); every decision about which
workers to start, stop or kill is made by the pure :func:`~pyresque.pool.plan.plan`.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from pyresque.connection import connect
from pyresque.errors import ConfigError
from pyresque.keys import Keys
from pyresque.pool.children import (
    WorkerProcess,
    become_subreaper,
    describe_status,
    kill_worker,
    reap_children,
    signal_pid,
)
from pyresque.pool.config import AUTO, LoaderPoller, PoolConfig
from pyresque.pool.daemon import reopen_logs
from pyresque.pool.governor import MemoryGovernor, WorkerView
from pyresque.pool.hooks import PoolHooks
from pyresque.pool.janitor import Janitor
from pyresque.pool.memory import child_pids, format_mb, read_usage
from pyresque.pool.options import PoolOptions, TermMode
from pyresque.pool.plan import Backoff, Child, plan
from pyresque.pool.process import SpawnOptions, spawn_worker
from pyresque.pool.source import NoUsableConfig
from pyresque.procname import set_raw_title
from pyresque.queues import QueueSelector
from pyresque.settings import WorkerSettings
from pyresque.signals import SignalInbox, signal_name
from pyresque.store import Store
from pyresque.worker import Worker

log = logging.getLogger("pyresque.pool")

MASTER_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGWINCH,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCONT,
    signal.SIGIO,
    signal.SIGCHLD,
    signal.SIGTTIN,
    signal.SIGTTOU,
)
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)
TICK = 1.0


@dataclass
class Shutdown:
    """A shutdown in progress: how it was asked for and when the master must be gone."""

    signal_name: str
    deadline: float | None  # monotonic; None = wait for the workers however long they take
    started: float = field(default_factory=time.monotonic)


class Master:
    """Supervises worker processes per queue group."""

    def __init__(
        self,
        options: PoolOptions,
        load_config: Callable[[], PoolConfig],
        hooks: PoolHooks,
        worker_settings: WorkerSettings,
        *,
        poller: LoaderPoller | None = None,
        governor: MemoryGovernor | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``load_config`` (re)reads the config; ``poller``, for a custom loader, says when to
        call it again between HUPs."""
        self.options = options
        self._load_config = load_config
        self.hooks = hooks
        self.worker_settings = worker_settings
        self.clock = clock
        self.poller = poller
        self.governor = governor
        self.config = PoolConfig(groups={}, source="(none)")
        self.workers: dict[int, WorkerProcess] = {}
        self.generation = 0
        self.delta = 0  # TTIN/TTOU: workers added to (removed from) every group until HUP
        self.backoff = Backoff()
        self.shutdown: Shutdown | None = None
        self.winched = False
        self.inbox = SignalInbox(MASTER_SIGNALS)
        self.janitor = Janitor(options.redis_url, options.namespace, worker_settings, clock)
        self._last_spawn = -1e9
        self._title = ""
        self._wake_at: float | None = None

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until shut down; returns the exit code."""
        self.inbox.install()
        become_subreaper()
        self.config = self._load_config()
        if self.config.is_empty:
            log.info("Pool is empty (%s)", self.config.source)
        log.info("started; config %s: %s", self.config.source, self._describe_groups())
        while True:
            try:
                for signum in self.inbox.drain():
                    self.dispatch(signum)
                self.reap()
                if self.shutdown is not None and not self.workers:
                    self._exit_report()
                    return 0
                self.reconcile()
                self.set_title()
                self.wait()
            except Exception:  # one bad tick (a hook, the system, a bug) must not end the pool
                log.exception("master loop failed; carrying on")
                self.inbox.wait(TICK)

    def _exit_report(self) -> None:
        assert self.shutdown is not None
        undone = self.janitor.left_undone()
        if undone:
            log.warning(
                "%s: no time left to clean up after %s; the next prune recovers their jobs",
                self.shutdown.signal_name,
                ", ".join(undone),
            )
        log.info("%s: all workers gone; exiting", self.shutdown.signal_name)

    def wait(self) -> None:
        """Sleep until a signal, a worker reporting ready, or the next deadline."""
        waiting = {w.ready_fd: w for w in self.workers.values() if w.ready_fd is not None}
        for fd in self.inbox.wait(self.next_timeout(), list(waiting)):
            waiting[fd].read_ready()

    def dispatch(self, signum: int) -> None:
        name = signal_name(signum).removeprefix("SIG").lower()
        handler = getattr(self, f"handle_{name}", None)
        if handler is not None:
            handler()

    def next_timeout(self) -> float:
        now = self.clock()
        timeout = TICK
        if self.shutdown is not None and self.shutdown.deadline is not None:
            timeout = min(timeout, self.shutdown.deadline - now)
        if self._wake_at is not None:
            timeout = min(timeout, self._wake_at - now)
        if self.poller is not None and (at := self.poller.next_at()) is not None:
            timeout = min(timeout, at - now)
        if self.governor is not None and self.shutdown is None:
            timeout = min(timeout, self.governor.next_at() - now)
        if self.options.spawn_delay:
            timeout = min(timeout, self._last_spawn + self.options.spawn_delay - now)
        return max(timeout, 0.01)

    # --- signals -------------------------------------------------------------------------------

    def handle_term(self) -> None:
        self._shutdown_signal("TERM")

    def handle_int(self) -> None:
        self._shutdown_signal("INT")

    def _shutdown_signal(self, name: str) -> None:
        if self.shutdown is not None and name in ("TERM", "INT"):
            log.warning("%s during shutdown: killing every worker now", name)
            self.kill_all()
            return
        mode = self.options.term_mode if name == "TERM" else TermMode.DEADLINE
        if mode is TermMode.GRACEFUL_WAIT:
            self.handle_quit()
            return
        if mode in (TermMode.GRACEFUL, TermMode.IMMEDIATE):
            signum = signal.SIGQUIT if mode is TermMode.GRACEFUL else signal.SIGTERM
            log.info("%s: signalling workers with %s and exiting", name, signal_name(signum))
            self.signal_all(signum)
            self.workers.clear()
            self.shutdown = Shutdown(name, deadline=self.clock())
            return
        # kill what is left a little before the deadline, so reaping and clean-up fit under it;
        # clean-up ends before the deadline whatever Redis does (the next prune does the rest)
        margin = min(1.0, self.options.shutdown_timeout * 0.1)
        exit_by = self.clock() + self.options.shutdown_timeout
        deadline = exit_by - margin
        self.janitor.finish_by(exit_by - margin / 2)
        log.info(
            "%s: shutting down within %.1fs (workers interrupt their jobs and put them back)",
            name,
            self.options.shutdown_timeout,
        )
        self.shutdown = Shutdown(name, deadline)
        self.signal_all(signal.SIGTERM)

    def handle_quit(self) -> None:
        if self.shutdown is not None:
            return
        log.info("QUIT: waiting for every worker to finish its job")
        self.shutdown = Shutdown("QUIT", deadline=None)
        self.signal_all(signal.SIGQUIT)

    def handle_hup(self) -> None:
        log.info("HUP: reopening logs, reloading config")
        try:
            reopen_logs(self.options.stdout_path, self.options.stderr_path)
        except OSError as exc:
            log.error("HUP: cannot reopen log files: %s", exc)
        if not self.reload_config():
            return
        log.info("HUP: replacing every worker (rolling, one per group at a time)")
        if self.poller is not None:
            self.poller.reset()
            self.poller.record_call(self.clock())
        self.winched = False
        self.delta = 0
        self.generation += 1

    def handle_winch(self) -> None:
        if not self.options.handle_winch:
            return
        log.info("WINCH: stopping every worker until HUP")
        self.winched = True

    def handle_ttin(self) -> None:
        self.delta += 1
        log.info("TTIN: one more worker per group: %s", self._describe_desired())

    def handle_ttou(self) -> None:
        largest = max(self._configured().values(), default=0)
        if self.delta <= -largest:
            log.info("TTOU: every group is already at 0 workers")
            return
        self.delta -= 1
        log.info("TTOU: one worker less per group: %s", self._describe_desired())

    def handle_usr1(self) -> None:
        self._forward(signal.SIGUSR1)

    def handle_usr2(self) -> None:
        self._forward(signal.SIGUSR2)

    def handle_cont(self) -> None:
        self._forward(signal.SIGCONT)

    def handle_io(self) -> None:
        log.info("INFO: %d workers, generation %d", len(self.workers), self.generation)
        busy = self.janitor.busy_records([w.worker_id for w in self.workers.values()])
        for w in sorted(self.workers.values(), key=lambda w: w.pid):
            state = "stopping" if w.stopping_since is not None else "running"
            usage = read_usage(w.pid)
            jobs = [read_usage(c) for c in child_pids(w.pid)]
            uss = (usage.uss if usage else 0) + sum(u.uss for u in jobs if u)
            log.info(
                "INFO: worker %d [%s] %s, up %.0fs, %s USS, %s",
                w.pid,
                w.group,
                state,
                self.clock() - w.started_at,
                format_mb(uss),
                f"working on {busy[w.worker_id]}" if w.worker_id in busy else "idle",
            )
        self.hooks.run_logged("siginfo", self)

    def _forward(self, signum: int) -> None:
        log.info("%s: forwarding to %d workers", signal_name(signum), len(self.workers))
        self.signal_all(signum, include_stopping=False)

    # --- processes -----------------------------------------------------------------------------

    def signal_all(self, signum: int, include_stopping: bool = True) -> None:
        now = self.clock()
        for w in list(self.workers.values()):
            if w.stopping_since is not None and not include_stopping:
                continue
            signal_pid(w.pid, signum)
            if signum in (signal.SIGTERM, signal.SIGQUIT) and w.stopping_since is None:
                w.stopping_since = now

    def kill_all(self) -> None:
        for w in list(self.workers.values()):
            self.kill(w)

    def kill(self, w: WorkerProcess) -> None:
        """SIGKILL a worker and its job child (its process group)."""
        w.killed_at = self.clock()
        kill_worker(w.pid, not self.options.single_process_group)

    def spawn(self, group: str) -> None:
        if self.options.gc_freeze:
            gc.freeze()  # what the master loaded stays out of the workers' collectors
        settings = replace(self.worker_settings, queues=group)
        options = self.options
        master_pid = os.getpid()

        def make_worker() -> Worker:  # in the child
            if not options.preload:
                from pyresque.apps import import_apps

                import_apps(options.apps)
            store = Store(connect(options.redis_url), Keys(options.namespace))
            from pyresque.client import configure

            configure(options.redis_url, namespace=options.namespace)
            return Worker(
                store,
                QueueSelector.parse(group),
                settings,
                redis_label=options.redis_label,
                parent_pid=master_pid,
            )

        try:
            pid, ready_fd = spawn_worker(
                make_worker,
                self.hooks,
                SpawnOptions(own_process_group=not options.single_process_group),
                MASTER_SIGNALS,
                in_child=self.inbox.close_fds,
            )
        except OSError as exc:
            log.error("fork failed for [%s]: %s; retrying with backoff", group, exc)
            now = self.clock()
            self.backoff.record_exit(Child(0, group, self.generation, now, ready=False), now)
            return
        now = self.clock()
        self._last_spawn = now
        self.workers[pid] = WorkerProcess(pid, group, self.generation, now, ready_fd=ready_fd)
        log.info("spawned worker %d for [%s]", pid, group)
        self.hooks.run_logged("after_spawn", self.workers[pid], pid)

    def reap(self) -> None:
        for pid, status in reap_children():
            w = self.workers.pop(pid, None)
            if w is not None:  # else an orphaned job child, reparented to us: nothing more to do
                self._reaped(w, status)

    def _reaped(self, w: WorkerProcess, status: int) -> None:
        w.read_ready()  # a byte it wrote just before dying still counts
        w.close_ready_fd()
        now = self.clock()
        lifetime = now - w.started_at
        text = describe_status(status)
        clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        expected = w.stopping_since is not None or self.shutdown is not None
        level = logging.INFO if clean or expected else logging.WARNING
        log.log(level, "reaped worker %d [%s]: %s after %.1fs", w.pid, w.group, text, lifetime)
        if not clean:
            self._kill_orphaned_jobs(w)
            # A worker the master killed (shutdown deadline, kill timeout) did not die of its job,
            # unless memory was why: a job too big for the pool must not be retried for ever.
            count = w.killed_at is None or w.for_memory
            self.janitor.worker_died(w.worker_id, text, count_delivery=count)
        # a clean exit (max jobs reached, a signal) is no crash; only unclean ones back off
        if not clean and self.shutdown is None and self.backoff.record_exit(w.as_child(), now):
            log.warning(
                "[%s] worker died %.1fs after start; next spawn in %.1fs (backoff)",
                w.group,
                lifetime,
                self.backoff.not_before()[w.group] - now,
            )
        self.hooks.run_logged("child_exit", w, status)

    # --- reconciling ---------------------------------------------------------------------------

    def desired(self) -> Mapping[str, int]:
        """Workers wanted per group now: the config plus the TTIN/TTOU delta, never below 0."""
        if self.shutdown is not None or self.winched:
            return {}
        return {group: max(0, count + self.delta) for group, count in self._configured().items()}

    def _configured(self) -> dict[str, int]:
        return {
            group: self.auto_count(group) if count is AUTO else count
            for group, count in self.config.groups.items()
        }

    def _describe_desired(self) -> str:
        counts = ", ".join(f"{g}: {n}" for g, n in self.desired().items()) or "no groups"
        return f"{counts} ({self.delta:+d} on the config until HUP)"

    def auto_count(self, group: str) -> int:
        """Workers for a group whose count is ``auto``: as many as fit, by the governor."""
        return self.governor.target(group) if self.governor is not None else 1

    def _kill_orphaned_jobs(self, w: WorkerProcess) -> None:
        """A dead worker's job child must not run on while its job is put back."""
        if not self.options.single_process_group:
            kill_worker(w.pid, own_process_group=True)  # the group outlives its leader
            return
        # one process group for all: the orphan was reparented to us (we are the subreaper)
        for pid in child_pids(os.getpid()):
            if pid not in self.workers:
                signal_pid(pid, signal.SIGKILL)

    def govern_memory(self, now: float) -> None:
        """Sample memory when due; retire workers the governor names; kill jobs it must."""
        if self.governor is None:
            return
        views = [
            WorkerView(w.pid, w.group, w.stopping_since is not None) for w in self.workers.values()
        ]
        auto_groups = [g for g, c in self.config.groups.items() if c is AUTO]
        decision = self.governor.tick(now, views, auto_groups)
        for pid in decision.stop:
            w = self.workers.get(pid)
            if w is not None and w.stopping_since is None:
                signal_pid(pid, signal.SIGQUIT)
                w.stopping_since = now
                w.for_memory = True
        for pid in decision.kill_jobs:
            jobs = child_pids(pid)
            for job_pid in jobs:
                signal_pid(job_pid, signal.SIGKILL)
            if not jobs and pid in self.workers:
                self.workers[pid].for_memory = True
                self.kill(self.workers[pid])  # it runs its job in-process

    def reconcile(self) -> None:
        self.janitor.retry_pending()
        now = self.clock()
        if self.shutdown is None:
            self.janitor.prune(now)
        if self.shutdown is not None:
            deadline = self.shutdown.deadline
            if (
                deadline is not None
                and now >= deadline
                and any(w.killed_at is None for w in self.workers.values())
            ):
                log.warning(
                    "%s: deadline reached; killing %d workers",
                    self.shutdown.signal_name,
                    len(self.workers),
                )
                self.kill_all()
            return
        children = [w.as_child() for w in self.workers.values()]
        for group in self.backoff.observe(children, now):
            log.info("[%s] workers stay up again; backoff reset", group)
        self.poll_loader(now)
        self.govern_memory(now)
        the_plan = plan(
            self.desired(),
            children,
            now,
            generation=self.generation,
            kill_timeout=self.options.kill_timeout,
            not_before=self.backoff.not_before(),
        )
        for pid in the_plan.stop:
            w = self.workers[pid]
            log.info("stopping worker %d [%s]", pid, w.group)
            signal_pid(pid, signal.SIGQUIT)
            w.stopping_since = now
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
        self._wake_at = the_plan.wake_at
        for group in the_plan.spawn:
            if self.options.spawn_delay and now - self._last_spawn < self.options.spawn_delay:
                break
            self.spawn(group)

    def poll_loader(self, now: float) -> None:
        """Call the custom config loader when due; apply a changed result without a restart."""
        if self.poller is None or not self.poller.due(now):
            return
        self.poller.record_call(now)
        try:
            new = self._load_config()
        except ConfigError as exc:
            log.error("config loader: keeping the current config: %s", exc)
            return
        if dict(new.groups) != dict(self.config.groups):
            self.config = new
            log.info("config loader: %s", self._describe_groups())

    def reload_config(self) -> bool:
        """Load the config again; on error keep the old one (and the workers) and say why."""
        try:
            self.config = self._load_config()
        except NoUsableConfig as exc:
            log.warning("HUP: keeping the old config and workers: %s", exc)
            return False
        except ConfigError as exc:
            log.error("HUP: keeping the old config and workers: %s", exc)
            return False
        except Exception:  # a loader's own bug: keep running, and show where it broke
            log.exception("HUP: keeping the old config and workers: loading it failed")
            return False
        log.info("HUP: config %s: %s", self.config.source, self._describe_groups())
        return True

    def set_title(self) -> None:
        pids = sorted(self.workers)
        title = f"resque-pool-master[{self.options.app_name}]: managing {pids}"
        if title != self._title:
            set_raw_title(title)
            self._title = title

    def _describe_groups(self) -> str:
        return (
            ", ".join(f"{g}: {'auto' if c is AUTO else c}" for g, c in self.config.groups.items())
            or "no workers"
        )
