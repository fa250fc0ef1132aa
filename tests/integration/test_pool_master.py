"""The master's decisions, stepped with a fake clock and a fake process layer (no fork, no signals
sent); Redis is the real private server, for the janitor's clean-ups."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence

import pytest
import redis

from harness.redis_server import RedisServer
from pyresque.pool.config import AUTO, PoolConfig
from pyresque.pool.governor import MemoryGovernor, WorkerView
from pyresque.pool.hooks import PoolHooks
from pyresque.pool.master import Master
from pyresque.pool.memory import MB, MemoryLimit, OomWatch
from pyresque.pool.options import PoolOptions, TermMode
from pyresque.pool.sizing import Retirements, SizingPolicy
from pyresque.settings import WorkerSettings
from pyresque.worker.loop import Worker

KILLED = signal.SIGKILL  # a wait status: killed by this signal


def exited(code: int) -> int:
    """The wait status of a process that exited with ``code``."""
    return code << 8


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeProcesses:
    """Records what the master asks; the test says when a process exits."""

    def __init__(self) -> None:
        self.next_pid = 50000
        self.alive: set[int] = set()
        self.sent: list[tuple[int, int]] = []
        self.job_children: dict[int, list[int]] = {}
        self._exited: list[tuple[int, int]] = []

    def spawn(self, make_worker: Callable[[], Worker]) -> tuple[int, int | None]:
        self.next_pid += 1
        self.alive.add(self.next_pid)
        return self.next_pid, None

    def signal(self, pid: int, signum: int) -> None:
        self.sent.append((pid, signum))

    def kill(self, pid: int, with_group: bool) -> None:
        self.sent.append((pid, signal.SIGKILL))
        self.exit(pid, KILLED)

    def exit(self, pid: int, status: int) -> None:
        if pid in self.alive:
            self.alive.discard(pid)
            self._exited.append((pid, status))

    def reap(self) -> list[tuple[int, int]]:
        out, self._exited = self._exited, []
        return out

    def children(self, pid: int) -> list[int]:
        return self.job_children.get(pid, [])

    def signalled(self, signum: int) -> list[int]:
        return [pid for pid, s in self.sent if s == signum]


class FakeGovernor(MemoryGovernor):
    """Says what the test tells it to, instead of measuring /proc."""

    def __init__(self) -> None:
        super().__init__(MemoryLimit(GB, "test"), SizingPolicy(GB, 100 * MB))
        self.next: Retirements = Retirements()
        self.targets: dict[str, int] = {}

    def tick(
        self, now: float, workers: Sequence[WorkerView], auto_groups: Sequence[str]
    ) -> Retirements:
        decision, self.next = self.next, Retirements()
        self.auto_targets = dict(self.targets)
        # as the real one: the workers it retired, until they are gone
        self.retiring = (self.retiring & {w.pid for w in workers}) | set(decision.stop)
        return decision


GB = 1024 * MB


class Pool:
    """A master on a fake process layer and clock, its config set by the test."""

    def __init__(
        self,
        server: RedisServer,
        groups: Mapping[str, object],
        *,
        governor: MemoryGovernor | None = None,
        **options: object,
    ) -> None:
        self.clock = Clock()
        self.processes = FakeProcesses()
        self.groups = dict(groups)
        pool_options = PoolOptions(
            redis_url=server.url,
            namespace="resque",
            gc_freeze=False,
            **options,  # type: ignore[arg-type]
        )
        self.master = Master(
            pool_options,
            lambda: PoolConfig(self.groups, source="test"),  # type: ignore[arg-type]
            PoolHooks(),
            WorkerSettings(namespace="resque", redis_url=server.url),
            governor=governor,
            clock=self.clock,
            processes=self.processes,
        )
        self.master.config = PoolConfig(self.groups, source="test")  # type: ignore[arg-type]

    def step(self, seconds: float = 0.0) -> bool:
        self.clock.advance(seconds)
        return self.master.step()

    def signal(self, signum: int) -> None:
        self.master.dispatch(signum)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in self.master.workers.values():
            if w.stopping_since is None:
                out[w.group] = out.get(w.group, 0) + 1
        return out

    def ready_all(self) -> None:
        for w in self.master.workers.values():
            w.ready = True

    def pids(self, group: str | None = None) -> list[int]:
        return sorted(p for p, w in self.master.workers.items() if group in (None, w.group))


@pytest.fixture
def pool(redis_server: RedisServer, r: redis.Redis) -> Callable[..., Pool]:
    made: list[Pool] = []

    def make(groups: Mapping[str, object], **kw: object) -> Pool:
        made.append(Pool(redis_server, groups, **kw))  # type: ignore[arg-type]
        return made[-1]

    return make


def test_a_crash_loop_backs_off_and_recovers(pool: Callable[..., Pool]) -> None:
    p = pool({"a": 1})
    p.step()
    [first] = p.pids()
    p.processes.exit(first, exited(3))  # a boot failure, at once
    p.step(0.01)
    assert p.pids() == []  # not respawned at once
    p.step(0.05)
    assert p.pids() == []
    p.step(0.1)  # past the first delay
    [second] = p.pids()
    p.processes.exit(second, exited(3))
    p.step(0.01)
    p.step(0.15)
    assert p.pids() == []  # the delay doubled
    p.step(0.1)
    [third] = p.pids()
    p.master.workers[third].ready = True
    p.step(10)  # up past the threshold: the group is proven again
    p.processes.exit(third, exited(1))
    p.step(0.01)
    assert len(p.pids()) == 1  # a ready worker's death is no crash loop: replaced at once


def test_hup_rolls_one_new_worker_in_before_an_old_one_leaves(pool: Callable[..., Pool]) -> None:
    p = pool({"a": 2})
    p.step()
    old = p.pids()
    p.ready_all()
    p.step(1)
    p.signal(signal.SIGHUP)
    p.step(0.01)
    new = [pid for pid in p.pids() if pid not in old]
    assert len(new) == 1 and p.processes.signalled(signal.SIGQUIT) == []  # spawn first
    p.master.workers[new[0]].ready = True
    p.step(0.01)
    [stopped] = p.processes.signalled(signal.SIGQUIT)
    assert stopped in old  # one old one leaves once a new one is ready
    p.processes.exit(stopped, exited(0))
    p.step(0.01)
    p.ready_all()
    p.step(0.01)
    assert sorted(p.processes.signalled(signal.SIGQUIT)) == sorted(old)
    for pid in old:
        p.processes.exit(pid, exited(0))
    p.step(0.01)
    assert p.counts() == {"a": 2} and not set(p.pids()) & set(old)


def test_term_kills_what_is_left_at_the_deadline_and_exits(pool: Callable[..., Pool]) -> None:
    p = pool({"a": 2}, shutdown_timeout=10.0)
    p.step()
    workers = p.pids()
    p.signal(signal.SIGTERM)
    assert sorted(p.processes.signalled(signal.SIGTERM)) == workers
    p.processes.exit(workers[0], exited(0))  # one leaves in time
    assert not p.step(5)
    assert p.processes.signalled(signal.SIGKILL) == []
    assert not p.step(3.9)  # 8.9 s: not yet (the kill comes a second before the timeout)
    assert p.processes.signalled(signal.SIGKILL) == []
    assert not p.step(0.2)  # 9.1 s: the stubborn one is killed
    assert p.processes.signalled(signal.SIGKILL) == [workers[1]]
    assert p.step(0.01)  # reaped; every worker gone: exit
    assert p.master.janitor.deadline == pytest.approx(1000.0 + 10 - 0.5)


def test_term_graceful_leaves_at_once(pool: Callable[..., Pool]) -> None:
    p = pool({"a": 2}, term_mode=TermMode.GRACEFUL)
    p.step()
    workers = p.pids()
    p.signal(signal.SIGTERM)
    assert sorted(p.processes.signalled(signal.SIGQUIT)) == workers
    assert p.step()


def test_ttin_and_ttou(pool: Callable[..., Pool]) -> None:
    p = pool({"a": 1, "b": 3})
    p.step()
    p.signal(signal.SIGTTIN)
    p.step(0.01)
    assert p.counts() == {"a": 2, "b": 4}
    for _ in range(3):
        p.signal(signal.SIGTTOU)
    p.step(0.01)
    assert p.counts() == {"b": 1}
    for _ in range(5):
        p.signal(signal.SIGTTOU)
    p.step(0.01)
    assert p.counts() == {}
    p.signal(signal.SIGTTIN)  # every group at 0 gets one again, not only the largest (issue 25)
    p.step(0.01)
    assert p.counts() == {"a": 1, "b": 1}
    p.signal(signal.SIGHUP)
    p.step(0.01)
    assert p.master.scale.counts({"a": 1, "b": 3}) == {"a": 1, "b": 3}


def test_governor_retirements_stop_after_the_job_and_kill_jobs(pool: Callable[..., Pool]) -> None:
    governor = FakeGovernor()
    p = pool({"a": 2}, governor=governor)
    p.step()
    big, other = p.pids()
    governor.next = Retirements(stop=(big,))
    p.step(1)
    assert (big, signal.SIGQUIT) in p.processes.sent
    assert p.master.workers[big].for_memory
    p.processes.job_children[other] = [other + 100]
    governor.next = Retirements(kill_jobs=(other,))
    p.step(1)
    assert (other + 100, signal.SIGKILL) in p.processes.sent
    assert (other, signal.SIGKILL) not in p.processes.sent  # the worker itself lives on


def test_a_worker_retired_for_memory_is_replaced_only_once_it_has_exited(
    pool: Callable[..., Pool],
) -> None:
    governor = FakeGovernor()
    p = pool({"a": 2}, governor=governor)
    p.step()
    big, other = p.pids()
    p.ready_all()
    governor.next = Retirements(stop=(big,))
    p.step(1)
    assert (big, signal.SIGQUIT) in p.processes.sent
    for _ in range(3):  # its job still holds its memory: nothing starts beside it
        p.step(1)
        assert p.pids() == [big, other]
    p.processes.exit(big, exited(0))
    p.step(0.01)
    p.step(0.01)
    assert len(p.pids()) == 2 and big not in p.pids() and other in p.pids()


def test_auto_groups_follow_the_governor(pool: Callable[..., Pool]) -> None:
    governor = FakeGovernor()
    p = pool({"a": AUTO}, governor=governor)
    governor.targets = {"a": 3}
    p.step()
    p.step(0.01)
    assert p.counts() == {"a": 3}


def dead_worker_with_a_job(p: Pool, r: redis.Redis) -> str:
    [pid] = p.pids()
    wid = p.master.workers[pid].worker_id
    r.sadd("resque:workers", wid)
    r.hset(f"resque:inflight:{wid}", "a", '{"class":"J","args":[]}')
    r.sadd("resque:inflight-workers", wid)
    return wid


def test_a_worker_killed_at_the_deadline_is_cleaned_up_in_redis_without_a_delivery(
    pool: Callable[..., Pool], r: redis.Redis
) -> None:
    p = pool({"a": 1}, shutdown_timeout=2.0)
    p.step()
    wid = dead_worker_with_a_job(p, r)
    p.signal(signal.SIGTERM)
    p.step(1.81)  # killed 0.2 s before the timeout; clean-up may run until 0.1 s before it
    assert p.step(0.0)
    assert r.lrange("resque:queue:a", 0, -1) == [b'{"class":"J","args":[]}']
    assert not r.sismember("resque:workers", wid)
    assert r.hlen("resque:redeliveries") == 0  # the deploy ended it, not the job


def test_no_clean_up_starts_after_its_deadline(pool: Callable[..., Pool], r: redis.Redis) -> None:
    p = pool({"a": 1}, shutdown_timeout=2.0)
    p.step()
    wid = dead_worker_with_a_job(p, r)
    p.signal(signal.SIGTERM)
    p.step(1.85)
    assert p.step(0.06)  # past the clean-up deadline: exit, and leave it to the next prune
    assert p.master.janitor.left_undone() == [wid]
    assert r.hlen(f"resque:inflight:{wid}") == 1


def test_a_sigkill_is_called_oom_only_when_the_kernel_or_the_governor_says_so(
    pool: Callable[..., Pool], caplog: pytest.LogCaptureFixture
) -> None:
    governor = FakeGovernor()
    p = pool({"a": 3}, governor=governor)
    oom_kills = [7]
    p.master.crew.oom = OomWatch(lambda: oom_kills[0])
    p.step()
    first, second, third = p.pids()
    p.processes.exit(first, KILLED)  # an operator's kill -9
    p.step(1)
    oom_kills[0] = 8
    p.processes.exit(second, KILLED)  # the kernel's OOM killer
    p.step(1)
    governor.next = Retirements(kill_jobs=(third,))  # in-process: the worker itself is killed
    p.step(1)
    p.step(0)
    lines = {line.split(":")[0]: line for line in caplog.messages if line.startswith("reaped")}
    assert lines[f"reaped worker {first} [a]"].endswith("killed by SIGKILL after 1.0s")
    assert "by the kernel's OOM killer" in lines[f"reaped worker {second} [a]"]
    assert "killed by SIGKILL — by the memory governor" in lines[f"reaped worker {third} [a]"]
    assert not any("out of memory?" in m for m in caplog.messages)


def test_a_loader_bug_on_hup_is_logged_with_its_traceback_and_changes_nothing(
    pool: Callable[..., Pool], caplog: pytest.LogCaptureFixture
) -> None:
    p = pool({"a": 1})
    p.step()
    before = p.pids()

    def broken() -> PoolConfig:
        raise KeyError("a bug in the loader")

    p.master._load_config = broken
    p.signal(signal.SIGHUP)
    p.step(0.01)
    [record] = [r for r in caplog.records if "keeping the old config" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert p.pids() == before and p.master.generation == 0
    assert not any("replacing every worker" in m for m in caplog.messages)


def test_the_deadline_counts_from_when_term_arrived_not_when_the_loop_saw_it(
    pool: Callable[..., Pool],
) -> None:
    p = pool({"a": 1}, shutdown_timeout=10.0)
    p.step()
    arrived = p.clock.now
    p.master.note_arrival(signal.SIGTERM)  # the handler runs while the loop is in a Redis call
    p.clock.advance(1.5)  # ... which returns 1.5 s later
    p.signal(signal.SIGTERM)
    assert p.master.shutdown is not None
    assert p.master.shutdown.deadline == pytest.approx(arrived + 10 - 1)
    assert p.master.janitor.deadline == pytest.approx(arrived + 10 - 0.5)
