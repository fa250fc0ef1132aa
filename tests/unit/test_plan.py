"""The pure planner: spawn, stop, kill; rolling replacement; crash-loop backoff."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyresque.pool.plan import Backoff, Child, Plan, plan

GEN = 1


def c(
    pid: int,
    group: str = "a",
    *,
    gen: int = GEN,
    at: float = 0.0,
    stopping: float | None = None,
    ready: bool = True,
    killed: float | None = None,
) -> Child:
    return Child(
        pid=pid,
        group=group,
        generation=gen,
        started_at=at,
        stopping_since=stopping,
        ready=ready,
        killed_at=killed,
    )


# --- table ----------------------------------------------------------------------------------

CASES: list[tuple[str, dict[str, int], list[Child], dict[str, object], Plan]] = [
    ("nothing wanted, nothing running", {}, [], {}, Plan()),
    ("spawn the missing, in desired order", {"a": 2, "b": 1}, [], {}, Plan(spawn=("a", "a", "b"))),
    ("a group of zero spawns nothing", {"a": 0}, [], {}, Plan()),
    ("exactly enough", {"a": 2}, [c(1), c(2)], {}, Plan()),
    ("top up a group", {"a": 3}, [c(1)], {}, Plan(spawn=("a", "a"))),
    (
        "too many: stop the newest extras",
        {"a": 1},
        [c(1, at=0), c(2, at=10), c(3, at=5)],
        {},
        Plan(stop=(2, 3)),
    ),
    (
        "too many: stop the not-ready ones first",
        {"a": 2},
        [c(1, at=0), c(2, at=1, ready=False), c(3, at=2)],
        {},
        Plan(stop=(2,)),
    ),
    ("same start time: the higher pid goes", {"a": 1}, [c(7), c(9)], {}, Plan(stop=(9,))),
    (
        "a group no longer in the config is stopped entirely",
        {"a": 1},
        [c(1), c(2, "gone"), c(3, "gone", ready=False)],
        {},
        Plan(stop=(3, 2)),
    ),
    ("a group set to zero is stopped", {"a": 0}, [c(1), c(2)], {}, Plan(stop=(2, 1))),
    (
        "Ruby's flaw: a stopping child does not count as running",
        {"a": 2},
        [c(1), c(2, stopping=5.0)],
        {"now": 6.0},
        Plan(spawn=("a",), wake_at=35.0),
    ),
    (
        "Ruby's flaw: a stopping child is never stopped again",
        {},
        [c(1, stopping=5.0), c(2, stopping=5.5)],
        {"now": 6.0, "kill_timeout": None},
        Plan(),
    ),
    (
        "a stopping child past the kill timeout is killed",
        {"a": 1},
        [c(1, stopping=0.0), c(2)],
        {"now": 30.0},
        Plan(kill=(1,)),
    ),
    (
        "before the kill timeout: wait, and say until when",
        {"a": 1},
        [c(1, stopping=0.0), c(2)],
        {"now": 29.9},
        Plan(wake_at=30.0),
    ),
    (
        "a killed child is not killed again",
        {"a": 1},
        [c(1, stopping=0.0, killed=30.0), c(2)],
        {"now": 99.0},
        Plan(),
    ),
    (
        "no kill timeout: never killed",
        {},
        [c(1, stopping=0.0)],
        {"now": 1e9, "kill_timeout": None},
        Plan(),
    ),
    (
        "backoff: no spawn before not_before, and say when",
        {"a": 2, "b": 1},
        [],
        {"now": 3.0, "not_before": {"a": 5.0}},
        Plan(spawn=("b",), wake_at=5.0),
    ),
    (
        "backoff over: spawn",
        {"a": 2},
        [],
        {"now": 5.0, "not_before": {"a": 5.0}},
        Plan(spawn=("a", "a")),
    ),
    (
        "backoff does not matter to a full group",
        {"a": 1},
        [c(1)],
        {"now": 3.0, "not_before": {"a": 5.0}},
        Plan(),
    ),
    (
        "wake_at is the earliest of backoffs and kill deadlines",
        {"a": 1, "b": 1},
        [c(1, "c", stopping=0.0)],
        {"now": 1.0, "not_before": {"a": 20.0, "b": 8.0}},
        Plan(wake_at=8.0),
    ),
    # rolling replacement after HUP (generation 0 -> 1)
    (
        "rolling: spawn a replacement first, stop nothing yet",
        {"a": 2},
        [c(1, gen=0), c(2, gen=0)],
        {},
        Plan(spawn=("a",)),
    ),
    (
        "rolling: a new child not ready yet keeps every old one",
        {"a": 2},
        [c(1, gen=0), c(2, gen=0), c(3, ready=False)],
        {},
        Plan(),
    ),
    (
        "rolling: a ready new child retires one old child, and the next is spawned",
        {"a": 2},
        [c(1, gen=0, at=0), c(2, gen=0, at=1), c(3, at=2)],
        {},
        Plan(spawn=("a",), stop=(2,)),
    ),
    (
        "rolling: done when the new generation is complete and ready",
        {"a": 2},
        [c(1, gen=0), c(3), c(4)],
        {},
        Plan(stop=(1,)),
    ),
    (
        "rolling: surge 2 spawns two at a time",
        {"a": 3},
        [c(1, gen=0), c(2, gen=0), c(3, gen=0)],
        {"surge": 2},
        Plan(spawn=("a", "a")),
    ),
    (
        "rolling: an old child still booting goes first",
        {"a": 1},
        [c(1, gen=0, ready=False), c(2, gen=0)],
        {},
        Plan(spawn=("a",), stop=(1,)),
    ),
    (
        "rolling: an older generation goes before a newer one",
        {"a": 2},
        [c(1, gen=-1, at=5), c(2, gen=0, at=0), c(3, at=9)],
        {},
        Plan(spawn=("a",), stop=(1,)),
    ),
    (
        "rolling: a crash-looping new generation never displaces the old",
        {"a": 1},
        [c(1, gen=0)],
        {"now": 1.0, "not_before": {"a": 4.0}},
        Plan(wake_at=4.0),
    ),
    (
        "rolling and shrinking at once: keep only what serves",
        {"a": 1},
        [c(1, gen=0), c(2, gen=0), c(3, gen=0)],
        {},
        Plan(spawn=("a",), stop=(3, 2)),
    ),
    (
        "rolling: a stopping old child does not hold back the replacement",
        {"a": 1},
        [c(1, gen=0, stopping=0.0)],
        {"now": 1.0},
        Plan(spawn=("a",), wake_at=30.0),
    ),
]


@pytest.mark.parametrize(
    ("desired", "children", "options", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_plan_table(
    desired: dict[str, int], children: list[Child], options: dict[str, object], expected: Plan
) -> None:
    kwargs: dict[str, object] = {"generation": GEN, "kill_timeout": 30.0, **options}
    now = kwargs.pop("now", 0.0)
    assert plan(desired, children, now, **kwargs) == expected  # type: ignore[arg-type]


def test_plan_is_empty() -> None:
    assert Plan().is_empty
    assert Plan(wake_at=3.0).is_empty
    assert not Plan(spawn=("a",)).is_empty
    assert not Plan(stop=(1,)).is_empty
    assert not Plan(kill=(1,)).is_empty


@pytest.mark.parametrize(
    ("desired", "surge"), [({"a": -1}, 1), ({"a": 1}, 0)], ids=["negative count", "no surge"]
)
def test_plan_rejects_nonsense(desired: dict[str, int], surge: int) -> None:
    with pytest.raises(ValueError):
        plan(desired, [], 0.0, generation=0, kill_timeout=None, surge=surge)


def test_a_stopped_child_is_signalled_once_over_many_ticks() -> None:
    """Ruby re-QUITs the same workers on every tick; we signal once and then wait, then kill."""
    children = [c(1, at=0.0), c(2, at=1.0)]
    stops: list[int] = []
    kills: list[int] = []
    for tick in range(40):
        now = float(tick)
        result = plan({"a": 1}, children, now, generation=GEN, kill_timeout=10.0)
        stops += result.stop
        kills += result.kill
        children = [
            replace(x, stopping_since=now)
            if x.pid in result.stop
            else replace(x, killed_at=now)
            if x.pid in result.kill
            else x
            for x in children
        ]
    assert stops == [2]
    assert kills == [2]


# --- Backoff --------------------------------------------------------------------------------


def booting(*args: object, **kwargs: object) -> Child:
    """A child that died (or lives) before it reported ready: what the backoff is about."""
    return c(*args, ready=False, **kwargs)  # type: ignore[arg-type]


def test_backoff_ignores_a_worker_that_was_ready() -> None:
    """Killed after it booted (an OOM kill, an operator): replaced at once, however young."""
    backoff = Backoff(threshold=5.0)
    assert backoff.record_exit(c(1, at=0.0, ready=True), 0.5) == 0.0
    assert backoff.failures("a") == 0
    backoff.record_exit(booting(2, at=1.0), 1.5)
    assert backoff.failures("a") == 1
    assert backoff.observe([c(3, at=2.0, ready=True)], 2.1) == ["a"]  # a new one booted: reset
    assert backoff.not_before() == {}


def test_backoff_doubles_on_early_deaths_up_to_the_maximum() -> None:
    backoff = Backoff(threshold=5.0, initial=0.1, maximum=1.0)
    delays = []
    now = 100.0
    for _ in range(7):
        delays.append(backoff.record_exit(booting(1, at=now - 1.0), now))
        assert backoff.not_before() == {"a": now + delays[-1]}
        now += 2.0
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert backoff.failures("a") == 7


def test_backoff_defaults_are_a_tenth_of_a_second_doubling_to_a_minute() -> None:
    backoff = Backoff()
    delays = [backoff.record_exit(booting(1, at=0.0), 1.0) for _ in range(12)]
    assert delays[0] == pytest.approx(0.1)
    assert delays[1] == pytest.approx(0.2)
    assert delays[-1] == 60.0
    assert max(delays) == 60.0


def test_backoff_ignores_children_the_master_stopped() -> None:
    backoff = Backoff()
    assert backoff.record_exit(booting(1, at=0.0, stopping=0.5), 1.0) == 0.0
    assert backoff.not_before() == {}


def test_backoff_ignores_a_long_lived_death() -> None:
    backoff = Backoff()
    assert backoff.record_exit(booting(1, at=0.0), 100.0) == 0.0
    assert backoff.failures("a") == 0


def test_backoff_groups_are_independent() -> None:
    backoff = Backoff()
    backoff.record_exit(booting(1, "a", at=0.0), 1.0)
    backoff.record_exit(booting(2, "a", at=1.0), 2.0)
    backoff.record_exit(booting(3, "b", at=0.0), 1.0)
    assert backoff.not_before() == pytest.approx({"a": 2.2, "b": 1.1})


def test_backoff_resets_once_a_new_worker_stays_up() -> None:
    backoff = Backoff(threshold=5.0)
    backoff.record_exit(booting(1, at=0.0), 1.0)  # early death at t=1
    survivor = booting(2, at=1.1)
    assert backoff.observe([survivor], 5.0) == []  # up 3.9 s: not yet
    assert backoff.failures("a") == 1
    assert backoff.observe([survivor], 6.1) == ["a"]  # up 5 s: proven
    assert backoff.failures("a") == 0
    assert backoff.not_before() == {}
    assert backoff.record_exit(booting(3, at=10.0), 11.0) == pytest.approx(0.1)  # starts over


def test_backoff_is_not_reset_by_a_worker_older_than_the_crash_loop() -> None:
    """A worker fine since before the loop began proves nothing about the new ones."""
    backoff = Backoff(threshold=5.0)
    veteran = booting(1, at=0.0)
    backoff.record_exit(booting(2, at=99.0), 100.0)
    assert backoff.observe([veteran], 200.0) == []
    assert backoff.record_exit(veteran, 201.0) == 0.0
    assert backoff.failures("a") == 1


def test_backoff_is_reset_by_a_late_death_of_a_worker_started_after_the_loop() -> None:
    backoff = Backoff(threshold=5.0)
    backoff.record_exit(booting(1, at=0.0), 1.0)
    assert backoff.record_exit(booting(2, at=2.0), 60.0) == 0.0
    assert backoff.failures("a") == 0


def test_backoff_observe_skips_stopping_children() -> None:
    backoff = Backoff(threshold=5.0)
    backoff.record_exit(booting(1, at=0.0), 1.0)
    assert backoff.observe([booting(2, at=2.0, stopping=3.0)], 60.0) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"threshold": -1.0}, {"initial": 0.0}, {"initial": 2.0, "maximum": 1.0}],
)
def test_backoff_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


# --- properties: a simulated master with an injected clock -----------------------------------

GROUPS = ("a", "b", "c")
KILL_TIMEOUT = 10.0


class Simulation:
    """Applies plans the way the master would, checking the planner's promises at every step."""

    def __init__(self, desired: Mapping[str, int], surge: int) -> None:
        self.desired = dict(desired)
        self.surge = surge
        self.generation = 0
        self.now = 0.0
        self.children: dict[int, Child] = {}
        self.next_pid = 100
        self.stopped: set[int] = set()
        self.killed: set[int] = set()
        self.backoff = Backoff(threshold=5.0, initial=0.1, maximum=60.0)

    def running(self, group: str, *, ready_only: bool = False) -> list[Child]:
        return [
            x
            for x in self.children.values()
            if x.group == group and x.running and (x.ready or not ready_only)
        ]

    def step(self) -> Plan:
        not_before = self.backoff.not_before()
        ready_before = {g: len(self.running(g, ready_only=True)) for g in GROUPS}
        result = plan(
            self.desired,
            list(self.children.values()),
            self.now,
            generation=self.generation,
            kill_timeout=KILL_TIMEOUT,
            not_before=not_before,
            surge=self.surge,
        )
        assert len(set(result.stop)) == len(result.stop)
        for pid in result.stop:
            assert pid not in self.stopped, f"pid {pid} stopped twice"
            assert self.children[pid].running
            self.stopped.add(pid)
            self.children[pid] = replace(self.children[pid], stopping_since=self.now)
        for pid in result.kill:
            child = self.children[pid]
            assert pid not in self.killed, f"pid {pid} killed twice"
            assert child.stopping_since is not None
            assert self.now >= child.stopping_since + KILL_TIMEOUT
            self.killed.add(pid)
            self.children[pid] = replace(child, killed_at=self.now)
        for group in result.spawn:
            assert self.now >= not_before.get(group, -math.inf), f"{group} spawned in backoff"
            pid = self.next_pid
            self.next_pid += 1
            self.children[pid] = Child(pid, group, self.generation, self.now, ready=False)
        if result.wake_at is not None:
            assert result.wake_at > self.now
        for group in GROUPS:
            n = self.desired.get(group, 0)
            # The plan's stops never take ready capacity below what it was (capped at n): in
            # particular a group that had a ready worker keeps one through a rolling change.
            assert len(self.running(group, ready_only=True)) >= min(n, ready_before[group])
            current = [x for x in self.running(group) if x.generation == self.generation]
            if group in result.spawn:
                assert len(current) <= n
                assert len(self.running(group)) <= n + self.surge
        return result

    def pick(self, index: int, *, running: bool) -> Child | None:
        pool = [x for x in self.children.values() if x.running is running]
        return pool[index % len(pool)] if pool else None

    def exit(self, child: Child) -> None:
        self.backoff.record_exit(child, self.now)
        del self.children[child.pid]

    def apply(self, action: tuple[object, ...]) -> None:
        kind = action[0]
        if kind == "plan":
            self.step()
        elif kind == "tick":
            assert isinstance(action[1], float)
            self.now += action[1]
            self.backoff.observe(self.children.values(), self.now)
        elif kind == "ready":
            assert isinstance(action[1], int)
            child = self.pick(action[1], running=True)
            if child is not None:
                self.children[child.pid] = replace(child, ready=True)
        elif kind == "crash":
            assert isinstance(action[1], int)
            child = self.pick(action[1], running=True)
            if child is not None:
                self.exit(child)
        elif kind == "finish":  # a stopping child finishes its job and exits
            assert isinstance(action[1], int)
            child = self.pick(action[1], running=False)
            if child is not None:
                self.exit(child)
        elif kind == "reap_killed":
            for child in [x for x in self.children.values() if x.killed_at is not None]:
                self.exit(child)
        elif kind == "hup":
            self.generation += 1
        elif kind == "resize":
            assert isinstance(action[1], str)
            assert isinstance(action[2], int)
            self.desired[action[1]] = action[2]
        else:  # pragma: no cover
            raise AssertionError(kind)

    def settle(self) -> None:
        """No more surprises: children boot, stopping ones finish or are killed, time passes."""
        for _ in range(300):
            result = self.step()
            if result.is_empty and self.converged():
                return
            for pid, child in list(self.children.items()):
                if child.running:
                    self.children[pid] = replace(child, ready=True)
                elif child.pid % 2 == 0 or (child.killed_at or self.now) < self.now:
                    # even pids finish their job; odd ones hang until killed, and are reaped a
                    # tick after the kill so the next plan sees them killed but not yet gone
                    self.exit(child)
            self.now += 1.0
            self.backoff.observe(self.children.values(), self.now)
        raise AssertionError(f"did not converge: {self.desired} {self.children}")

    def converged(self) -> bool:
        counts = Counter(x.group for x in self.children.values() if x.running)
        wanted = {g: n for g, n in self.desired.items() if n}
        return (
            counts == wanted
            and all(x.running for x in self.children.values())
            and all(x.generation == self.generation for x in self.children.values())
        )


desired_st = st.dictionaries(st.sampled_from(GROUPS), st.integers(0, 4))
index_st = st.integers(0, 63)
seconds_st = st.integers(0, 150).map(lambda tenths: tenths / 10)
action_st = st.one_of(
    st.just(("plan",)),
    st.just(("plan",)),
    st.tuples(st.just("tick"), seconds_st),
    st.tuples(st.just("ready"), index_st),
    st.tuples(st.just("crash"), index_st),
    st.tuples(st.just("finish"), index_st),
    st.just(("reap_killed",)),
    st.just(("hup",)),
    st.tuples(st.just("resize"), st.sampled_from(GROUPS), st.integers(0, 4)),
)
calm_action_st = st.one_of(  # no crashes, no resizes: only HUPs, boots, finishes and time
    st.just(("plan",)),
    st.just(("plan",)),
    st.tuples(st.just("tick"), seconds_st),
    st.tuples(st.just("ready"), index_st),
    st.tuples(st.just("finish"), index_st),
    st.just(("reap_killed",)),
    st.just(("hup",)),
)


@settings(max_examples=300, deadline=None)
@given(desired=desired_st, surge=st.integers(1, 3), actions=st.lists(action_st, max_size=80))
def test_plan_promises_hold_and_the_pool_converges(
    desired: dict[str, int], surge: int, actions: list[tuple[object, ...]]
) -> None:
    """Whatever happens, every step keeps the promises (checked in ``step``), and once things
    calm down the running workers match the config, all of the current generation."""
    sim = Simulation(desired, surge)
    for action in actions:
        sim.apply(action)
    sim.settle()


@settings(max_examples=300, deadline=None)
@given(
    desired=st.dictionaries(st.sampled_from(GROUPS), st.integers(1, 4), min_size=1),
    surge=st.integers(1, 3),
    actions=st.lists(calm_action_st, max_size=80),
)
def test_rolling_replacement_never_drops_ready_capacity(
    desired: dict[str, int], surge: int, actions: list[tuple[object, ...]]
) -> None:
    """From a settled pool, any sequence of HUPs keeps every group at full ready capacity."""
    sim = Simulation(desired, surge)
    sim.settle()
    for action in actions:
        sim.apply(action)
        for group, n in desired.items():
            assert len(sim.running(group, ready_only=True)) >= n
    sim.settle()


@settings(max_examples=200, deadline=None)
@given(
    crashes=st.lists(st.integers(0, 40).map(lambda tenths: tenths / 10), min_size=1, max_size=30)
)
def test_a_crash_loop_never_spawns_inside_its_backoff(crashes: list[float]) -> None:
    """Workers dying at boot, again and again: spawns are spaced by a growing backoff."""
    sim = Simulation({"a": 1}, 1)
    spawn_times: list[float] = []
    for wait in crashes:
        if sim.step().spawn:
            spawn_times.append(sim.now)
        sim.now += wait
        child = sim.pick(0, running=True)
        if child is not None and sim.now - child.started_at < 5.0:
            sim.exit(child)
    gaps = [b - a for a, b in itertools.pairwise(spawn_times)]
    assert all(gap >= 0.1 - 1e-9 for gap in gaps)
