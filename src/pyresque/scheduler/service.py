"""The scheduler: hold resque-scheduler's master lock, move due delayed jobs, fire recurring ones.

Two ways to run it. Inside the pool master, which calls :meth:`SchedulerService.tick` from its own
loop and sleeps no longer than the time it returns (and may also wait on :meth:`fileno`). Or on
its own, as ``pyresque scheduler``: :meth:`SchedulerService.run` is that loop, with signal
handlers that only record.

Why it is cheap when idle yet punctual: it sleeps until the soonest delayed timestamp it knows
(exactly), the next recurring fire, or the next poll (``poll_interval``, 1 s by default), whichever
comes first. The poll takes or refreshes the lock and looks for timestamps written by clients that
do not publish (Ruby's); pyresque's ``enqueue_at`` publishes the timestamp, which wakes a sleeping
scheduler at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pyresque.errors import PayloadError, PyresqueError
from pyresque.jobs import tracing
from pyresque.jobs.registry import Registry, default_registry
from pyresque.scheduler.lock import DEFAULT_TIMEOUT, MasterLock
from pyresque.scheduler.mover import DEFAULT_BATCH_SIZE, move_due
from pyresque.scheduler.recurring import Entry, format_enqueued_at, parse_enqueued_at
from pyresque.scheduler.schedule import Schedule, load_schedule_file, parse_dynamic
from pyresque.scheduler.store import ScheduleStore
from pyresque.store.connection import CONNECTION_ERRORS, connect, is_refusal_for_now
from pyresque.wire import protocol
from pyresque.wire.keys import Keys
from pyresque.worker.signals import SignalInbox

log = logging.getLogger(__name__)

SOCKET_TIMEOUT = 2.0  # seconds; every scheduler command is small


@dataclass(frozen=True)
class SchedulerOptions:
    """How the scheduler runs; the names of resque-scheduler's variables are in ``from_env``."""

    poll_interval: float = 1.0  # RESQUE_SCHEDULER_INTERVAL
    lock_timeout: int = DEFAULT_TIMEOUT  # LOCK_TIMEOUT
    lock_prefix: str = ""  # RESQUE_SCHEDULER_MASTER_LOCK_PREFIX
    batch_size: int = DEFAULT_BATCH_SIZE  # DELAYED_REQUEUE_BATCH_SIZE
    dynamic: bool = True  # read persistent_schedules changes while running
    schedule_file: Path | None = None
    env_name: str | None = None
    missed: str = "once"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: object) -> SchedulerOptions:
        values: dict[str, object] = {}
        if env.get("RESQUE_SCHEDULER_INTERVAL"):
            values["poll_interval"] = float(env["RESQUE_SCHEDULER_INTERVAL"])
        if env.get("LOCK_TIMEOUT"):
            values["lock_timeout"] = int(env["LOCK_TIMEOUT"])
        if env.get("RESQUE_SCHEDULER_MASTER_LOCK_PREFIX"):
            values["lock_prefix"] = env["RESQUE_SCHEDULER_MASTER_LOCK_PREFIX"]
        if env.get("DELAYED_REQUEUE_BATCH_SIZE"):
            values["batch_size"] = int(env["DELAYED_REQUEUE_BATCH_SIZE"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


class SchedulerService:
    """One scheduler: call :meth:`tick` whenever the time it last returned has come."""

    def __init__(
        self,
        store: ScheduleStore,
        options: SchedulerOptions | None = None,
        *,
        registry: Registry | None = None,
        lock: MasterLock | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.options = options or SchedulerOptions()
        self.registry = registry or default_registry()
        self.lock = lock or MasterLock(
            store, timeout=self.options.lock_timeout, prefix=self.options.lock_prefix
        )
        self.clock = clock
        self.schedule = Schedule()
        self._next_poll = 0.0
        self._next_due: int | None = None
        self._sub: redis.client.PubSub | None = None
        self.moved = 0
        self._dynamic_names: set[str] = set()

    # --- the tick ------------------------------------------------------------------------------

    def tick(self, now: float) -> float:
        """Do what is due at ``now`` (epoch seconds); returns when to call again.

        Never blocks beyond its Redis round trips; a Redis error is logged and retried at the
        next poll (after a lost connection the lock counts as not held, so nothing moves on stale
        mastership), so a caller's loop never spins on it.
        """
        try:
            self._drain_wakeups()
            if now >= self._next_poll:
                self._poll(now)
            if self.lock.held:
                if self._next_due is not None and now >= self._next_due:
                    moved = move_due(self.store, now, self.options.batch_size, self.clock)
                    log.debug(
                        "moved %d due job(s), %.1f ms after %d",
                        moved,
                        (now - self._next_due) * 1000,
                        self._next_due,
                    )
                    self.moved += moved
                    self._next_due = self.store.next_timestamp()
                fired = self.schedule.take_due(now)
                for entry in fired:
                    self._fire(entry, now)
                if fired:
                    self._publish_next_runs()
        except CONNECTION_ERRORS as exc:
            log.warning("scheduler: Redis unavailable (%s); retrying in %.1fs", exc, 1.0)
            self.lock.held = False
            self._close_sub()
            self._next_poll = now + min(self.options.poll_interval, 1.0)
        except redis.RedisError as exc:  # e.g. a key of the wrong type: log, retry at the next poll
            if is_refusal_for_now(exc):  # a failover, a load, a replica missing: it passes
                log.warning(
                    "scheduler: Redis refused a command (%s: %s); retrying at the next poll",
                    type(exc).__name__,
                    exc,
                )
            else:
                log.exception("scheduler: Redis refused a command; retrying at the next poll")
            self._next_due = None
            self._next_poll = now + self.options.poll_interval
        return self.next_wake()

    def next_wake(self) -> float:
        """The time of the next poll, the soonest known delayed timestamp, or the next recurring
        fire, whichever is first."""
        wake = self._next_poll
        if self.lock.held:
            if self._next_due is not None:
                wake = min(wake, float(self._next_due))
            if (fire := self.schedule.next_wake()) is not None:
                wake = min(wake, fire)
        return wake

    def _poll(self, now: float) -> None:
        was_master = self.lock.held
        if self.lock.try_acquire():
            if not was_master:
                self._become_master(now)
            elif self.options.dynamic and self.store.take_schedule_changes():
                log.info("scheduler: dynamic schedules changed; reloading")
                self._load_schedule(now)
            elif self.schedule.entries:
                self.store.keep_next_runs(self.options.lock_timeout)
            self._next_due = self.store.next_timestamp()
        elif was_master:
            self.schedule.clear()
        self._next_poll = now + self.options.poll_interval

    def _become_master(self, now: float) -> None:
        if self.options.dynamic:
            self.store.clear_schedule_changes()  # what changed is read now, in full
        self._load_schedule(now)

    def _load_schedule(self, now: float) -> None:
        entries: dict[str, Entry] = {}
        if self.options.schedule_file is not None:
            try:
                entries = load_schedule_file(
                    self.options.schedule_file, self.options.env_name, self.options.missed
                )
            except PyresqueError as exc:
                log.error("scheduler: %s; keeping the previous file schedule", exc)
                entries = {
                    n: e for n, e in self.schedule.entries.items() if n not in self._dynamic_names
                }
        dynamic = parse_dynamic(self.store.persistent_schedules(), self.options.missed)
        self._dynamic_names = set(dynamic)
        entries.update(dynamic)
        last = {n: parse_enqueued_at(t) for n, t in self.store.last_enqueued().items()}
        self.schedule.load(entries, now, last)
        self._publish_next_runs()
        log.info("scheduler: %d recurring schedule(s) loaded", len(entries))

    def _publish_next_runs(self) -> None:
        """Write when each entry fires next, so ``schedule list`` reads this master's times
        instead of recomputing an ``every`` entry's (which moved on each call)."""
        self.store.publish_next_runs(self.schedule.next_at, self.options.lock_timeout)

    def reload(self) -> None:
        """Read the schedule file and the dynamic schedules again (HUP)."""
        if self.lock.held:
            self._load_schedule(self.clock())

    def _fire(self, entry: Entry, now: float) -> None:
        """Enqueue one recurring job as resque-scheduler does, and record the time."""
        queue = entry.queue
        if queue is None:
            with contextlib.suppress(PyresqueError):
                queue = self.registry.resolve(entry.class_name).queue
        try:
            payload = _payload(entry, queue)
        except PayloadError as exc:
            log.error("schedule %s: %s; nothing enqueued", entry.name, exc)
            queue, payload = None, ""
        if queue is None and payload:
            log.error("schedule %s: no queue for %s (give queue:)", entry.name, entry.class_name)
        self.store.push_recurring(entry.name, queue, payload, format_enqueued_at(now))
        log.info("schedule %s: enqueued %s to %s", entry.name, entry.class_name, queue)

    # --- wake-ups ------------------------------------------------------------------------------

    def fileno(self) -> int | None:
        """A socket that becomes readable when a job is delayed (subscribing first); None if the
        subscription failed (the poll still finds the job)."""
        try:
            if self._sub is None:
                self._sub = self.store.subscribe_wakeups()
                self._sub.get_message(timeout=0.5)  # the confirmation, so the socket is quiet
            conn = self._sub.connection
            sock = getattr(conn, "_sock", None) if conn is not None else None
            return sock.fileno() if sock is not None else None
        except CONNECTION_ERRORS as exc:
            log.warning("scheduler: wake-up subscription failed (%s); polling", exc)
            self._close_sub()
            return None

    def _drain_wakeups(self) -> None:
        if self._sub is None:
            return
        while (message := self._sub.get_message(timeout=0)) is not None:
            with contextlib.suppress(ValueError, TypeError):
                ts = int(message["data"])
                self._next_due = ts if self._next_due is None else min(self._next_due, ts)

    def _close_sub(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._sub.close()
            self._sub = None

    # --- standalone ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Give the lock up (another scheduler takes over on its next loop)."""
        with contextlib.suppress(*CONNECTION_ERRORS):
            self.lock.release()
        self._close_sub()

    def run(self) -> int:
        """Run until TERM, INT or QUIT (HUP reloads the schedule); returns the exit code."""
        inbox = SignalInbox((signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP))
        inbox.install()
        log.info("scheduler: started (%s)", self.lock.value)
        while True:
            received = inbox.drain()
            if signal.SIGHUP in received:
                self.reload()
            stop = [s for s in received if s != signal.SIGHUP]
            if stop:
                log.info("scheduler: %s: stopping", signal.Signals(stop[0]).name)
                break
            try:
                wake = self.tick(self.clock())
            except Exception:  # one bad tick must not end the scheduler
                log.exception("scheduler tick failed; carrying on")
                wake = self.clock() + self.options.poll_interval
            fd = self.fileno()
            inbox.wait(wake - self.clock(), [fd] if fd is not None else [])
        self.stop()
        return 0


def _payload(entry: Entry, queue: str | None) -> str:
    """A recurring job's payload; with a tracing integration on, made inside its producer span
    and carrying its trace context (each firing starts a trace)."""
    active = tracing.tracers()
    if not active or queue is None:
        return protocol.encode_payload(entry.class_name, entry.args)
    with tracing.traced_enqueue(active, queue, entry.class_name, entry.args) as carrier:
        return protocol.encode_payload(entry.class_name, entry.args, carrier)


def scheduler_connection(redis_url: str) -> redis.Redis:
    """A client for the scheduler alone: no retries inside redis-py and a short socket timeout,
    so that a Redis outage costs a tick one quick error (logged; the next poll tries again)
    instead of seconds of backoff inside the pool master's loop."""
    client = connect(redis_url, socket_timeout=SOCKET_TIMEOUT)
    client.set_retry(Retry(NoBackoff(), 0))
    return client


def scheduler_for(
    redis_url: str,
    namespace: str,
    *,
    schedule: str | None = None,
    environment: str | None = None,
    registry: Registry | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    **overrides: object,
) -> SchedulerService:
    """A scheduler as ``pyresque scheduler`` and the pool master build it: its own connection
    (:func:`scheduler_connection`), resque-scheduler's variables from ``env``, the schedule file
    (``schedule`` or config/resque-schedule.yml) and the environment section (``environment`` or
    RACK_ENV, RAILS_ENV, RESQUE_ENV)."""
    from pyresque.pool.config import environment_name
    from pyresque.scheduler.schedule import find_schedule_file

    env = os.environ if env is None else env
    options = SchedulerOptions.from_env(
        env,
        schedule_file=find_schedule_file(schedule, cwd or Path.cwd()),
        env_name=environment_name(environment, env),
        **overrides,
    )
    store = ScheduleStore(scheduler_connection(redis_url), Keys(namespace))
    return SchedulerService(store, options, registry=registry)
