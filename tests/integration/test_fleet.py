"""Many hosts, one Redis: pools on simulated hosts (harness/fleet.py) sharing one queue.

A host that dies has its in-flight jobs put back by the other hosts once its heartbeats expire,
and never while it lives. A host that was only partitioned and comes back finishes the job it was
running, which another host meanwhile took over and ran too: that duplicate is at-least-once
delivery, counted here and documented in docs/guarantees.md; the late host's acknowledgement
counts nothing and it goes on working. Recovery times are printed (``pytest -s``).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

import pyresque
from harness.fleet import Fleet, Host, namespaces_unavailable
from harness.ledger import DONE, JOB, QUEUE, STARTED, wait_drained
from harness.redis_server import RedisServer
from tests.helpers import wait_until

UNAVAILABLE = namespaces_unavailable()
pytestmark = pytest.mark.skipif(
    UNAVAILABLE is not None, reason=f"no simulated hosts: {UNAVAILABLE}"
)

HEARTBEAT, PRUNE = 1, 3  # RESQUE_HEARTBEAT_INTERVAL, RESQUE_PRUNE_INTERVAL (seconds)


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    f = Fleet(2)
    yield f
    f.close()


def start_pool(fleet: Fleet, host: Host, ledger: RedisServer, tmp_path: Path, workers: int) -> None:
    config = tmp_path / f"{host.name}.yml"
    config.write_text(f"{QUEUE}: {workers}\n")
    env = {
        "REDIS_URL": fleet.url_for(host),
        "LEDGER_URL": ledger.url,
        "RESQUE_HEARTBEAT_INTERVAL": str(HEARTBEAT),
        "RESQUE_PRUNE_INTERVAL": str(PRUNE),
    }
    host.run(["pool", "--config", str(config), "--app", "ledgerapp"], env, tmp_path / "pools.log")
    wait_until(lambda: len(workers_on(fleet.client(), host)) == workers, 20)


def workers_on(jobs: redis.Redis, host: Host) -> list[str]:
    return [w.decode() for w in jobs.smembers("resque:workers") if w.startswith(host.name.encode())]


def entries(r: redis.Redis, key: str) -> list[tuple[int, str]]:
    return [(int(e.split()[0]), e.split()[1].decode()) for e in r.lrange(key, 0, -1)]


def in_flight_on(jobs: redis.Redis, host: Host) -> int:
    return sum(
        jobs.hlen(k) and len([f for f in jobs.hkeys(k) if f])
        for k in jobs.scan_iter(f"resque:inflight:{host.name}:*")
    )


def hold_for(seconds: float, check: Callable[[], bool], what: str) -> None:
    """``check`` stays true for ``seconds`` (polled): an observation window, not a wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(0.05)


def test_dead_host_jobs_are_put_back_by_the_others_after_expiry_never_before(
    fleet: Fleet, r: redis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    a, b = fleet.hosts
    jobs = fleet.client()
    start_pool(fleet, a, redis_server, tmp_path, workers=2)
    client = pyresque.Client(jobs, namespace="resque")
    for i in range(2):
        client.enqueue_to(QUEUE, JOB, i, 20)  # still running when host a is killed
    wait_until(lambda: sorted(entries(r, STARTED)) == [(0, a.name), (1, a.name)], 20)
    start_pool(fleet, b, redis_server, tmp_path, workers=2)

    # host a lives: b's pool prunes every second and must leave a's jobs alone
    hold_for(PRUNE + 2 * HEARTBEAT, lambda: in_flight_on(jobs, a) == 2, "a live host was pruned")
    assert len(workers_on(jobs, a)) == 2

    killed_at = time.monotonic()
    assert a.kill() >= 5  # master, 2 workers, 2 job children
    wait_until(lambda: sum(h == b.name for _i, h in entries(r, STARTED)) == 2, PRUNE + 15)
    recovery = time.monotonic() - killed_at
    print(
        f"host killed: both jobs running again on the other host after {recovery:.2f} s "
        f"(RESQUE_HEARTBEAT_INTERVAL={HEARTBEAT}, RESQUE_PRUNE_INTERVAL={PRUNE})"
    )
    # the last beat was at most HEARTBEAT old at the kill, and beats are stamped in whole
    # seconds (Resque's format): the expiry cannot come sooner than PRUNE - HEARTBEAT - 1
    assert recovery > PRUNE - HEARTBEAT - 1
    assert workers_on(jobs, a) == []
    assert in_flight_on(jobs, a) == 0
    beating = [k.decode() for k in jobs.hkeys("resque:workers:heartbeat")]
    assert beating and all(k.startswith(f"{b.name}:") for k in beating)


def test_partitioned_host_that_comes_back_duplicates_only_the_job_it_was_running(
    fleet: Fleet, r: redis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    a, b = fleet.hosts
    jobs = fleet.client()
    start_pool(fleet, a, redis_server, tmp_path, workers=1)
    client = pyresque.Client(jobs, namespace="resque")
    client.enqueue_to(QUEUE, JOB, 0, 10)  # still running when the long partition starts
    wait_until(lambda: entries(r, STARTED) == [(0, a.name)], 20)
    start_pool(fleet, b, redis_server, tmp_path, workers=1)

    # a partition shorter than the expiry changes nothing
    (worker_a,) = workers_on(jobs, a)
    beat = jobs.hget("resque:workers:heartbeat", worker_a)
    a.partition()
    hold_for(1.0, lambda: in_flight_on(jobs, a) == 1, "taken over before expiry")
    a.heal()
    # measure the long cut from a fresh beat: a beat after the heal, so that the cut, not the
    # short partition, starts the expiry
    wait_until(lambda: jobs.hget("resque:workers:heartbeat", worker_a) != beat, 10)
    beat = jobs.hget("resque:workers:heartbeat", worker_a)
    wait_until(lambda: jobs.hget("resque:workers:heartbeat", worker_a) != beat, 10)

    cut_at = time.monotonic()
    a.partition()
    wait_until(lambda: (0, b.name) in entries(r, STARTED), PRUNE + 15)
    takeover = time.monotonic() - cut_at
    a.heal()
    assert takeover > PRUNE - HEARTBEAT - 1  # not before its heartbeat expired
    for i in range(1, 4):  # work after the partition: each job runs once
        client.enqueue_to(QUEUE, JOB, i, 0)
    wait_until(lambda: len(entries(r, DONE)) == 5, 30)
    assert wait_drained(lambda: jobs, 20)
    wait_until(lambda: len(workers_on(jobs, a)) == 1, 10)  # a's worker registered again

    performs = collections.Counter(i for i, _h in entries(r, DONE))
    assert performs == {0: 2, 1: 1, 2: 1, 3: 1}  # job 0: on a (cut off) and on b
    # a's late acknowledgement of job 0 counted nothing: 5 performs, 4 processed
    assert int(jobs.get("resque:stat:processed") or 0) == 4
    print(
        f"partition: job taken over {takeover:.2f} s after the cut; the partitioned host "
        f"finished it too: 1 duplicate (RESQUE_PRUNE_INTERVAL={PRUNE})"
    )
