"""Golden tests: what pyresque's Store writes to Redis, against what Ruby Resque 3.0.0 wrote.

The ground truth is ``tests/fixtures/resque-3.0.0`` (see ``tests/ruby_fixtures.py``). Worker ids and
times are chosen to be the fixture's own, so most comparisons are exact; heartbeats carry the Redis
server's clock, so they are checked for format and freshness and then masked. Keys pyresque adds
(``inflight:<id>``, ``inflight-workers``, ``redeliveries``) are left out of comparisons with Ruby's
keyspace and checked on their own.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from pyresque.store.operations import PAUSED, Ack, Reservation, Store
from pyresque.wire import protocol
from pyresque.wire.protocol import Failure
from pyresque.worker import recovery
from pyresque.worker.queues import QueueSelector
from pyresque.worker.recovery import WorkerId, prune_dead_workers
from tests.ruby_fixtures import (
    FAILURE_KEYS,
    HEARTBEAT,
    Command,
    at,
    local_tz,
    mask_times,
    monitor_commands,
    observed,
    tz_available,
)

BUSY_ID = "vm:15355:oracle,other"  # the worker of observed.json
LIFE_ID = "vm:15775:oracle"  # the worker of worker-lifetime-monitor.md
ECHO_ARGS: list[Any] = [1, "two", {"k": 3.5, "n": None}, True, "é ✓", 0]
BOOM_FAILURE = Failure("Oracle::BoomError", 'boom: ["m"]', ["app/jobs.rb:40:in `perform'"])
PYRESQUE_ONLY = re.compile(r"resque:(inflight:.*|inflight-workers|redeliveries)")
ME = WorkerId("testhost", 4242, "oracle")  # the pruning worker: never on the dead workers' host


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Local time is UTC, as in the fixture (failed_at and started are local times)."""
    with local_tz("UTC"):
        yield


def text(value: Any) -> Any:
    """A reply as text (the ``r`` client returns bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def payload(class_name: str, *args: Any) -> str:
    return protocol.encode_payload(class_name, list(args))


def snapshot(r: redis.Redis, *, keep_pyresque_keys: bool = False) -> dict[str, tuple[str, Any]]:
    """Every key as (type, value), heartbeats checked for format and masked."""
    out: dict[str, tuple[str, Any]] = {}
    for raw_key in r.keys("*"):
        key = text(raw_key)
        if PYRESQUE_ONLY.fullmatch(key) and not keep_pyresque_keys:
            continue
        kind = text(r.type(raw_key))
        value: Any
        if kind == "string":
            value = text(r.get(raw_key))
        elif kind == "list":
            value = [text(v) for v in r.lrange(raw_key, 0, -1)]
        elif kind == "set":
            value = sorted(text(v) for v in r.smembers(raw_key))
        elif kind == "hash":
            value = {text(k): text(v) for k, v in r.hgetall(raw_key).items()}
        else:
            raise AssertionError(f"unexpected {kind} at {key}")
        if key == "resque:workers:heartbeat":
            assert all(HEARTBEAT.fullmatch(v) for v in value.values()), value
            value = dict.fromkeys(value, "<heartbeat>")
        out[key] = (kind, value)
    return out


def heartbeat_age(store: Store, worker_id: str) -> float:
    beat = store.heartbeats()[worker_id]
    assert HEARTBEAT.fullmatch(beat), beat
    parsed = protocol.parse_heartbeat(beat)
    assert parsed is not None
    return store.server_time() - parsed


def reserve(store: Store, worker_id: str, queues: list[str], now: float) -> Reservation:
    res = store.cycle(worker_id, now, queues=queues)
    assert isinstance(res, Reservation), res
    return res


# --- enqueue ---------------------------------------------------------------------------------


def test_push_writes_rubys_queue_item_and_queue_set(r: redis.Redis, store: Store) -> None:
    enqueue = observed()["enqueue"]
    store.push("oracle", payload("Echo", *ECHO_ARGS))
    ruby = {c[1]: c[2] for c in enqueue["redis"]}  # SADD queues oracle, RPUSH queue item
    assert snapshot(r) == {
        "resque:queues": ("set", [ruby["resque:queues"]]),
        "resque:queue:oracle": ("list", [ruby["resque:queue:oracle"]]),
    }
    assert r.lindex("resque:queue:oracle", 0) == enqueue["queue_item"].encode("utf-8")


def test_push_appends_and_remembers_every_queue(r: redis.Redis, store: Store) -> None:
    store.push("oracle", payload("A", 1))
    store.push("other", payload("B"))
    store.push("oracle", payload("A", 2))
    assert snapshot(r) == {
        "resque:queues": ("set", ["oracle", "other"]),
        "resque:queue:oracle": ("list", ['{"class":"A","args":[1]}', '{"class":"A","args":[2]}']),
        "resque:queue:other": ("list", ['{"class":"B","args":[]}']),
    }


# --- registering -----------------------------------------------------------------------------


def test_register_worker_writes_rubys_keys(r: redis.Redis, store: Store) -> None:
    busy = observed()["worker_while_busy"]
    store.register_worker(BUSY_ID, at(6, 57, 33))
    assert snapshot(r) == {
        "resque:workers": ("set", busy["resque:workers"]),
        f"resque:worker:{BUSY_ID}:started": (
            "string",
            busy[f"resque:worker:{BUSY_ID}:started"],  # "2026-11-28 06:57:33 +0000"
        ),
        "resque:workers:heartbeat": ("hash", {BUSY_ID: "<heartbeat>"}),
    }
    assert abs(heartbeat_age(store, BUSY_ID)) < 5  # stamped with the server's clock


def test_register_worker_in_new_york_uses_local_time_with_offset(
    r: redis.Redis, store: Store
) -> None:
    if not tz_available("America/New_York"):
        pytest.skip("the system has no tz database entry for America/New_York")
    ny = observed()["timestamps_in_TZ_America_New_York"]
    with local_tz("America/New_York"):
        store.register_worker(BUSY_ID, at(6, 57, 57))
        beat = store.heartbeats()[BUSY_ID]
        assert text(r.get(f"resque:worker:{BUSY_ID}:started")) == ny["started"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[45]:00", beat), beat
        assert mask_times(beat) == mask_times(ny["heartbeat"])


def test_heartbeat_stamps_many_workers_with_server_time(store: Store) -> None:
    store.heartbeat(["a:1:q", "b:2:q"])
    store.heartbeat([])
    assert sorted(store.heartbeats()) == ["a:1:q", "b:2:q"]
    assert abs(heartbeat_age(store, "a:1:q")) < 5


# --- the job cycle ---------------------------------------------------------------------------


def test_worker_while_busy_matches_ruby(r: redis.Redis, store: Store) -> None:
    """Three jobs done (one failed), the fourth running: Ruby's snapshot, key for key."""
    busy = observed()["worker_while_busy"]
    now = at(6, 57, 33)
    queues = ["oracle", "other"]
    store.push("oracle", payload("Echo", 1))
    store.push("other", payload("Boom", "x", 42))
    store.push("oracle", payload("Echo", 2))
    store.register_worker(BUSY_ID, now)
    first = reserve(store, BUSY_ID, queues, now)
    second = store.cycle(BUSY_ID, now, ack=Ack(first), queues=queues)
    assert isinstance(second, Reservation)
    assert second.payload == payload("Echo", 2)  # strict priority: oracle before other
    third = store.cycle(BUSY_ID, now, ack=Ack(second), queues=queues)
    assert isinstance(third, Reservation)
    assert (third.queue, third.payload) == ("other", payload("Boom", "x", 42))
    record = protocol.failure_record(third.payload, BOOM_FAILURE, BUSY_ID, "other", now)
    sleepy = payload("Sleepy", 3, "sleepy")
    store.push("oracle", sleepy)
    running = store.cycle(BUSY_ID, now, ack=Ack(third, record), queues=queues)
    assert running == Reservation("oracle", sleepy, 0)

    expected = {
        key: (kind, busy[key])
        for key, kind in [
            (f"resque:worker:{BUSY_ID}", "string"),
            (f"resque:worker:{BUSY_ID}:started", "string"),
            ("resque:stat:processed", "string"),
            (f"resque:stat:processed:{BUSY_ID}", "string"),
            ("resque:stat:failed", "string"),
            (f"resque:stat:failed:{BUSY_ID}", "string"),
        ]
    }
    expected["resque:workers"] = ("set", busy["resque:workers"])
    expected["resque:workers:heartbeat"] = ("hash", {BUSY_ID: "<heartbeat>"})
    expected["resque:queues"] = ("set", ["oracle", "other"])
    expected["resque:failed"] = ("list", [record])
    assert snapshot(r) == expected
    assert r.hgetall(f"resque:inflight:{BUSY_ID}") == {b"oracle": sleepy.encode()}
    assert r.smembers("resque:inflight-workers") == {BUSY_ID.encode()}


def test_reserving_moves_the_job_into_the_inflight_hash(r: redis.Redis, store: Store) -> None:
    job = payload("Echo", *ECHO_ARGS)
    store.push("oracle", job)
    res = reserve(store, LIFE_ID, ["oracle"], at(6, 57, 43))
    assert res == Reservation("oracle", job, 0)
    assert r.llen("resque:queue:oracle") == 0
    assert r.hgetall(f"resque:inflight:{LIFE_ID}") == {b"oracle": job.encode("utf-8")}
    assert text(r.get(f"resque:worker:{LIFE_ID}")) == (
        '{"queue":"oracle","run_at":"2026-11-28T06:57:43Z","payload":'
        '{"class":"Echo","args":[1,"two",{"k":3.5,"n":null},true,"é ✓",0]}}'
    )


def test_busy_record_key_order_and_formats_in_new_york(r: redis.Redis, store: Store) -> None:
    if not tz_available("America/New_York"):
        pytest.skip("the system has no tz database entry for America/New_York")
    ruby = observed()["worker_while_busy"][f"resque:worker:{BUSY_ID}"]
    store.push("oracle", payload("Sleepy", 3, "sleepy"))
    with local_tz("America/New_York"):
        reserve(store, BUSY_ID, ["oracle"], at(7, 1, 2))
    ours = text(r.get(f"resque:worker:{BUSY_ID}"))
    assert ours is not None
    assert list(json.loads(ours)) == ["queue", "run_at", "payload"]
    assert ours != ruby  # another time ...
    assert mask_times(ours) == mask_times(ruby)  # ... and still UTC with Z, all else equal


def test_cycle_takes_queues_in_strict_priority_order(store: Store) -> None:
    for queue, n in [("low", 1), ("high", 1), ("low", 2), ("high", 2)]:
        store.push(queue, payload("Echo", f"{queue}-{n}"))
    taken = []
    res = store.cycle("w:1:high,low", 0.0, queues=["high", "low"])
    while isinstance(res, Reservation):
        taken.append(json.loads(res.payload)["args"][0])
        res = store.cycle("w:1:high,low", 0.0, ack=Ack(res), queues=["high", "low"])
    assert res is None
    assert taken == ["high-1", "high-2", "low-1", "low-2"]
    assert store.stats() == (4, 0)


def test_cycle_with_empty_queues_or_none_reserves_nothing(r: redis.Redis, store: Store) -> None:
    assert store.cycle("w:1:q", 0.0, queues=["q"]) is None
    assert store.cycle("w:1:q", 0.0, queues=[]) is None
    store.push("q", payload("A"))
    assert store.cycle("w:1:q", 0.0) is None  # acknowledge only
    assert r.llen("resque:queue:q") == 1
    assert snapshot(r, keep_pyresque_keys=True) == {
        "resque:queues": ("set", ["q"]),
        "resque:queue:q": ("list", ['{"class":"A","args":[]}']),
    }


def test_ack_of_a_success_is_rubys_done_working(r: redis.Redis, store: Store) -> None:
    store.push("oracle", payload("Echo", "m"))
    store.register_worker(LIFE_ID, at(6, 57, 43))
    before = snapshot(r)
    res = reserve(store, LIFE_ID, ["oracle"], at(6, 57, 43))
    assert store.cycle(LIFE_ID, at(6, 57, 43), ack=Ack(res)) is None
    after = snapshot(r)
    # Ruby: DEL worker:<id>, INCRBY stat:processed 1, INCRBY stat:processed:<id> 1
    del before["resque:queue:oracle"]
    assert after == {
        **before,
        "resque:stat:processed": ("string", "1"),
        f"resque:stat:processed:{LIFE_ID}": ("string", "1"),
    }
    assert r.exists(f"resque:inflight:{LIFE_ID}") == 0


def test_ack_of_a_failure_pushes_rubys_record_and_counts_it(r: redis.Redis, store: Store) -> None:
    ruby_record = next(c.args[2] for c in monitor_commands() if c.args[1:2] == ("resque:failed",))
    now = at(6, 57, 43)
    store.push("oracle", payload("Boom", "m"))
    res = reserve(store, LIFE_ID, ["oracle"], now)
    record = protocol.failure_record(res.payload, BOOM_FAILURE, LIFE_ID, res.queue, now)
    assert record == ruby_record
    assert list(json.loads(record)) == FAILURE_KEYS
    store.cycle(LIFE_ID, now, ack=Ack(res, record))
    assert snapshot(r) == {
        "resque:queues": ("set", ["oracle"]),
        "resque:failed": ("list", [ruby_record]),
        "resque:stat:failed": ("string", "1"),
        f"resque:stat:failed:{LIFE_ID}": ("string", "1"),
        "resque:stat:processed": ("string", "1"),
        f"resque:stat:processed:{LIFE_ID}": ("string", "1"),
    }


def test_a_failure_not_counted_leaves_stat_failed_alone(r: redis.Redis, store: Store) -> None:
    """Ruby's record of a job killed by a signal: DirtyExit, processed counted, failed not."""
    ruby = json.loads(observed()["failure_records"][2])
    now = at(6, 57, 38)
    store.push("oracle", payload("Sleepy", 30, "to-be-killed"))
    res = reserve(store, BUSY_ID, ["oracle"], now)
    failure = Failure(protocol.DIRTY_EXIT, ruby["error"])
    record = protocol.failure_record(res.payload, failure, BUSY_ID, "oracle", now)
    assert record == observed()["failure_records"][2]
    store.cycle(BUSY_ID, now, ack=Ack(res, record, count_failed=False))
    assert r.exists("resque:stat:failed", f"resque:stat:failed:{BUSY_ID}") == 0
    assert store.stats() == (1, 0)
    assert text(r.get(f"resque:stat:processed:{BUSY_ID}")) == "1"
    assert store.failures() == [record]


def test_ack_and_reserve_happen_in_one_call(r: redis.Redis, store: Store) -> None:
    store.push("q", payload("A", 1))
    store.push("q", payload("A", 2))
    first = reserve(store, "w:1:q", ["q"], 0.0)
    second = store.cycle("w:1:q", 0.0, ack=Ack(first), queues=["q"])
    assert second == Reservation("q", payload("A", 2), 0)
    assert r.hgetall("resque:inflight:w:1:q") == {b"q": payload("A", 2).encode()}
    assert store.stats() == (1, 0)


# --- pause -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "TRUE", "True", " true ", "\ttrue\n"])
def test_pause_all_workers_pauses_the_cycle(r: redis.Redis, store: Store, value: str) -> None:
    store.push("q", payload("A", 1))
    store.push("q", payload("A", 2))
    first = reserve(store, "w:1:q", ["q"], 0.0)
    r.set("resque:pause-all-workers", value)
    assert store.paused_all()
    assert store.cycle("w:1:q", 0.0, ack=Ack(first), queues=["q"]) == PAUSED
    assert store.stats() == (1, 0)  # the acknowledgement still counts
    assert r.lrange("resque:queue:q", 0, -1) == [payload("A", 2).encode()]
    assert r.exists("resque:inflight:w:1:q", "resque:worker:w:1:q") == 0


@pytest.mark.parametrize("value", ["false", "", "1", "yes", "truex", "t rue"])
def test_other_pause_values_do_not_pause(r: redis.Redis, store: Store, value: str) -> None:
    store.push("q", payload("A"))
    r.set("resque:pause-all-workers", value)
    assert not store.paused_all()
    assert isinstance(store.cycle("w:1:q", 0.0, queues=["q"]), Reservation)


def test_set_paused_all_writes_rubys_value(r: redis.Redis, store: Store) -> None:
    store.set_paused_all(True)
    assert r.get("resque:pause-all-workers") == b"true"
    store.set_paused_all(False)
    assert r.exists("resque:pause-all-workers") == 0


# --- requeue and deliveries ------------------------------------------------------------------


def test_requeue_puts_the_job_back_at_the_front(r: redis.Redis, store: Store) -> None:
    a, b = payload("A"), payload("B")
    store.push("q", a)
    store.push("q", b)
    res = reserve(store, "w:1:q", ["q"], 0.0)
    assert store.requeue("w:1:q", "q", res.payload, count_delivery=False) == "requeued"
    assert store.all_payloads("q") == [a, b]
    assert snapshot(r, keep_pyresque_keys=True) == {
        "resque:queues": ("set", ["q"]),
        "resque:queue:q": ("list", [a, b]),
        "resque:inflight-workers": ("set", ["w:1:q"]),
    }
    assert store.stats() == (0, 0)


def test_requeue_of_a_job_not_held_is_gone(store: Store) -> None:
    store.push("q", payload("A"))
    assert store.requeue("w:1:q", "q", payload("A"), count_delivery=True) == "gone"
    res = reserve(store, "w:1:q", ["q"], 0.0)
    assert store.requeue("w:1:q", "q", payload("B"), count_delivery=True) == "gone"
    assert store.inflight("w:1:q") == {"q": res.payload}
    assert store.requeue("w:1:q", "q", res.payload, count_delivery=True) == "requeued"
    assert store.requeue("w:1:q", "q", res.payload, count_delivery=True) == "gone"
    assert store.all_payloads("q") == [payload("A")]


def test_deliveries_are_counted_until_the_job_becomes_a_failure(
    r: redis.Redis, store: Store
) -> None:
    job, other = payload("KillSelf", "x"), payload("Echo", "next")
    sha = hashlib.sha1(job.encode()).hexdigest()
    store.push("q", job)
    store.push("q", other)
    now = at(6, 57, 38)
    record = protocol.failure_record(job, Failure(protocol.DIRTY_EXIT, "killed"), "w:1:q", "q", now)
    outcomes = []
    for expected_deliveries in range(3):
        res = reserve(store, "w:1:q", ["q"], now)
        assert (res.payload, res.deliveries) == (job, expected_deliveries)
        outcomes.append(
            store.requeue(
                "w:1:q", "q", job, count_delivery=True, max_deliveries=3, failure_record=record
            )
        )
        if outcomes[-1] == "requeued":
            assert (
                r.hget("resque:redeliveries", sha).split()[0]
                == str(expected_deliveries + 1).encode()
            )
    assert outcomes == ["requeued", "requeued", "failed"]
    assert store.all_payloads("q") == [other]
    assert store.failures() == [record]
    assert r.hlen("resque:redeliveries") == 0
    assert store.stats() == (1, 0)  # processed, not counted as failed (as Ruby's DirtyExit)
    assert r.exists("resque:worker:w:1:q", "resque:inflight:w:1:q") == 0


def test_acknowledging_a_redelivered_job_forgets_its_count(r: redis.Redis, store: Store) -> None:
    job = payload("A")
    store.push("q", job)
    res = reserve(store, "w:1:q", ["q"], 0.0)
    store.requeue("w:1:q", "q", job, count_delivery=True)
    res = reserve(store, "w:1:q", ["q"], 0.0)
    assert res.deliveries == 1
    store.cycle("w:1:q", 0.0, ack=Ack(res))
    assert r.exists("resque:redeliveries") == 0


# --- unregistering ---------------------------------------------------------------------------


def _ruby_unregister_commands() -> list[Command]:
    commands = list(monitor_commands())
    start = next(i for i, c in enumerate(commands) if c.name == "srem")
    return commands[start:]


def test_unregister_removes_exactly_what_ruby_removes(r: redis.Redis, store: Store) -> None:
    now = at(6, 57, 43)
    for wid in (LIFE_ID, "vm:1:other"):
        store.register_worker(wid, now)
        store.push("oracle", payload("Echo", "m"))
        store.push("oracle", payload("Boom", "m"))
        ok = reserve(store, wid, ["oracle"], now)
        bad = store.cycle(wid, now, ack=Ack(ok), queues=["oracle"])
        assert isinstance(bad, Reservation)
        record = protocol.failure_record(bad.payload, BOOM_FAILURE, wid, "oracle", now)
        store.cycle(wid, now, ack=Ack(bad, record))
    r.set(f"resque:worker:{LIFE_ID}", "{}")  # even a busy record goes
    before = snapshot(r)

    store.unregister_worker(LIFE_ID)

    expected = dict(before)
    removed = []
    for command in _ruby_unregister_commands():
        key = command.args[1]
        removed.append(key)
        if command.name == "del":
            del expected[key]
        elif command.name in ("srem", "hdel"):
            kind, value = expected[key]
            member = command.args[2]
            value = (
                [m for m in value if m != member]
                if kind == "set"
                else {k: v for k, v in value.items() if k != member}
            )
            expected[key] = (kind, value)
        else:
            raise AssertionError(f"unexpected command in Ruby's unregister: {command}")
    assert removed == [
        "resque:workers",
        f"resque:worker:{LIFE_ID}",
        f"resque:worker:{LIFE_ID}:started",
        "resque:workers:heartbeat",
        f"resque:stat:processed:{LIFE_ID}",
        f"resque:stat:failed:{LIFE_ID}",
    ]
    assert snapshot(r) == expected
    assert expected["resque:stat:processed"] == ("string", "4")  # global stats stay


# --- a whole worker life, replayed -----------------------------------------------------------

RUBY_WRITES = {"hdel", "set", "hset", "sadd", "del", "incrby", "rpush", "srem", "lpop"}


def _ruby_state_at(r: redis.Redis, checkpoints: list[Callable[[Command], bool]]) -> list[Any]:
    """Replay the capture's writes to Resque's keys; snapshot after each checkpoint command."""
    r.flushall()
    for p in (payload("Echo", "m"), payload("Boom", "m")):  # enqueued before the capture
        r.sadd("resque:queues", "oracle")
        r.rpush("resque:queue:oracle", p)
    snapshots = []
    pending = list(checkpoints)
    for command in monitor_commands():
        if command.name in RUBY_WRITES and command.args[1].startswith("resque:"):
            r.execute_command(*command.args)  # type: ignore[no-untyped-call]
        if pending and pending[0](command):
            snapshots.append(snapshot(r))
            pending.pop(0)
    assert not pending, "a checkpoint was not found in the capture"
    snapshots.append(snapshot(r))
    return snapshots


def _is_set_of(key: str) -> Callable[[Command], bool]:
    return lambda c: c.name == "set" and c.args[1] == key


def test_a_worker_life_leaves_what_rubys_left(r: redis.Redis, store: Store) -> None:
    """Prune, register, one job done, one failed, unregister: Ruby's keyspace at every step."""
    busy_key = f"resque:worker:{LIFE_ID}"
    last_processed = max(
        i
        for i, c in enumerate(monitor_commands())
        if c.name == "incrby" and c.args[1] == f"resque:stat:processed:{LIFE_ID}"
    )
    ruby = _ruby_state_at(
        r,
        [
            _is_set_of(f"{busy_key}:started"),  # registered
            _is_set_of(busy_key),  # busy with Echo
            _is_set_of(busy_key),  # Echo done, busy with Boom
            lambda c: c is monitor_commands()[last_processed],  # Boom failed, idle
        ],
    )
    r.flushall()
    now = at(6, 57, 43)
    ours = []
    store.push("oracle", payload("Echo", "m"))
    store.push("oracle", payload("Boom", "m"))
    me = WorkerId.parse(LIFE_ID)
    assert me is not None
    assert prune_dead_workers(store, me, QueueSelector.parse("oracle"), now=now) == []
    store.register_worker(LIFE_ID, now)
    ours.append(snapshot(r))
    echo = reserve(store, LIFE_ID, ["oracle"], now)
    ours.append(snapshot(r))
    boom = store.cycle(LIFE_ID, now, ack=Ack(echo), queues=["oracle"])
    assert isinstance(boom, Reservation)
    ours.append(snapshot(r))
    record = protocol.failure_record(boom.payload, BOOM_FAILURE, LIFE_ID, "oracle", now)
    assert store.cycle(LIFE_ID, now, ack=Ack(boom, record), queues=["oracle"]) is None
    ours.append(snapshot(r))
    store.unregister_worker(LIFE_ID)
    store.forget_inflight_owner(LIFE_ID)
    ours.append(snapshot(r))

    for step, (mine, theirs) in enumerate(zip(ours, ruby, strict=True)):
        assert mine == theirs, f"step {step}"
    assert 0 < r.ttl("resque:pruning_dead_workers_in_progress") <= 60
    assert snapshot(r, keep_pyresque_keys=True) == ours[-1]  # nothing of ours left behind


# --- failures --------------------------------------------------------------------------------


def test_retry_failure_is_rubys_requeue(r: redis.Redis, store: Store) -> None:
    fixture = observed()
    records = fixture["failure_records"]
    for record in records:
        r.rpush("resque:failed", record)
    assert store.retry_failure(0, at(6, 57, 49)) == "oracle"
    assert store.failures() == [fixture["failure_retried"], *records[1:]]
    assert snapshot(r)["resque:queue:oracle"] == ("list", ['{"class":"Boom","args":["x",42]}'])
    assert snapshot(r)["resque:queues"] == ("set", ["oracle"])


def test_retry_failure_in_new_york_has_rubys_format(r: redis.Redis, store: Store) -> None:
    if not tz_available("America/New_York"):
        pytest.skip("the system has no tz database entry for America/New_York")
    fixture = observed()
    r.rpush("resque:failed", fixture["failure_records"][1])
    with local_tz("America/New_York"):
        assert store.retry_failure(0, at(6, 57, 49)) == "other"
    [ours] = store.failures()
    assert ours.endswith(',"retried_at":"2026/11/28 01:57:49 EST"}')
    expected = fixture["failure_records"][1][:-1] + ',"retried_at":"2026/11/28 06:57:49 UTC"}'
    assert mask_times(ours) == mask_times(expected)
    assert store.all_payloads("other") == ['{"class":"Py::NotDefinedInRuby","args":[{"a":[1,2]}]}']


def test_retry_of_a_missing_record_is_our_error_not_an_index_error(store: Store) -> None:
    from pyresque.errors import NoSuchFailure, PyresqueError

    with pytest.raises(NoSuchFailure, match="no failure record at index 3") as info:
        store.retry_failure(3, 0.0)
    assert isinstance(info.value, PyresqueError) and not isinstance(info.value, IndexError)


def test_remove_failure_and_clear_failures(r: redis.Redis, store: Store) -> None:
    records = observed()["failure_records"]
    for record in records:
        r.rpush("resque:failed", record)
    assert store.remove_failure(1)
    assert store.failures() == [records[0], records[2], records[3]]
    assert store.remove_failure(-1)
    assert store.failures() == [records[0], records[2]]
    assert not store.remove_failure(5)
    assert store.failure_count() == 2
    assert store.failures(1, 1) == [records[2]]
    assert store.clear_failures()
    assert r.exists("resque:failed") == 0
    assert not store.clear_failures()


# --- pruning dead workers --------------------------------------------------------------------


def _old_heartbeat(store: Store, worker_id: str, age: float) -> None:
    store.redis.hset(
        "resque:workers:heartbeat",
        worker_id,
        protocol.heartbeat_time(store.server_time() - age),
    )


def _ruby_busy_worker(
    store: Store, worker_id: str, job: str, *, age: float | None, now: float
) -> None:
    """A Ruby worker as Ruby leaves it: registered, busy, no in-flight hash."""
    r = store.redis
    r.sadd("resque:workers", worker_id)
    r.set(f"resque:worker:{worker_id}:started", protocol.started_time(now))
    r.set(f"resque:worker:{worker_id}", protocol.busy_record("oracle", job, now))
    r.incrby(f"resque:stat:processed:{worker_id}", 2)
    if age is not None:
        _old_heartbeat(store, worker_id, age)


def _prune(store: Store, **kwargs: Any) -> list[str]:
    return prune_dead_workers(store, ME, QueueSelector.parse("oracle"), **kwargs)


def test_prune_puts_an_expired_pyresque_workers_job_back_first(
    r: redis.Redis, store: Store
) -> None:
    dead = "otherhost:99:oracle"
    job, waiting = payload("Echo", "held"), payload("Echo", "waiting")
    store.register_worker(dead, at(6, 50, 0))
    store.push("oracle", job)
    reserve(store, dead, ["oracle"], at(6, 50, 0))
    store.push("oracle", waiting)
    _old_heartbeat(store, dead, 301)

    assert _prune(store, now=at(6, 57, 51), prune_interval=300) == [dead]

    assert store.all_payloads("oracle") == [job, waiting]
    assert store.worker_ids() == []
    assert store.failures() == []
    sha = hashlib.sha1(job.encode()).hexdigest()
    keys = snapshot(r, keep_pyresque_keys=True)
    count, died_at = keys["resque:redeliveries"][1][sha].split()  # count, time of the last death
    assert count == "1" and abs(int(died_at) - time.time()) < 60
    keys["resque:redeliveries"] = ("hash", {sha: "1"})
    assert keys == {
        "resque:queues": ("set", ["oracle"]),
        "resque:queue:oracle": ("list", [job, waiting]),
        "resque:redeliveries": ("hash", {sha: "1"}),
        "resque:pruning_dead_workers_in_progress": ("string", str(ME)),
    }


def test_prune_fails_a_ruby_workers_job_as_ruby_does(r: redis.Redis, store: Store) -> None:
    dead = "otherhost:123:oracle"
    expected = observed()["failure_records"][3]
    _ruby_busy_worker(store, dead, payload("Echo", "orphan"), age=400, now=at(6, 50, 0))

    assert _prune(store, now=at(6, 57, 51)) == [dead]

    assert store.failures() == [expected]
    assert json.loads(expected)["error"] == (
        "Worker otherhost:123:oracle did not gracefully exit while processing Echo"
    )
    state = snapshot(r)
    assert not any(dead in key for key in state)  # every key of the worker is gone
    assert "resque:workers" not in state  # the set emptied, so Redis dropped it
    assert "resque:workers:heartbeat" not in state


def test_a_worker_that_never_sent_a_heartbeat_is_left_alone(r: redis.Redis, store: Store) -> None:
    legacy = "otherhost:77:oracle"
    _ruby_busy_worker(store, legacy, payload("Echo", "legacy"), age=None, now=at(6, 0, 0))
    before = snapshot(r)
    assert _prune(store, now=at(6, 57, 51), prune_interval=0) == []
    after = snapshot(r)
    del after["resque:pruning_dead_workers_in_progress"]
    assert after == before


def test_a_worker_with_a_recent_heartbeat_is_left_alone(r: redis.Redis, store: Store) -> None:
    alive = "otherhost:88:oracle"
    _ruby_busy_worker(store, alive, payload("Echo", "alive"), age=299, now=at(6, 0, 0))
    before = snapshot(r)
    assert _prune(store, now=at(6, 57, 51), prune_interval=300) == []
    after = snapshot(r)
    del after["resque:pruning_dead_workers_in_progress"]
    assert after == before


def test_the_prune_lock_lets_one_worker_prune(r: redis.Redis, store: Store) -> None:
    first, second = "otherhost:1:oracle", "otherhost:2:oracle"
    _ruby_busy_worker(store, first, payload("Echo", 1), age=400, now=at(6, 0, 0))
    assert _prune(store, now=at(6, 57, 51), lock_ttl=60) == [first]
    assert r.get("resque:pruning_dead_workers_in_progress") == str(ME).encode()
    assert 0 < r.ttl("resque:pruning_dead_workers_in_progress") <= 60

    _ruby_busy_worker(store, second, payload("Echo", 2), age=400, now=at(6, 0, 0))
    assert _prune(store, now=at(6, 57, 52)) == []
    assert store.worker_ids() == [second]
    assert len(store.failures()) == 1

    r.delete("resque:pruning_dead_workers_in_progress")
    assert _prune(store, now=at(6, 57, 53)) == [second]


def test_a_lock_held_by_another_worker_stops_the_prune(r: redis.Redis, store: Store) -> None:
    r.set("resque:pruning_dead_workers_in_progress", "elsewhere:1:oracle", ex=60)
    _ruby_busy_worker(store, "otherhost:1:oracle", payload("Echo"), age=400, now=at(6, 0, 0))
    assert _prune(store, now=at(6, 57, 51)) == []
    assert r.get("resque:pruning_dead_workers_in_progress") == b"elsewhere:1:oracle"
    assert store.worker_ids() == ["otherhost:1:oracle"]


def test_prune_recovers_jobs_held_by_unregistered_workers(r: redis.Redis, store: Store) -> None:
    ghost = "otherhost:5:oracle"
    job = payload("Echo", "ghost")
    store.push("oracle", job)
    reserve(store, ghost, ["oracle"], 0.0)
    assert _prune(store, now=at(6, 57, 51)) == [ghost]
    assert store.all_payloads("oracle") == [job]
    assert store.inflight_owners() == set()


def test_recover_worker_fails_a_job_that_killed_its_worker_too_often(store: Store) -> None:
    dead = "otherhost:6:oracle"
    job = payload("KillSelf", "x")
    store.push("oracle", job)
    reason = Failure(protocol.DIRTY_EXIT, "killed")
    outcomes = []
    for _ in range(2):
        store.register_worker(dead, 0.0)
        reserve(store, dead, ["oracle"], 0.0)
        outcomes += recovery.recover_worker(store, dead, at(6, 57, 51), reason, max_deliveries=2)
    assert outcomes == ["requeued", "failed"]
    assert store.all_payloads("oracle") == []
    [record] = store.failures()
    assert json.loads(record)["exception"] == "Resque::DirtyExit"
    assert store.worker_ids() == []


# --- known bugs: strict, so a fix turns them into failures to remove the marker -----------------


def test_a_payload_that_is_not_utf8_can_be_put_back(r: redis.Redis, store: Store) -> None:
    raw = b'{"class":"A","args":["caf\xe9"]}'  # Latin-1, as an old client might write
    r.rpush("resque:queue:q", raw)
    res = reserve(store, "w:1:q", ["q"], 0.0)
    assert store.requeue("w:1:q", "q", res.payload, count_delivery=False) == "requeued"


class _RacingStore(Store):
    """A Store where a new worker registers and reserves a job while a prune is under way (as
    the other workers of a pool that start together do while the first one holds the lock)."""

    def inflight_owners(self) -> set[str]:
        self.register_worker("otherhost:7:oracle", 0.0)
        self.cycle("otherhost:7:oracle", 0.0, queues=["oracle"])
        return super().inflight_owners()


def test_prune_leaves_a_worker_that_registers_meanwhile_alone(r: redis.Redis) -> None:
    store = _RacingStore(r)
    store.push("oracle", payload("Echo", "running"))
    prune_dead_workers(store, ME, QueueSelector.parse("oracle"), now=0.0)
    assert store.worker_ids() == ["otherhost:7:oracle"]
    assert store.inflight("otherhost:7:oracle") == {"oracle": payload("Echo", "running")}
