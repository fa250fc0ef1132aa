"""Finding the namespaces of a Redis, for a command given one that holds nothing (issue 25)."""

from __future__ import annotations

import redis

from pyresque.store.operations import Store
from pyresque.wire.keys import Keys, namespace_of


def test_namespace_of_a_marker_key() -> None:
    assert namespace_of("resque:queues") == "resque"
    assert namespace_of("app:resque:workers") == "app:resque"
    assert namespace_of("queues") == ""
    assert namespace_of("{shop}:stat:processed") == "{shop}"
    assert namespace_of("resque:queue:mail") is None
    assert namespace_of("resque:somequeues") is None


def test_an_empty_namespace_and_the_ones_that_hold_resque_keys(r: redis.Redis) -> None:
    r.sadd("resque:queues", "mail")
    r.sadd("shop:workers", "h:1:q")
    r.set("other:stat:processed", 3)
    r.set("queues-but-not-resque", 1)
    r.sadd("queues", "bare")  # Resque without a namespace
    r.rpush("resque:queue:queues", "{}")  # a queue named "queues" is no namespace
    typo = Store(r, Keys("nc-typo"))
    assert typo.dashboard.namespace_is_empty()
    assert not Store(r, Keys("resque")).dashboard.namespace_is_empty()
    assert typo.dashboard.resque_namespaces() == ["", "other", "resque", "shop"]
    assert Store(r, Keys("re[s]que")).dashboard.namespace_is_empty()  # a glob is taken literally
