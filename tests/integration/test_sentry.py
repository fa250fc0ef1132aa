"""Sentry through real workers, job children and pools: the SDK with a transport that records its
envelopes (sent from a background thread, a little late, as over the network) to a file."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from harness.redis_server import RedisServer
from pyresque.jobs.client import Client
from tests.helpers import Proc, wait_until

Spawn = Callable[..., Proc]
MODES = [[], ["--warm-child"], ["--in-process"]]
MODE_IDS = ["fork", "warm-child", "in-process"]


def events(path: Path, kind: str = "event") -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line["payload"] for line in lines if line["type"] == kind]


def failures(r: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(v) for v in r.lrange("resque:failed", 0, -1)]


@pytest.fixture
def client(r: redis.Redis) -> Client:
    return Client(r, namespace="resque")


@pytest.fixture
def sink(tmp_path: Path) -> Path:
    return tmp_path / "sentry.jsonl"


def work(spawn: Spawn, sink: Path, *extra: str, env: dict[str, str] | None = None) -> Proc:
    return spawn(
        "work",
        "--queues",
        "watch",
        "--app",
        "sentryapp",
        "--interval",
        "0.1",
        *extra,
        env={"SENTRY_EVENTS": str(sink), **(env or {})},
    )


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_a_failed_job_is_one_event_with_its_job_as_tags_and_context(
    r: redis.Redis, client: Client, spawn: Spawn, sink: Path, mode: list[str]
) -> None:
    client.enqueue_to("watch", "Fine", "a")
    client.enqueue_to("watch", "Boom", "b", "hunter2")
    client.enqueue_to("watch", "Fine", "c")
    worker = work(spawn, sink, *mode)
    wait_until(lambda: len(failures(r)) == 1 and r.llen("test:ran") == 3, 20)
    wait_until(lambda: len(events(sink)) >= 1, 10)
    worker.signal(signal.SIGQUIT)
    assert worker.wait() == 0
    [event] = events(sink)
    [exception] = event["exception"]["values"]
    assert exception["type"] == "ValueError"
    assert exception["value"] == "boom b"
    assert exception["mechanism"]["type"] == "pyresque"
    assert exception["mechanism"]["handled"] is False
    assert exception["stacktrace"]["frames"][-1]["function"] == "boom"
    worker_id = failures(r)[0]["worker"]
    assert event["tags"] == {
        "pyresque.queue": "watch",
        "pyresque.job_class": "Boom",
        "pyresque.worker": worker_id,
        "pyresque.attempt": "1",
    }
    context = event["contexts"]["pyresque job"]
    assert context["args"].startswith("args sha1:")  # as the worker's log lines show them
    assert "hunter2" not in json.dumps(event)  # nor in the frames' variables
    job_frame = exception["stacktrace"]["frames"][-1]
    assert job_frame["vars"]["secret"] == "[a job argument: not shown]"


def test_the_arguments_are_in_the_event_when_the_worker_logs_them_and_passwords_never(
    r: redis.Redis, client: Client, spawn: Spawn, sink: Path, redis_server: RedisServer
) -> None:
    client.enqueue_to("watch", "Boom", "b", "shown")
    # the server takes any password for its default user: the URL's is only there to be hidden
    url = f"unix://default:sekrit@{redis_server.socket_path}?db=0"
    worker = work(spawn, sink, "--redis", url, env={"PYRESQUE_LOG_ARGS": "1"})
    wait_until(lambda: len(events(sink)) == 1, 20)
    worker.signal(signal.SIGQUIT)
    worker.wait()
    [event] = events(sink)
    assert event["contexts"]["pyresque job"]["args"] == "['b', 'shown']"
    job_frame = event["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert job_frame["vars"]["secret"] == "'shown'"
    assert "--redis" in event["extra"]["sys.argv"]
    assert "sekrit" not in json.dumps(event)


def scheduler(spawn: Spawn) -> Proc:
    return spawn("scheduler", "--interval", "0.1")


@pytest.mark.parametrize("mode", [[], ["--in-process"]], ids=["fork", "in-process"])
def test_a_retried_job_is_reported_once_at_its_last_attempt(
    r: redis.Redis, client: Client, spawn: Spawn, sink: Path, mode: list[str]
) -> None:
    client.enqueue_to("watch", "Twice", "t")
    work(spawn, sink, *mode)
    scheduler(spawn)
    wait_until(lambda: len(failures(r)) == 1, 30)
    assert r.llen("test:ran") == 3
    wait_until(lambda: len(events(sink)) >= 1, 10)
    [event] = events(sink)
    assert event["tags"]["pyresque.attempt"] == "3"
    assert event["exception"]["values"][0]["type"] == "TransientError"


def test_every_attempt_is_reported_when_asked(
    r: redis.Redis, client: Client, spawn: Spawn, sink: Path
) -> None:
    client.enqueue_to("watch", "Twice", "t")
    work(spawn, sink, env={"SENTRY_REPORT_RETRIES": "1"})
    scheduler(spawn)
    wait_until(lambda: len(failures(r)) == 1, 30)
    wait_until(lambda: len(events(sink)) == 3, 10)
    assert sorted(e["tags"]["pyresque.attempt"] for e in events(sink)) == ["1", "2", "3"]


def test_each_failed_job_of_a_pool_is_one_event_sent_from_its_job_child(
    r: redis.Redis, client: Client, spawn: Spawn, sink: Path, tmp_path: Path
) -> None:
    config = tmp_path / "resque-pool.yml"
    config.write_text("watch: 2\n")
    for i in range(6):
        client.enqueue_to("watch", "Boom", str(i))
    pool = spawn(
        "pool", "--config", str(config), "--app", "sentryapp", env={"SENTRY_EVENTS": str(sink)}
    )
    wait_until(lambda: len(failures(r)) == 6, 30)
    wait_until(lambda: len(events(sink)) == 6, 10)
    pool.signal(signal.SIGQUIT)
    pool.wait()
    found = events(sink)
    assert sorted(e["exception"]["values"][0]["value"] for e in found) == [
        f"boom {i}" for i in range(6)
    ]
    workers = {f["worker"] for f in failures(r)}
    assert {e["tags"]["pyresque.worker"] for e in found} <= workers
    assert len(found) == 6  # still one each once the pool is gone


def test_a_job_is_a_span_in_the_trace_it_was_enqueued_in(
    r: redis.Redis, client: Client, spawn: Spawn, sink: Path
) -> None:
    trace_id = "771a43a4192642f0b136d5159a501700"
    parent = "b1f6b1b6c1b6d1b6"
    # as a traced web request enqueues it: Sentry's headers in the payload's trace context
    r.rpush(
        "resque:queue:watch",
        json.dumps(
            {
                "class": "Fine",
                "args": ["traced"],
                "trace_context": {"sentry-trace": f"{trace_id}-{parent}-1"},
            }
        ),
    )
    r.sadd("resque:queues", "watch")
    worker = work(spawn, sink, "--burst", env={"SENTRY_TRACES": "1"})
    assert worker.wait(20) == 0
    spans = [s for item in events(sink, "span") for s in item["items"]]
    [span] = [s for s in spans if s["name"] == "Fine"]
    assert span["trace_id"] == trace_id
    assert span["parent_span_id"] == parent
    assert span["attributes"]["sentry.op"]["value"] == "queue.process"
    assert span["attributes"]["messaging.destination.name"]["value"] == "watch"


@pytest.mark.parametrize("mode", [[], ["--in-process"]], ids=["fork", "in-process"])
def test_a_job_past_its_time_limit_is_one_event_from_the_worker(
    r: redis.Redis, client: Client, spawn: Spawn, sink: Path, mode: list[str]
) -> None:
    client.enqueue_to("watch", "Slow", "s")
    worker = work(spawn, sink, *mode)
    wait_until(lambda: len(failures(r)) == 1, 20)
    wait_until(lambda: len(events(sink)) >= 1, 10)
    worker.signal(signal.SIGQUIT)
    worker.wait()
    [event] = events(sink)
    [exception] = event["exception"]["values"]
    assert exception["type"] == "JobTimeout"
    assert exception["value"] == failures(r)[0]["error"]
    assert event["tags"]["pyresque.job_class"] == "Slow"
    assert event["tags"]["pyresque.worker"] == failures(r)[0]["worker"]


def test_a_job_killed_on_request_is_one_event_from_the_worker(
    r: redis.Redis, client: Client, spawn: Spawn, sink: Path
) -> None:
    client.enqueue_to("watch", "Sleepy", "k")
    worker = work(spawn, sink)
    wait_until(lambda: r.lrange("test:ran", 0, -1) == [b"Sleepy k"], 20)
    worker.signal(signal.SIGUSR1)
    wait_until(lambda: len(failures(r)) == 1, 20)
    wait_until(lambda: len(events(sink)) >= 1, 10)
    worker.signal(signal.SIGQUIT)
    worker.wait()
    [event] = events(sink)
    assert event["exception"]["values"][0]["type"] == "DirtyExit"
    assert event["tags"]["pyresque.job_class"] == "Sleepy"
