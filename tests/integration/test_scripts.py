"""The server-side scripts on their own: declared keys, redelivery memory, atomic retry, metrics."""

from __future__ import annotations

import hashlib
import random
import time

import redis

from pyresque.store.operations import Ack, Reservation, Store, read_reply
from pyresque.wire import protocol
from pyresque.wire.jobmetrics import METRICS_TTL, MetricsBatch, bucket_of
from pyresque.wire.protocol import Failure
from pyresque.wire.scripts import UTC_TEXT


def payload(arg: object) -> str:
    return protocol.encode_payload("Echo", [arg])


def test_stale_redelivery_counts_are_forgotten_fresh_ones_kept(
    r: redis.Redis, store: Store
) -> None:
    now = int(store.server_time())
    r.hset(
        "resque:redeliveries",
        mapping={"old": f"2 {now - 90_000}", "fresh": f"1 {now - 60}", "legacy": "2"},
    )
    assert store.prune_redeliveries() == 1
    entries = {k.decode(): v.decode() for k, v in r.hgetall("resque:redeliveries").items()}
    assert set(entries) == {"fresh", "legacy"}
    count, at = entries["legacy"].split()  # an entry without a time ages from now
    assert count == "2" and abs(int(at) - now) < 5


def test_a_redelivered_job_keeps_counting_after_the_format_change(
    r: redis.Redis, store: Store
) -> None:
    job = payload("crashes")
    r.hset("resque:redeliveries", hashlib.sha1(job.encode()).hexdigest(), "1")  # older format
    store.push("q", job)
    res = store.cycle("w:1:q", time.time(), queues=["q"])
    assert isinstance(res, Reservation) and res.deliveries == 1
    outcome = store.requeue("w:1:q", "q", job, count_delivery=True, max_deliveries=3)
    assert outcome == "requeued"
    assert r.hget("resque:redeliveries", res.sha).split()[0] == b"2"


def test_retry_applies_only_to_the_record_it_read(r: redis.Redis, store: Store) -> None:
    record = protocol.failure_record(payload(1), Failure("E", "boom"), "w:1:q", "q", 0.0)
    r.rpush("resque:failed", record)
    # a concurrent change between the read and the write: the script refuses it
    stale = store._retry_failure(
        keys=["resque:failed", "resque:queues", "resque:queue:q"],
        args=[0, "not the record", "new", payload(1), "q", "resque:wakeup"],
    )
    assert stale == 0
    assert r.lindex("resque:failed", 0) == record.encode()
    assert r.llen("resque:queue:q") == 0
    assert store.retry_failure(0, time.time()) == "q"
    assert "retried_at" in protocol.decode_failure(r.lindex("resque:failed", 0) or b"")
    assert r.lrange("resque:queue:q", 0, -1) == [payload(1).encode()]


def test_a_workers_figures_are_written_in_one_pipeline_per_minute(
    r: redis.Redis, store: Store
) -> None:
    batch = MetricsBatch()
    now = 60 * 29_000_000 + 59.5  # the last half second of a minute
    batch.add("Echo", 0.012, False, now)
    batch.add("Echo", 0.3, True, now)
    batch.add("Other", 2.0, False, now + 1)  # the next minute
    figures = batch.take(time.monotonic())
    assert [f.minute for f in figures] == [29_000_000, 29_000_001]
    store.record_metrics(figures)
    key = "resque:metrics:jobs:29000000"
    fields = {k.decode(): int(v) for k, v in r.hgetall(key).items()}
    assert fields == {
        "Echo|f": 1,
        "Echo|ms": 12 + 300,
        f"Echo|h{bucket_of(12)}": 1,
        f"Echo|h{bucket_of(300)}": 1,
    }
    assert 0 < r.ttl(key) <= METRICS_TTL
    assert r.hgetall("resque:metrics:jobs:29000001") == {
        b"Other|ms": b"2000",
        f"Other|h{bucket_of(2000)}".encode(): b"1",
    }
    store.record_metrics(batch.take(time.monotonic()))  # nothing pending: nothing sent
    assert fields == {k.decode(): int(v) for k, v in r.hgetall(key).items()}


def test_a_stale_acknowledgement_applies_nothing(r: redis.Redis, store: Store) -> None:
    store.push("q", payload(1))
    first = store.cycle("w:1:q", time.time(), queues=["q"])
    assert isinstance(first, Reservation)
    r.set("resque:retry:x", "2")
    # an acknowledgement whose token no longer matches applies nothing: no failure recorded, no
    # count, no key deleted
    stale = Reservation(first.queue, first.payload, 0, "old-token")
    record = protocol.failure_record(first.payload, Failure("E", "x"), "w:1:q", "q", time.time())
    store.cycle("w:1:q", time.time(), ack=Ack(stale, record, forget="resque:retry:x"))
    assert r.llen("resque:failed") == 0
    assert r.get("resque:stat:processed") is None and r.get("resque:stat:failed") is None
    assert r.get("resque:retry:x") == b"2"
    assert store.inflight("w:1:q") == {"q": first.payload}


def test_a_failure_and_a_key_to_delete_ride_with_one_acknowledgement(
    r: redis.Redis, store: Store
) -> None:
    for i in range(3):
        store.push("q", payload(i))
    first = store.cycle("w:1:q", time.time(), queues=["q"], token="t.1")
    assert isinstance(first, Reservation)
    r.set("resque:retry:x", "2")
    record = protocol.failure_record(first.payload, Failure("E", "x"), "w:1:q", "q", time.time())
    second = store.cycle(
        "w:1:q",
        time.time(),
        ack=Ack(first, record, forget="resque:retry:x"),
        queues=["q"],
        token="t.2",
    )
    assert isinstance(second, Reservation) and second.payload == payload(1)
    assert r.lrange("resque:failed", 0, -1) == [record.encode()]
    assert r.get("resque:stat:failed") == b"1" and r.get("resque:stat:failed:w:1:q") == b"1"
    assert r.get("resque:stat:processed") == b"1"
    assert r.get("resque:retry:x") is None
    # a failure not counted (a job killed on request) is recorded, not counted
    third = store.cycle(
        "w:1:q", time.time(), ack=Ack(second, record, count_failed=False), queues=["q"], token="t.3"
    )
    assert isinstance(third, Reservation) and third.payload == payload(2)
    assert r.llen("resque:failed") == 2 and r.get("resque:stat:failed") == b"1"
    assert store.inflight("w:1:q") == {"q": payload(2)}


def test_the_in_flight_index_keeps_a_worker_while_it_holds_a_token(
    r: redis.Redis, store: Store
) -> None:
    for i in range(3):
        store.push("q", payload(i))
    index = "resque:inflight-workers"
    first = store.cycle("w:1:q", time.time(), queues=["q"], token="t.1")
    assert isinstance(first, Reservation)
    assert r.smembers(index) == {b"w:1:q"}  # reserving into an empty hash lists the worker
    store.forget_inflight_owner("w:1:q")  # it holds a job: it stays
    assert r.smembers(index) == {b"w:1:q"}
    # an acknowledgement by token that reserves again does not list the worker again (it is
    # listed): removed by hand here, it stays out
    r.srem(index, "w:1:q")
    second = store.cycle("w:1:q", time.time(), ack=Ack(first), queues=["q"], token="t.2")
    assert isinstance(second, Reservation)
    assert r.smembers(index) == set()
    r.sadd(index, "w:1:q")
    # a reservation that acknowledges nothing by token lists the worker
    store.cycle("w:1:q", time.time(), ack=Ack(second), queues=None)
    store.forget_inflight_owner("w:1:q")  # hash empty: dropped
    assert r.smembers(index) == set()
    third = store.cycle("w:1:q", time.time(), queues=["q"], token="t.3")
    assert isinstance(third, Reservation)
    assert r.smembers(index) == {b"w:1:q"}
    # a job in the landing list keeps the worker too
    store.cycle("w:1:q", time.time(), ack=Ack(third), queues=None)
    r.rpush("resque:landing:w:1:q", payload(9))
    store.forget_inflight_owner("w:1:q")
    assert r.smembers(index) == {b"w:1:q"}


def test_the_busy_record_is_written_only_for_an_object_payload(
    r: redis.Redis, store: Store
) -> None:
    r.rpush("resque:queue:q", "[1,2]", '{"class":"Echo","args":[]}')
    first = store.cycle("w:1:q", time.time(), queues=["q"])
    assert isinstance(first, Reservation) and first.payload == "[1,2]"
    assert r.get("resque:worker:w:1:q") is None
    store.cycle("w:1:q", time.time(), ack=Ack(first, "{}"), queues=["q"])
    assert b'"payload":{"class":"Echo","args":[]}' in (r.get("resque:worker:w:1:q") or b"")


def test_the_scripts_utc_text_is_run_at_time_to_the_second(r: redis.Redis) -> None:
    """A reservation sent ahead of its job writes ``run_at`` from the server's clock, formatted
    in Lua: it must be the very text the worker writes otherwise."""
    format_all = r.register_script(
        UTC_TEXT + "local out = {} for i, s in ipairs(ARGV) do out[i] = utc_text(tonumber(s)) end"
        " return out"
    )
    rng = random.Random(1)
    edges = [0, 59, 86_399, 86_400, 951_782_400, 951_868_799, 4_107_542_399, 253_402_300_799]
    seconds = edges + [rng.randrange(0, 253_402_300_800) for _ in range(3000)]
    texts = [t.decode() for t in format_all(args=seconds)]
    assert texts == [protocol.run_at_time(s) for s in seconds]


def test_a_cycle_sent_ahead_stamps_the_busy_record_with_the_servers_clock(
    r: redis.Redis, store: Store
) -> None:
    r.rpush("resque:queue:oracle", payload("b"))
    before = int(store.server_time())
    command = store.cycle_ahead("host:2:oracle", ["oracle"], "t.1")
    assert command is not None
    conn = r.connection_pool.get_connection()
    try:
        conn.send_packed_command([command])
        reply = conn.read_response()
    finally:
        r.connection_pool.release(conn)
    assert read_reply(reply, "t.1") == Reservation("oracle", payload("b"), 0, "t.1")
    record = protocol.loads(r.get("resque:worker:host:2:oracle") or b"")
    assert isinstance(record, dict)
    assert record["run_at"] in {protocol.run_at_time(before + d) for d in range(3)}


def test_a_token_is_forgotten_only_while_it_is_alone_and_unchanged(
    r: redis.Redis, store: Store
) -> None:
    key = "resque:inflight:h:1:q"
    r.hset(key, mapping={"": "t.1", "q": payload("a")})
    assert not store.forget_token("h:1:q", "t.1")  # a job beside it: it goes back with the job
    r.hdel(key, "q")
    assert not store.forget_token("h:1:q", "t.2")  # another token than the one read
    assert store.forget_token("h:1:q", "t.1")
    assert not r.exists(key)
