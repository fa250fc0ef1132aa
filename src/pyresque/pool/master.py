"""The pool master: one loop that waits for signals or a tick, dispatches each signal to a
``handle_<name>`` method, reaps, reconciles the workers with the plan, and sets its title.

Signal handlers only record (:class:`~pyresque.worker.signals.SignalInbox`); every decision about which
workers to start, stop or kill is made by the pure :func:`~pyresque.pool.plan.plan`, and how to shut
down by :func:`~pyresque.pool.shutdown.begin_shutdown`. Processes are spawned, signalled and reaped
through a :class:`~pyresque.pool.system.ProcessLayer`, so tests can drive the master with a fake
one and a stepped clock.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence

from pyresque.errors import ConfigError
from pyresque.pool.clients import PoolClients
from pyresque.pool.companions import Companion, describe_master, wall_to_monotonic
from pyresque.pool.config import AUTO, LoaderPoller, PoolConfig
from pyresque.pool.crew import Crew
from pyresque.pool.daemon import reopen_logs
from pyresque.pool.governor import MemoryGovernor, WorkerView
from pyresque.pool.hooks import PoolHooks
from pyresque.pool.janitor import Janitor
from pyresque.pool.options import PoolOptions
from pyresque.pool.plan import plan
from pyresque.pool.publisher import MasterView
from pyresque.pool.report import worker_lines
from pyresque.pool.scale import Scale
from pyresque.pool.shutdown import Shutdown, begin_shutdown
from pyresque.pool.source import reload_config
from pyresque.pool.spawn import SpawnOptions
from pyresque.pool.system import ProcessLayer, SystemProcesses
from pyresque.pool.worker_process import WorkerProcess, become_subreaper
from pyresque.settings import WorkerSettings
from pyresque.worker.procname import set_raw_title
from pyresque.worker.signals import SignalInbox, signal_name

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
TICK = 1.0


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
        processes: ProcessLayer | None = None,
        companions: Sequence[Companion] = (),
        clients: PoolClients | None = None,
    ) -> None:
        """``load_config`` (re)reads the config; ``poller``, for a custom loader, says when to
        call it again between HUPs; ``processes`` defaults to the real system calls; ``clients``
        to clients for the options' Redis URL and namespace."""
        self.options = options
        self._load_config = load_config
        self.hooks = hooks
        self.worker_settings = worker_settings
        self.clock = clock
        self.poller = poller
        self.governor = governor
        self.config = PoolConfig(groups={}, source="(none)")
        self.generation = 0
        self.scale = Scale()  # TTIN/TTOU
        self.shutdown: Shutdown | None = None
        self.winched = False
        self.inbox = SignalInbox(MASTER_SIGNALS, on_signal=self.note_arrival)
        self._shutdown_asked_at: float | None = None
        self._stop_pending = False  # TERM, INT or QUIT recorded, not yet handled
        self.companions = list(companions)  # the scheduler, the state publisher
        self._companions_wake: float | None = None
        self.started_wall = time.time()
        processes = processes or SystemProcesses(
            hooks,
            SpawnOptions(own_process_group=not options.single_process_group),
            MASTER_SIGNALS,
            self._close_in_child,
        )
        self.clients = clients or PoolClients(options.redis_url, options.namespace)
        self.janitor = Janitor(self.clients, worker_settings, clock, self.stop_pending)
        self.crew = Crew(
            options,
            worker_settings,
            hooks,
            processes,
            self.janitor,
            clients=self.clients,
            clock=clock,
        )
        self._title = ""
        self._wake_at: float | None = None

    @property
    def workers(self) -> dict[int, WorkerProcess]:
        """The live workers, by pid (hooks such as ``siginfo`` read them here)."""
        return self.crew.workers

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
                if self.step():
                    return 0
                self.set_title()
                self.wait()
            except Exception:  # one bad tick (a hook, the system, a bug) must not end the pool
                log.exception("master loop failed; carrying on")
                self.inbox.wait(TICK)

    def step(self) -> bool:
        """Handle what arrived, reap, reconcile; True once shut down and every worker is gone."""
        self._stop_pending = False  # before the drain: a signal after it sets it again
        for signum in self.inbox.drain():
            self.dispatch(signum)
        self.crew.reap(shutting_down=self.shutdown is not None)
        if self.shutdown is not None and not self.workers:
            undone = self.janitor.left_undone()
            if undone:
                log.warning(
                    "%s: no time left to clean up after %s; the next prune recovers their jobs",
                    self.shutdown.signal_name,
                    ", ".join(undone),
                )
            log.info("%s: all workers gone; exiting", self.shutdown.signal_name)
            for companion in self.companions:
                companion.close()
            return True
        self.reconcile()
        if self.shutdown is None:
            self.tick_companions()
        return False

    def stop_pending(self) -> bool:
        """Whether a TERM, INT or QUIT arrived that the loop has not handled yet.

        Why: each call to Redis in the loop (a prune, the scheduler's tick, a publish, the
        scheduler's wake-up subscription) may wait its whole timeout on a frozen Redis; run back
        to back after a TERM, they used up its deadline before the loop read it. So no call
        starts while one is pending: the loop goes round and handles it first."""
        return self._stop_pending

    def tick_companions(self) -> None:
        """Give the scheduler and the publisher their turn (not while a stop is pending); note
        when they want the next."""
        due = []
        for companion in self.companions:
            if self.stop_pending():
                return  # the next pass, after the signal, ticks them again (if still running)
            wake = companion.tick(time.time())
            if wake is not None:
                due.append(wake)
        self._companions_wake = wall_to_monotonic(min(due), self.clock) if due else None

    def wait(self) -> None:
        """Sleep until a signal, a worker reporting ready, a companion's socket, or the next
        deadline."""
        waiting = {w.ready_fd: w for w in self.workers.values() if w.ready_fd is not None}
        # a companion's fds may cost a call to Redis (the scheduler subscribes to its wake-ups)
        companions = [] if self.stop_pending() else self.companions
        theirs = {fd: c for c in companions for fd in c.fds()}
        for fd in self.inbox.wait(self.next_timeout(), [*waiting, *theirs]):
            if fd in waiting:
                waiting[fd].read_ready()
            else:
                theirs[fd].readable(fd)

    def view(self, now: float) -> MasterView:
        """What the state publisher shows of this master (``now``: wall-clock)."""
        return describe_master(self, now)

    def _close_in_child(self) -> None:
        """In a freshly forked worker: drop the master's signal pipe and companions' sockets."""
        self.inbox.close_fds()
        for companion in self.companions:
            companion.close_in_child()

    def note_arrival(self, signum: int) -> None:
        """In signal context: when TERM or INT arrived, which may be well before the loop sees
        it (the master may be inside a Redis call): the shutdown deadline counts from then; and
        that a stop is pending, so that no further call to Redis starts before it is handled."""
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self._stop_pending = True
        if signum in (signal.SIGTERM, signal.SIGINT) and self._shutdown_asked_at is None:
            self._shutdown_asked_at = self.clock()

    def dispatch(self, signum: int) -> None:
        name = signal_name(signum).removeprefix("SIG").lower()
        handler = getattr(self, f"handle_{name}", None)
        if handler is not None:
            handler()

    def next_timeout(self) -> float:
        now = self.clock()
        due = [now + TICK]
        if self.shutdown is not None and self.shutdown.deadline is not None:
            due.append(self.shutdown.deadline)
        if self._wake_at is not None:
            due.append(self._wake_at)
        if self._companions_wake is not None and self.shutdown is None:
            due.append(self._companions_wake)
        if self.poller is not None and (at := self.poller.next_at()) is not None:
            due.append(at)
        if self.governor is not None and self.shutdown is None:
            due.append(self.governor.next_at())
        if self.options.spawn_delay:
            due.append(self.crew.last_spawn + self.options.spawn_delay)
        if (overdue := self.crew.next_deadline()) is not None and self.shutdown is None:
            due.append(overdue)
        return max(min(due) - now, 0.01)

    # --- signals -------------------------------------------------------------------------------

    def handle_term(self) -> None:
        self._shutdown_signal("TERM")

    def handle_int(self) -> None:
        self._shutdown_signal("INT")

    def handle_quit(self) -> None:
        if self.shutdown is None:
            self._shutdown_signal("QUIT")

    def _shutdown_signal(self, name: str) -> None:
        if self.shutdown is not None:
            log.warning("%s during shutdown: killing every worker now", name)
            self.crew.kill_all()
            return
        now = self.clock()
        asked_at, self._shutdown_asked_at = self._shutdown_asked_at, None
        began = now if asked_at is None else min(asked_at, now)
        start = begin_shutdown(name, self.options.term_mode, began, self.options.shutdown_timeout)
        log.info("%s", start.message)
        self.shutdown = start.shutdown
        for companion in self.companions:
            companion.stop()
        if start.clean_up_by is not None:
            self.janitor.finish_by(start.clean_up_by)
        self.crew.signal_all(start.worker_signal)
        if not start.wait:
            self.workers.clear()

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
        self.scale.reset()
        self.generation += 1

    def handle_winch(self) -> None:
        if not self.options.handle_winch:
            return
        log.info("WINCH: stopping every worker until HUP")
        self.winched = True

    def handle_ttin(self) -> None:
        self.scale.more(self._configured())
        log.info("TTIN: one more worker per group: %s", self.scale.describe(self._configured()))

    def handle_ttou(self) -> None:
        if self.scale.fewer(self._configured()):
            log.info("TTOU: one worker less per group: %s", self.scale.describe(self._configured()))
        else:
            log.info("TTOU: every group is already at 0 workers")

    def handle_usr1(self) -> None:
        self._forward(signal.SIGUSR1)

    def handle_usr2(self) -> None:
        self._forward(signal.SIGUSR2)

    def handle_cont(self) -> None:
        self._forward(signal.SIGCONT)

    def handle_io(self) -> None:
        log.info("INFO: %d workers, generation %d", len(self.workers), self.generation)
        busy = self.janitor.busy_records([w.worker_id for w in self.workers.values()])
        for line in worker_lines(self.workers.values(), busy, self.clock()):
            log.info("INFO: %s", line)
        self.hooks.run_logged("siginfo", self)

    def _forward(self, signum: int) -> None:
        log.info("%s: forwarding to %d workers", signal_name(signum), len(self.workers))
        self.crew.signal_all(signum, include_stopping=False)

    # --- reconciling ---------------------------------------------------------------------------

    def desired(self) -> Mapping[str, int]:
        """Workers wanted per group now: the config plus the TTIN/TTOU delta, never below 0."""
        if self.shutdown is not None or self.winched:
            return {}
        return self._held_for_memory(self.scale.counts(self._configured()))

    def _held_for_memory(self, counts: Mapping[str, int]) -> Mapping[str, int]:
        """A worker retired for memory is replaced only once it has exited: until then its memory
        is still in use (a leaky in-process worker holds it until its job ends), and a
        replacement starting beside it could take the pool past its limit, where the kernel's
        OOM killer picks a process for us."""
        if self.governor is None or not self.governor.retiring:
            return counts
        held = dict(counts)
        for w in self.workers.values():
            if w.pid in self.governor.retiring and held.get(w.group, 0) > 0:
                held[w.group] -= 1
        return held

    def _configured(self) -> dict[str, int]:
        return {
            group: self.auto_count(group) if count is AUTO else count
            for group, count in self.config.groups.items()
        }

    def auto_count(self, group: str) -> int:
        """Workers for a group whose count is ``auto``: as many as fit, by the governor."""
        return self.governor.target(group) if self.governor is not None else 1

    def reconcile(self) -> None:
        """Clean up in Redis, then either see a shutdown through or bring the workers to plan."""
        now = self.clock()
        self.janitor.retry_pending()
        if self.shutdown is not None:
            self._enforce_deadline(now)
            return
        self.crew.end_overdue_jobs(now)
        if self.stop_pending():
            return  # the next pass handles it: neither a prune nor new workers before
        self.janitor.prune(now)
        if self.stop_pending():
            return
        self.poll_loader(now)
        self.govern_memory(now)
        # after the governor: a worker it just retired is seen stopping, not as one too many
        children = self.crew.children()
        self.crew.observe_backoff(children, now)
        the_plan = plan(
            self.desired(),
            children,
            now,
            generation=self.generation,
            kill_timeout=self.options.kill_timeout,
            not_before=self.crew.backoff.not_before(),
        )
        self._wake_at = the_plan.wake_at
        self.crew.apply(the_plan, now, self.generation)

    def _enforce_deadline(self, now: float) -> None:
        """At the shutdown deadline, kill every worker not killed yet."""
        assert self.shutdown is not None
        deadline = self.shutdown.deadline
        if deadline is None or now < deadline:
            return
        if any(w.killed_at is None for w in self.workers.values()):
            log.warning(
                "%s: deadline reached; killing %d workers",
                self.shutdown.signal_name,
                len(self.workers),
            )
            self.crew.kill_all()

    def govern_memory(self, now: float) -> None:
        """Sample memory when due; retire workers the governor names; kill jobs it must."""
        if self.governor is None:
            return
        views = [
            WorkerView(w.pid, w.group, w.stopping_since is not None) for w in self.workers.values()
        ]
        auto_groups = [g for g, c in self.config.groups.items() if c is AUTO]
        self.crew.retire(self.governor.tick(now, views, auto_groups), now)

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
        new = reload_config(self._load_config)
        if new is None:
            return False
        self.config = new
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
