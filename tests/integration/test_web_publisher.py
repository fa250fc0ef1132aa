"""The pool publisher against a real Redis: the state key, its expiry, samples and /metrics."""

from __future__ import annotations

import json
import urllib.request

import pytest
import redis

from pyresque.pool.publisher import GroupState, MasterView, PoolPublisher, WorkerState
from pyresque.store.operations import Store
from pyresque.wire.keys import Keys
from tests.integration.web_seed import push

pytest.importorskip("prometheus_client")


def view(**changes: object) -> MasterView:
    base: dict[str, object] = {
        "host": "box",
        "pid": 4242,
        "app": "shop",
        "config_source": "resque-pool.yml",
        "started_at": 1_800_000_000.0,
        "groups": (GroupState("mail", 2, 2), GroupState("crashy", 1, 0, backoff=3.2)),
        "workers": (WorkerState(11, "mail", "running", 30 << 20, 20 << 20),),
        "memory_limit": 512 << 20,
        "restarts": 7,
    }
    base.update(changes)
    return MasterView(**base)  # type: ignore[arg-type]


def test_tick_publishes_state_that_expires_and_samples(r: redis.Redis) -> None:
    store = Store(r, Keys("resque"))
    push(r, "mail", "Echo", 1)
    publisher = PoolPublisher(store, period=5.0)
    publisher.tick(1_800_000_100.0, view())
    state = json.loads(r.get("resque:pool:box:4242"))
    assert state["groups"][1] == {"name": "crashy", "desired": 1, "running": 0, "backoff": 3.2}
    assert state["workers"][0]["uss"] == 30 << 20 and state["restarts"] == 7
    assert 0 < r.ttl("resque:pool:box:4242") <= 15
    assert r.zrange("resque:pools", 0, -1) == [b"box:4242"]
    minute = 1_800_000_100 // 60
    assert r.hgetall(f"resque:metrics:queues:{minute}") == {b"mail": b"1"}
    assert r.ttl(f"resque:metrics:queues:{minute}") > 3600
    publisher.tick(1_800_000_101.0, view(restarts=8))  # within the period: nothing written
    assert json.loads(r.get("resque:pool:box:4242"))["restarts"] == 7
    r.delete("resque:pool:box:4242")  # as when the key expires after the master died
    assert store.dashboard.pool_states() == {} and r.zcard("resque:pools") == 0
    publisher.tick(1_800_000_106.0, view())
    publisher.close()
    assert r.get("resque:pool:box:4242") is None


def test_metrics_port_answers_from_the_loop(r: redis.Redis) -> None:
    publisher = PoolPublisher(Store(r, Keys("resque")), metrics_port=0, metrics_host="127.0.0.1")
    try:
        publisher.tick(1_800_000_100.0, view())
        port = publisher.metrics_port
        assert port and publisher.wait_fds()
        import threading

        body: list[bytes] = []
        fetch = threading.Thread(
            target=lambda: body.append(
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            )
        )
        fetch.start()
        from tests.helpers import wait_until

        def served() -> bool:
            publisher.serve_pending()
            return bool(body)

        wait_until(served, 5)
        fetch.join()
        text = body[0].decode()
        assert 'pyresque_pool_backoff_seconds{group="crashy",pool="box:4242"} 3.2' in text
        assert 'pyresque_pool_worker_uss_bytes{group="mail",pid="11",pool="box:4242"}' in text
        assert 'pyresque_pool_memory_limit_bytes{pool="box:4242"} 5.36870912e+08' in text
        assert 'pyresque_pool_workers{group="mail",pool="box:4242",state="desired"} 2.0' in text
    finally:
        publisher.close()


def test_pools_page_shows_every_published_pool(r: redis.Redis) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from pyresque.web.app import create_app

    store = Store(r, Keys("resque"))
    PoolPublisher(store).tick(1_800_000_100.0, view())
    PoolPublisher(store).tick(1_800_000_100.0, view(host="other", pid=7, app="<b>x</b>"))
    with TestClient(create_app(store=store)) as web:
        page = web.get("/pools").text
    assert "shop on box" in page and "&lt;b&gt;x&lt;/b&gt; on other" in page
    assert "respawn in 3.2 s" in page and "512.0 MB" in page and "30.0 MB" in page
