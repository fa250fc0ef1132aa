"""Workers, pool, CLI and client through a ``redis+sentinel://`` URL, and failover under load.

A real master, replica and three sentinels (harness/sentinels.py); jobs count themselves in the
suite's private Redis, which no fault touches (harness/ledger.py). The figures of each failover are
printed (``pytest -s``) and summarised in docs/guarantees.md.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

import pyresque
from harness import APP_DIR as LEDGER_APP_DIR
from harness.ledger import DONE, JOB, QUEUE, Feeder, tally, wait_drained
from harness.redis_server import RedisServer
from harness.sentinels import SentinelCluster, sentinel_cluster, start_sentinel_cluster
from pyresque.store.connection import connect
from pyresque.store.sentinel import NotReplicated, durable
from tests.helpers import Proc, wait_until

Spawn = Callable[..., Proc]
FAST_PRUNE = {"RESQUE_HEARTBEAT_INTERVAL": "1", "RESQUE_PRUNE_INTERVAL": "3"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[SentinelCluster]:
    c = start_sentinel_cluster()
    yield c
    c.stop()


@pytest.fixture
def jobs(cluster: SentinelCluster) -> Iterator[redis.Redis]:
    """The jobs' Redis through the sentinels, settled and emptied before each test."""
    for port, proc in cluster.servers.items():
        if proc.poll() is not None:
            cluster.restart_server(port)
    cluster.wait_settled()
    client = connect(cluster.url)
    client.flushdb()
    yield client
    client.close()


def env_for(cluster: SentinelCluster, redis_server: RedisServer, **extra: str) -> dict[str, str]:
    """The jobs' Redis through the sentinels, the ledger, and the ledger's job app importable."""
    return {
        "REDIS_URL": cluster.url,
        "LEDGER_URL": redis_server.url,
        "PYTHONPATH": str(LEDGER_APP_DIR),
        **extra,
    }


def done_ids(r: redis.Redis) -> list[int]:
    return sorted(int(e.split()[0]) for e in r.lrange(DONE, 0, -1))


def start_pool(spawn: Spawn, tmp_path: Path, env: dict[str, str], workers: int = 2) -> Proc:
    config = tmp_path / "pool.yml"
    config.write_text(f"{QUEUE}: {workers}\n")
    return spawn("pool", "--config", str(config), "--app", "ledgerapp", env=env, name="pool")


def test_worker_pool_cli_and_client_through_a_sentinel_url(
    cluster: SentinelCluster,
    jobs: redis.Redis,
    r: redis.Redis,
    redis_server: RedisServer,
    spawn: Spawn,
    tmp_path: Path,
) -> None:
    client = pyresque.Client(url=cluster.url, namespace="resque")
    for i in range(3):
        client.enqueue_to(QUEUE, JOB, i, 0)
    assert jobs.llen(f"resque:queue:{QUEUE}") == 3  # on the master the sentinels name
    env = env_for(cluster, redis_server)
    worker = spawn("work", "--queues", QUEUE, "--app", "ledgerapp", "--burst", env=env)
    assert worker.wait(20) == 0, worker.log()
    assert done_ids(r) == [0, 1, 2]

    status = spawn("status", "--json", env=env, name="status")
    assert status.wait(20) == 0, status.log()
    assert json.loads(status.log())["queues"] == [{"name": QUEUE, "size": 0}]

    pool = start_pool(spawn, tmp_path, env)
    wait_until(lambda: jobs.scard("resque:workers") == 2, 20)
    for i in range(3, 6):
        client.enqueue_to(QUEUE, JOB, i, 0)
    wait_until(lambda: done_ids(r) == list(range(6)), 20)
    pool.signal(signal.SIGTERM)
    assert pool.wait(20) == 0, pool.log()
    assert jobs.scard("resque:workers") == 0


def run_failover_under_load(
    cluster: SentinelCluster,
    url: str,
    r: redis.Redis,
    redis_server: RedisServer,
    spawn: Spawn,
    tmp_path: Path,
    fault: str,
) -> tuple[str, object, float]:
    """A pool working a stream of jobs; ``fault`` ('failover' or 'kill') mid-load; then drain.

    Returns (figures line, tally, seconds from the fault until a job enqueued after it ran)."""
    env = env_for(cluster, redis_server, **FAST_PRUNE)
    env["REDIS_URL"] = url
    pool = start_pool(spawn, tmp_path, env)
    jobs = connect(url)
    wait_until(lambda: jobs.scard("resque:workers") == 2, 20)
    feeder = Feeder(url, seconds=0.01, depth=10)
    feeder.start()
    wait_until(lambda: r.llen(DONE) >= 50, 30)
    began = time.monotonic()
    old, new = cluster.failover() if fault == "failover" else cluster.kill_master()
    if fault == "kill":  # its supervisor restarts it; it comes back as a replica of the new one
        cluster.restart_server(old)
    mark = len(feeder.confirmed)
    wait_until(lambda: any(i > mark + 5 for i in done_ids(r)), 60)
    recovered = time.monotonic() - began
    target = r.llen(DONE) + 100
    wait_until(lambda: r.llen(DONE) >= target, 60)
    feeder.finish()
    assert wait_drained(lambda: jobs, 30), "queue or in-flight jobs left after the failover"
    figures = tally(r, jobs, feeder.confirmed)
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0, pool.log()[-3000:]
    line = (
        f"{fault} {old}->{new} ({url.rsplit('?', 1)[-1] if '?' in url else 'async'}): "
        f"{figures.line()}; enqueue errors {feeder.errors}; jobs flowing again after "
        f"{recovered:.1f} s"
    )
    print(line)
    return line, figures, recovered


@pytest.mark.parametrize("fault", ["failover", "kill"])
def test_failover_mid_load_durable_mode_loses_nothing(
    cluster: SentinelCluster,
    jobs: redis.Redis,
    r: redis.Redis,
    redis_server: RedisServer,
    spawn: Spawn,
    tmp_path: Path,
    fault: str,
) -> None:
    """With ``?wait=1`` every job whose enqueue returned runs at least once, across a failover."""
    url = f"{cluster.url}?wait=1&wait_timeout=200"
    _line, figures, _seconds = run_failover_under_load(
        cluster, url, r, redis_server, spawn, tmp_path, fault
    )
    assert figures.lost == []  # type: ignore[attr-defined]
    assert figures.failed == 0  # type: ignore[attr-defined]


def test_failover_mid_load_async_mode_is_measured(
    cluster: SentinelCluster,
    jobs: redis.Redis,
    r: redis.Redis,
    redis_server: RedisServer,
    spawn: Spawn,
    tmp_path: Path,
) -> None:
    """Without WAIT the last writes may vanish: the pool must still recover and drain, and
    nothing may be left stuck; the lost and duplicated counts are printed for the docs."""
    _line, figures, _seconds = run_failover_under_load(
        cluster, cluster.url, r, redis_server, spawn, tmp_path, "failover"
    )
    assert figures.performed > 0  # type: ignore[attr-defined]


def test_durable_mode_refuses_to_confirm_a_write_no_replica_holds(r: redis.Redis) -> None:
    """Without a replica, WAIT 1 times out: the write is on the master, but the caller is told it
    may not survive a failover (a RedisError: retry loops treat it like a lost reply)."""
    client = durable(r, replicas=1, wait_timeout_ms=50)
    with pytest.raises(NotReplicated, match="0 of 1 replicas"):
        pyresque.Client(client, namespace="resque").enqueue_to(QUEUE, JOB, 1, 0)
    assert r.llen(f"resque:queue:{QUEUE}") == 1
    assert isinstance(NotReplicated("x"), redis.RedisError)
    assert client.llen(f"resque:queue:{QUEUE}") == 1  # reads do not wait
    assert durable(r, replicas=0).rpush("plain", 1) == 1  # zero replicas: no WAIT at all


def test_password_in_a_sentinel_url_reaches_the_servers_and_no_log(
    r: redis.Redis, redis_server: RedisServer, spawn: Spawn, tmp_path: Path
) -> None:
    secret = "s3cret-sentinel-pw"
    with sentinel_cluster(password=secret) as cluster:
        url = cluster.url.replace("redis+sentinel://", f"redis+sentinel://:{secret}@")
        client = pyresque.Client(url=url, namespace="resque")
        client.enqueue_to(QUEUE, JOB, 7, 0)
        env = {**env_for(cluster, redis_server), "REDIS_URL": url}
        worker = spawn("work", "--queues", QUEUE, "--app", "ledgerapp", "--burst", "-v", env=env)
        assert worker.wait(20) == 0, worker.log()
        assert done_ids(r) == [7]
        status = spawn("status", env=env, name="status")
        assert status.wait(20) == 0, status.log()
        for proc in (worker, status):
            assert secret not in proc.log()
        assert f"redis+sentinel://:***@{cluster.url_hosts}/mymaster/0" in status.log()
