"""pyresque on a real 3-node Redis Cluster, with a hash-tagged namespace: every script declares its
keys, and under ``{resque}`` they all land in one slot."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.cluster import RedisCluster

import pyresque
from harness.redis_server import find_redis_server
from pyresque.store.operations import Ack, Reservation, Store
from pyresque.wire import protocol
from pyresque.wire.keys import Keys
from pyresque.wire.protocol import Failure
from tests.helpers import Proc, wait_until

Spawn = Callable[..., Proc]
NS = "{resque}"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    """Ports whose cluster bus port (10,000 higher) is free too, so at most 55535."""
    ports: list[int] = []
    for candidate in random.sample(range(20000, 45000), 200):
        if _free(candidate) and _free(candidate + 10000):
            ports.append(candidate)
            if len(ports) == n:
                return ports
    raise RuntimeError("no free ports for a cluster")


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli is not installed: it is what creates the cluster")
    directory = tempfile.mkdtemp(prefix="pyresque-cluster-")
    ports = free_ports(3)
    procs = []
    try:
        for port in ports:
            node_dir = os.path.join(directory, str(port))
            os.mkdir(node_dir)
            procs.append(
                subprocess.Popen(
                    [
                        find_redis_server(),
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        node_dir,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            wait_until(lambda p=port: _pings(p), 10)
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        wait_until(lambda: all(_cluster_ok(p) for p in ports), 20)
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port).ping())
    except redis.ConnectionError:
        return False


def _cluster_ok(port: int) -> bool:
    return bool(redis.Redis(port=port).cluster("info").get("cluster_state") == "ok")


@pytest.fixture
def cluster(cluster_url: str) -> Iterator[RedisCluster]:
    client = pyresque.store.connection.connect(cluster_url)
    assert isinstance(client, RedisCluster)
    for key in client.keys(f"{NS}:*", target_nodes=RedisCluster.ALL_NODES):
        client.delete(key)
    yield client
    client.close()


def test_the_scripts_run_on_a_cluster(cluster: RedisCluster) -> None:
    store = Store(cluster, Keys(NS))  # type: ignore[arg-type]
    store.push("a", '{"class":"Echo","args":[1]}')
    store.push("b", '{"class":"Echo","args":[2]}')
    first = store.cycle("h:1:a,b", time.time(), queues=["a", "b"], token="t.1")
    assert isinstance(first, Reservation) and first.queue == "a"
    assert store.requeue("h:1:a,b", "a", first.payload, count_delivery=True) == "requeued"
    again = store.cycle("h:1:a,b", time.time(), queues=["a", "b"], token="t.2")
    assert isinstance(again, Reservation) and again.deliveries == 1
    record = protocol.failure_record(again.payload, Failure("E", "x"), "h:1:a,b", "a", 0.0)
    store.cycle("h:1:a,b", time.time(), ack=Ack(again, record))
    assert store.failures() == [record]
    assert store.retry_failure(0, time.time()) == "a"
    assert store.prune_redeliveries() == 0
    assert store.remove_failure(0)


@pytest.mark.parametrize("mode", ["fork", "in-process"])
def test_a_worker_works_a_cluster(
    cluster: RedisCluster, cluster_url: str, spawn: Spawn, mode: str
) -> None:
    client = pyresque.Client(cluster, namespace=NS)  # type: ignore[arg-type]
    client.enqueue_to("oracle", "Echo", "one")
    client.enqueue_to("oracle", "Boom", "two")
    extra = ["--in-process"] if mode == "in-process" else []
    env = {"REDIS_URL": cluster_url, "RESQUE_NAMESPACE": NS, "TEST_REDIS_URL": cluster_url}
    proc = spawn("work", "--queues", "oracle", "--app", "clusterapp", *extra, env=env)
    wait_until(lambda: cluster.llen(f"{NS}:failed") == 1, 15)
    client.enqueue_to("oracle", "Echo", "pushed later")  # taken by the blocking move at once
    wait_until(
        lambda: cluster.lrange(f"{NS}:test:done", 0, -1) == [b'["one"]', b'["pushed later"]'], 10
    )
    [record] = [json.loads(v) for v in cluster.lrange(f"{NS}:failed", 0, -1)]
    assert record["exception"] == "clusterapp.BoomError"
    wait_until(lambda: cluster.get(f"{NS}:stat:processed") == b"3", 5)  # the last ack follows
    proc.signal(15)
    assert proc.wait(10) == 0, proc.log()
    assert cluster.smembers(f"{NS}:workers") == set()
