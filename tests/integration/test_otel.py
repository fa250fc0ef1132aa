"""OpenTelemetry through real workers, job children, the scheduler and a pool: the enqueue's
producer span here (the SDK with an in-memory exporter), the other processes' spans from a
batching exporter that writes them to a file (tests/apps/otelapp.py)."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from pyresque.contrib import otel
from pyresque.jobs.client import Client
from tests.helpers import Proc, wait_until
from tests.integration.test_golden import ECHO_ARGS
from tests.ruby_fixtures import observed

Spawn = Callable[..., Proc]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """This process instrumented, its spans kept in memory; uninstrumented after."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    otel.instrument(tracer_provider=provider)
    yield memory
    otel.uninstrument()


@pytest.fixture
def client(r: redis.Redis) -> Client:
    return Client(r, namespace="resque")


@pytest.fixture
def sink(tmp_path: Path) -> Path:
    return tmp_path / "spans.jsonl"


def spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def named(path: Path, name: str) -> list[dict[str, Any]]:
    return [s for s in spans(path) if s["name"] == name]


def hex_id(value: int) -> str:
    return f"0x{value:032x}" if value > 2**64 else f"0x{value:016x}"


def work(spawn: Spawn, sink: Path, *extra: str) -> Proc:
    return spawn(
        "work", "--queues", "watch", "--app", "otelapp", "--interval", "0.1", *extra,
        env={"OTEL_SPANS": str(sink)},
    )  # fmt: skip


def test_an_enqueue_is_a_producer_span_whose_context_rides_in_the_payload(
    r: redis.Redis, client: Client, exporter: InMemorySpanExporter
) -> None:
    client.enqueue_to("watch", "Fine", "a")
    [span] = exporter.get_finished_spans()
    assert span.name == "send watch"
    assert span.kind is SpanKind.PRODUCER
    assert dict(span.attributes or {}) == {
        "messaging.system": "resque",
        "messaging.destination.name": "watch",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "pyresque.job.class": "Fine",
    }
    raw = r.lindex("resque:queue:watch", 0)
    assert raw is not None
    context = span.get_span_context()
    traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    # class, args, then the trace context: the bytes Ruby wrote, plus one key at the end
    assert raw.decode() == (
        '{"class":"Fine","args":["a"],"trace_context":{"traceparent":"' + traceparent + '"}}'
    )


def test_a_batch_gives_each_job_its_own_span_and_context(
    r: redis.Redis, client: Client, exporter: InMemorySpanExporter
) -> None:
    with client.batch() as batch:
        batch.enqueue_to("watch", "Fine", 1)
        batch.enqueue_to("watch", "Fine", 2)
    found = exporter.get_finished_spans()
    assert [s.name for s in found] == ["send watch", "send watch"]
    carried = [json.loads(raw)["trace_context"] for raw in r.lrange("resque:queue:watch", 0, -1)]
    assert [c["traceparent"].split("-")[2] for c in carried] == [
        f"{s.get_span_context().span_id:016x}" for s in found
    ]


def test_without_instrumentation_the_payload_is_rubys(r: redis.Redis, client: Client) -> None:
    client.enqueue_to("watch", "Fine", "a")
    assert r.lindex("resque:queue:watch", 0) == b'{"class":"Fine","args":["a"]}'


@pytest.mark.parametrize(
    "mode", [[], ["--warm-child"], ["--in-process"]], ids=["fork", "warm-child", "in-process"]
)
def test_one_trace_from_enqueue_to_perform_across_processes(
    r: redis.Redis,
    client: Client,
    exporter: InMemorySpanExporter,
    spawn: Spawn,
    sink: Path,
    mode: list[str],
) -> None:
    client.enqueue_to("watch", "Fine", "a")
    client.enqueue_to("watch", "Boom", "b")
    [fine_sent, boom_sent] = exporter.get_finished_spans()
    worker = work(spawn, sink, *mode)
    wait_until(lambda: r.llen("test:ran") == 2, 20)
    if mode != ["--in-process"]:  # each job child exported its span before it exited
        wait_until(lambda: len(named(sink, "process watch")) == 2, 10)
    worker.signal(signal.SIGQUIT)  # a worker's own spans are exported as it leaves
    assert worker.wait() == 0
    processed = {s["attributes"]["pyresque.job.class"]: s for s in named(sink, "process watch")}
    for sent, name in ((fine_sent, "Fine"), (boom_sent, "Boom")):
        span = processed[name]
        assert span["kind"] == "SpanKind.CONSUMER"
        assert span["context"]["trace_id"] == hex_id(sent.get_span_context().trace_id)
        assert span["parent_id"] == f"0x{sent.get_span_context().span_id:016x}"
        assert span["attributes"]["messaging.operation.type"] == "process"
        assert span["attributes"]["messaging.system"] == "resque"
        assert span["attributes"]["messaging.client.id"].endswith(":watch")
    assert processed["Fine"]["status"]["status_code"] == "UNSET"
    assert processed["Boom"]["status"]["status_code"] == "ERROR"
    [event] = processed["Boom"]["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "ValueError"


def test_a_retry_and_the_schedulers_move_are_spans_of_the_jobs_trace(
    r: redis.Redis, client: Client, exporter: InMemorySpanExporter, spawn: Spawn, sink: Path
) -> None:
    client.enqueue_to("watch", "Twice", "t")
    [sent] = exporter.get_finished_spans()
    worker = work(spawn, sink)
    scheduler = spawn(
        "scheduler", "--interval", "0.1", "--app", "otelapp", env={"OTEL_SPANS": str(sink)}
    )
    wait_until(lambda: r.llen("resque:failed") == 1, 30)
    for proc in (worker, scheduler):  # their own spans are exported as they leave
        proc.signal(signal.SIGQUIT if proc is worker else signal.SIGTERM)
        proc.wait()
    trace_id = hex_id(sent.get_span_context().trace_id)
    retries = named(sink, "retry watch")
    moves = named(sink, "move watch")
    processes = named(sink, "process watch")
    assert [s["attributes"]["pyresque.retry.attempt"] for s in retries] == [1, 2]
    assert len(moves) == 2
    assert len(processes) == 3
    for span in retries + moves + processes:
        assert span["context"]["trace_id"] == trace_id
        assert span["parent_id"] == f"0x{sent.get_span_context().span_id:016x}"
    assert {s["attributes"]["messaging.operation.name"] for s in moves} == {"move"}


def test_a_pools_job_children_export_their_spans(
    r: redis.Redis, client: Client, exporter: InMemorySpanExporter, spawn: Spawn, sink: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    config = tmp_path / "resque-pool.yml"
    config.write_text("watch: 2\n")
    for i in range(6):
        client.enqueue_to("watch", "Fine", str(i))
    sent = {f"0x{s.get_span_context().span_id:016x}" for s in exporter.get_finished_spans()}
    spawn("pool", "--config", str(config), "--app", "otelapp", env={"OTEL_SPANS": str(sink)})
    wait_until(lambda: r.llen("test:ran") == 6, 30)
    wait_until(lambda: len(named(sink, "process watch")) == 6, 10)
    assert {s["parent_id"] for s in named(sink, "process watch")} == sent


def test_dequeue_finds_a_traced_job_by_class_and_args(
    r: redis.Redis, client: Client, exporter: InMemorySpanExporter
) -> None:
    ruby = observed()["enqueue"]["queue_item"]  # as Ruby Resque wrote it, no trace context
    r.rpush("resque:queue:oracle", ruby)
    client.enqueue_to("oracle", "Echo", *ECHO_ARGS)  # the same job, traced
    client.enqueue_to("oracle", "Echo", "other")
    [traced, _] = r.lrange("resque:queue:oracle", 1, -1)
    assert b'"trace_context":' in traced
    assert client.dequeue("Echo", *ECHO_ARGS, queue="oracle") == 2
    assert [json.loads(raw)["args"] for raw in r.lrange("resque:queue:oracle", 0, -1)] == [
        ["other"]
    ]


def test_a_recurring_jobs_firing_starts_its_trace(
    r: redis.Redis, spawn: Spawn, sink: Path, tmp_path: Path
) -> None:
    schedule = tmp_path / "schedule.yml"
    schedule.write_text("tick:\n  every: 1s\n  class: Fine\n  queue: watch\n  args: [s]\n")
    env = {"OTEL_SPANS": str(sink)}
    scheduler = spawn("scheduler", "--schedule", str(schedule), "--app", "otelapp", env=env)
    worker = work(spawn, sink)
    wait_until(lambda: r.llen("test:ran") >= 1, 20)
    for proc in (scheduler, worker):  # their own spans are exported as they leave
        proc.signal(signal.SIGTERM if proc is scheduler else signal.SIGQUIT)
        proc.wait()
    sent = {s["context"]["span_id"]: s for s in named(sink, "send watch")}
    processed = named(sink, "process watch")
    assert processed
    for span in processed:
        assert span["parent_id"] in sent
        assert span["context"]["trace_id"] == sent[span["parent_id"]]["context"]["trace_id"]
