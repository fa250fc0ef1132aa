"""Bulk enqueue: the bytes and hooks of single enqueues, in one round trip."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import redis

import pyresque
from pyresque.jobs.registry import Registry


class Audited:
    queue = "mail"
    seen: ClassVar[list[str]] = []

    @staticmethod
    def perform(n: int) -> None: ...

    @staticmethod
    def before_enqueue(n: int) -> bool:
        Audited.seen.append(f"before {n}")
        return n != 13  # thirteen is cancelled

    @staticmethod
    def after_enqueue(n: int) -> None:
        Audited.seen.append(f"after {n}")


@pytest.fixture
def client(r: redis.Redis) -> pyresque.Client:
    registry = Registry()
    registry.register("Audited", Audited)
    Audited.seen = []
    return pyresque.Client(r, namespace="resque", registry=registry)


def test_a_batch_writes_the_bytes_single_enqueues_write(
    r: redis.Redis, client: pyresque.Client
) -> None:
    client.enqueue("Audited", 1)
    client.enqueue_to("other", "Ruby::Job", {"x": 1.0e20}, "é")
    single = {q: r.lrange(f"resque:queue:{q}", 0, -1) for q in ("mail", "other")}
    r.flushall()
    with client.batch() as batch:
        batch.enqueue("Audited", 1)
        batch.enqueue_to("other", "Ruby::Job", {"x": 1.0e20}, "é")
    assert {q: r.lrange(f"resque:queue:{q}", 0, -1) for q in ("mail", "other")} == single
    assert r.smembers("resque:queues") == {b"mail", b"other"}


def test_hooks_run_as_for_single_enqueues_and_a_false_cancels(
    client: pyresque.Client, r: redis.Redis
) -> None:
    assert client.enqueue_many("Audited", [[12], [13], [14]]) == 2
    assert Audited.seen == ["before 12", "before 13", "before 14", "after 12", "after 14"]
    assert r.lrange("resque:queue:mail", 0, -1) == [
        b'{"class":"Audited","args":[12]}',
        b'{"class":"Audited","args":[14]}',
    ]


def test_a_block_left_by_an_exception_pushes_nothing(
    client: pyresque.Client, r: redis.Redis
) -> None:
    with pytest.raises(RuntimeError), client.batch() as batch:
        batch.enqueue("Audited", 1)
        raise RuntimeError("the caller changed its mind")
    assert r.llen("resque:queue:mail") == 0


def test_large_batches_go_in_chunks_and_keep_their_order(
    client: pyresque.Client, r: redis.Redis
) -> None:
    n = 2500
    assert client.enqueue_many("Audited", ([i] for i in range(n))) == n - 1  # 13 is cancelled
    items = r.lrange("resque:queue:mail", 0, -1)
    assert len(items) == n - 1 and items[0].endswith(b"[0]}") and items[-1].endswith(b"[2499]}")
    assert [int(x.rsplit(b"[", 1)[1][:-2]) for x in items] == [i for i in range(n) if i != 13]


def test_a_batch_wakes_idle_workers_once_per_queue(client: pyresque.Client, r: redis.Redis) -> None:
    sub: Any = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("resque:wakeup")
    sub.get_message(timeout=1)
    client.enqueue_many("Audited", [[1], [2], [3]])
    names = []
    while (message := sub.get_message(timeout=0.5)) is not None:
        names.append(message["data"])
    assert names == [b"mail"]
    sub.close()
