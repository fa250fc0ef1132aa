"""The scheduler on a real 3-node Redis Cluster with a hash-tagged namespace: every script and
pipeline it sends keeps to the namespace's slot."""

from __future__ import annotations

import time
from typing import Any

from redis.cluster import RedisCluster

from pyresque.jobs.client import Client
from pyresque.jobs.registry import Registry
from pyresque.scheduler.delayed import Delayed
from pyresque.scheduler.recurring import parse_entry
from pyresque.scheduler.service import SchedulerService
from pyresque.scheduler.store import ScheduleStore
from pyresque.wire.keys import Keys
from tests.integration.test_cluster import NS, cluster, cluster_url  # noqa: F401 - fixtures


def _noop(*_args: Any) -> None:
    return None


def test_delayed_jobs_and_the_scheduler_on_a_cluster(cluster: RedisCluster) -> None:  # noqa: F811
    registry = Registry()
    registry.register("SomeJob", _noop, "mail")
    now = [time.time()]
    api = Delayed(Client(cluster, namespace=NS, registry=registry), lambda: now[0])  # type: ignore[arg-type]
    ts = int(now[0]) + 60
    api.enqueue_at(ts, "SomeJob", 1)
    api.enqueue_at(ts, "SomeJob", 2)
    api.enqueue_at(ts + 1, "SomeJob", 3)
    assert api.remove_delayed("SomeJob", 3) == 1
    assert api.count() == 2
    store = ScheduleStore(cluster, Keys(NS))  # type: ignore[arg-type]
    service = SchedulerService(store, registry=registry, clock=lambda: now[0])
    service.tick(now[0])
    assert service.lock.held
    store.set_persistent_schedule("dyn", '{"class":"SomeJob","every":"10s","queue":"dyn"}')
    now[0] = ts + 5.0
    service.tick(now[0])  # moves the due jobs, reads the changed dynamic schedule
    assert cluster.lrange(f"{NS}:queue:mail", 0, -1) == [
        b'{"class":"SomeJob","args":[1]}',
        b'{"class":"SomeJob","args":[2]}',
    ]
    assert service.schedule.entries == {
        "dyn": parse_entry("dyn", {"class": "SomeJob", "every": "10s", "queue": "dyn"})
    }
    now[0] += 10
    service.tick(now[0])
    assert cluster.llen(f"{NS}:queue:dyn") == 1
    assert cluster.hexists(f"{NS}:delayed:last_enqueued_at", "dyn")
    service.stop()
    assert cluster.get(f"{NS}:{NS}:resque_scheduler_master_lock") is None
