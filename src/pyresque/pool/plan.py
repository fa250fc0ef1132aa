"""What the master should do next: which workers to spawn, stop and kill. Pure; standard library.

This is resque-pool's ``maintain_worker_count`` without its flaw: Ruby counts a worker it has sent
QUIT as running until it is reaped, so it re-QUITs the same workers every tick and never spawns their
replacements in time. Here a stopping child never counts as running and is never stopped twice; it
is killed once it has been stopping for ``kill_timeout``. A HUP replaces workers by rolling (spawn
first, then retire the old), and a crash-looping group waits out its :class:`Backoff`.

The master owns the facts (its children, the clock); :func:`plan` only decides, so it is tested with
tables and simulated clocks instead of processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

_NO_BACKOFF: Final[Mapping[str, float]] = MappingProxyType({})


@dataclass(frozen=True)
class Child:
    """What the master knows of one worker process.

    ``generation`` is the config generation the child was spawned under (the master bumps its own on
    HUP). ``ready`` says the child is doing work (registered, past its boot); a master that does not
    track readiness leaves it True. ``stopping_since`` is set when the master sent the graceful stop,
    ``killed_at`` when it sent SIGKILL; both stay until the child is reaped.
    """

    pid: int
    group: str
    generation: int
    started_at: float
    stopping_since: float | None = None
    ready: bool = True
    killed_at: float | None = None

    @property
    def running(self) -> bool:
        """Started and not asked to stop: counts toward its group's workers."""
        return self.stopping_since is None


@dataclass(frozen=True)
class Plan:
    """The actions of one reconciliation, each to be applied once.

    ``spawn`` holds one group name per worker to fork, in order; ``stop`` the pids to signal once to
    stop gracefully; ``kill`` the pids stopping for longer than the kill timeout. ``wake_at`` is the
    earliest later time at which the plan would change by the clock alone (a backoff ending, a kill
    deadline), so the master can sleep exactly that long; None when only an event can change it.
    """

    spawn: tuple[str, ...] = ()
    stop: tuple[int, ...] = ()
    kill: tuple[int, ...] = ()
    wake_at: float | None = None

    @property
    def is_empty(self) -> bool:
        """Nothing to do now."""
        return not (self.spawn or self.stop or self.kill)


def _stop_order(child: Child) -> tuple[bool, int, float, int]:
    # First to stop: children not yet ready (they serve nobody), then older generations, then the
    # newest. Newest-first, where Ruby stops the oldest: a young worker has the least work in hand
    # and the least warmed state, and the long-lived ones are the ones whose steadiness we know.
    return (child.ready, child.generation, -child.started_at, -child.pid)


def plan(
    desired: Mapping[str, int],
    children: Sequence[Child],
    now: float,
    *,
    generation: int,
    kill_timeout: float | None,
    not_before: Mapping[str, float] = _NO_BACKOFF,
    surge: int = 1,
) -> Plan:
    """Reconcile the children with the desired count per group.

    Per group, with ``n`` desired workers, ``current`` the running children of this generation and
    ``old`` those of an older one:

    - a group not in ``desired`` (or with ``n == 0``) has all its running children stopped;
    - current children beyond ``n`` are stopped (not-ready first, then the newest);
    - old children are retired only as ready current ones take their place: ``n - ready_current`` of
      them are kept, so ready capacity never drops below what it was (never to zero) during a
      rolling replacement, and a new generation that never becomes ready never displaces the old;
    - missing current children are spawned, but not before ``not_before[group]`` (crash-loop
      backoff), and with at most ``n + surge`` running children in the group: the rolling
      replacement after a HUP adds ``surge`` workers at a time (default 1). Stopping children,
      still draining their last job, are not counted: while old workers finish long jobs a group
      may briefly have more live processes than ``n + surge`` (capacity is kept, memory is not
      capped by this; the memory governor is).

    Stopping children never count as running and are never stopped twice. One stopping for
    ``kill_timeout`` (None: never) is killed, once (``killed_at`` marks it).
    """
    if surge < 1:
        raise ValueError("surge must be at least 1, or a rolling replacement could never start")
    for group, count in desired.items():
        if count < 0:
            raise ValueError(f"desired count for {group!r} is negative: {count}")

    by_group: dict[str, list[Child]] = {group: [] for group in desired}
    for child in children:
        by_group.setdefault(child.group, []).append(child)

    spawn: list[str] = []
    stop: list[int] = []
    kill: list[int] = []
    wake: list[float] = []

    for group, members in by_group.items():
        n = desired.get(group, 0)
        running = [c for c in members if c.running]
        current = sorted((c for c in running if c.generation == generation), key=_stop_order)
        old = sorted((c for c in running if c.generation != generation), key=_stop_order)

        excess = max(0, len(current) - n)
        stopped = current[:excess]
        kept_current = current[excess:]
        ready_current = sum(1 for c in kept_current if c.ready)
        keep_old = max(0, n - ready_current)
        stopped += old[: max(0, len(old) - keep_old)]
        stop.extend(c.pid for c in stopped)

        missing = n - len(kept_current)
        room = n + surge - (len(running) - len(stopped))
        wanted = max(0, min(missing, room))
        if wanted:
            ready_at = not_before.get(group, now)
            if now >= ready_at:
                spawn.extend([group] * wanted)
            else:
                wake.append(ready_at)

        if kill_timeout is not None:
            for c in members:
                if c.stopping_since is None or c.killed_at is not None:
                    continue
                deadline = c.stopping_since + kill_timeout
                if now >= deadline:
                    kill.append(c.pid)
                else:
                    wake.append(deadline)

    return Plan(
        spawn=tuple(spawn),
        stop=tuple(stop),
        kill=tuple(kill),
        wake_at=min(wake) if wake else None,
    )


class Backoff:
    """Per-group crash-loop backoff: a worker that dies soon after it started delays the next spawn.

    A group whose workers die within ``threshold`` seconds of starting (a boot failure, a bad deploy)
    waits ``initial`` seconds before its next spawn, doubling on each further early death up to
    ``maximum``: no respawn storms. It resets once a worker spawned after the latest early death
    has stayed up past the threshold (observed alive, or exiting late). A child the master asked to
    stop is not a crash and never counts. Pure: the master passes ``now``.
    """

    def __init__(
        self, *, threshold: float = 5.0, initial: float = 0.1, maximum: float = 60.0
    ) -> None:
        if threshold < 0 or initial <= 0 or maximum < initial:
            raise ValueError("need threshold ≥ 0 and 0 < initial ≤ maximum")
        self.threshold = threshold
        self.initial = initial
        self.maximum = maximum
        self._failures: dict[str, int] = {}
        self._last_failure: dict[str, float] = {}
        self._not_before: dict[str, float] = {}

    def record_exit(self, child: Child, now: float) -> float:
        """Note that ``child`` exited at ``now``; return the delay now imposed on its group (0.0: none)."""
        if child.stopping_since is not None:
            return 0.0
        group = child.group
        # A worker that became ready booted fine: whatever killed it later (an OOM kill, a chaos
        # monkey, a job that segfaults, which max deliveries bounds) is no crash loop.
        if child.ready or now - child.started_at >= self.threshold:
            self._reset_if_proven(group, child.started_at)
            return 0.0
        failures = self._failures.get(group, 0) + 1
        delay = min(self.maximum, self.initial * 2.0 ** min(failures - 1, 64))
        self._failures[group] = failures
        self._last_failure[group] = now
        self._not_before[group] = now + delay
        return delay

    def observe(self, children: Iterable[Child], now: float) -> list[str]:
        """Reset groups where a worker spawned after the last early death has stayed up; return them."""
        recovered: list[str] = []
        for child in children:
            if (
                child.running
                and child.group in self._failures
                and (child.ready or now - child.started_at >= self.threshold)
                and self._reset_if_proven(child.group, child.started_at)
            ):
                recovered.append(child.group)
        return recovered

    def _reset_if_proven(self, group: str, started_at: float) -> bool:
        # Only a worker started after the latest early death proves the group can boot now; an old
        # worker that was fine before the crash loop began proves nothing about the new ones.
        if group not in self._failures or started_at < self._last_failure[group]:
            return False
        del self._failures[group], self._last_failure[group], self._not_before[group]
        return True

    def failures(self, group: str) -> int:
        """Early deaths in a row for ``group`` (0 when it is healthy)."""
        return self._failures.get(group, 0)

    def not_before(self) -> Mapping[str, float]:
        """Per group in backoff, the earliest time of its next spawn; for :func:`plan`."""
        return MappingProxyType(dict(self._not_before))
