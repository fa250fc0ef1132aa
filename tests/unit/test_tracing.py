"""The pieces of tracing that need no Redis: the trace context in a payload, the carrier's merge,
and the job_failed hook's moment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyresque.jobs import tracing
from pyresque.jobs.job import Job, Outcome
from pyresque.jobs.registry import Registry
from pyresque.wire.protocol import decode_payload, encode_payload
from pyresque.worker.hooks import WorkerHooks
from pyresque.worker.runner import perform_with_job_hooks
from tests.ruby_fixtures import observed


def test_the_trace_context_follows_class_and_args() -> None:
    ruby = observed()["enqueue"]["queue_item"]
    payload = decode_payload(ruby)
    traced = encode_payload(payload.class_name, payload.args, {"traceparent": "00-ab-cd-01"})
    # Ruby's bytes up to the closing brace, then the one added key
    assert traced == ruby[:-1] + ',"trace_context":{"traceparent":"00-ab-cd-01"}}'
    assert encode_payload(payload.class_name, payload.args, {}) == ruby
    assert encode_payload(payload.class_name, payload.args) == ruby


def ruby_destroy_matches(raw: str, klass: str, args: list[Any]) -> bool:
    """Resque 3.0's ``Job.process_queue`` test (``Resque.dequeue`` / ``Job.destroy``): the
    decoded item's class, and its args when any are given; other keys are not looked at."""
    decoded = json.loads(raw)
    return bool(decoded["class"] == klass and (not args or decoded["args"] == args))


def test_rubys_dequeue_matches_a_payload_with_a_trace_context_by_class_and_args() -> None:
    ruby = observed()["enqueue"]["queue_item"]
    payload = decode_payload(ruby)
    traced = encode_payload(payload.class_name, payload.args, {"traceparent": "00-ab-cd-01"})
    assert ruby_destroy_matches(traced, "Echo", payload.args)
    assert ruby_destroy_matches(traced, "Echo", [])
    assert not ruby_destroy_matches(traced, "Echo", [*payload.args, 1])


@pytest.mark.parametrize(
    ("extra", "carrier"),
    [
        ({}, {}),
        ({"trace_context": {"traceparent": "x", "baggage": "k=v"}}, {"traceparent": "x", "baggage": "k=v"}),
        ({"trace_context": "not an object"}, {}),
        ({"trace_context": {"traceparent": 7, "tracestate": "s"}}, {"tracestate": "s"}),
    ],
)  # fmt: skip
def test_a_payloads_trace_context_is_its_string_entries(
    extra: dict[str, Any], carrier: dict[str, str]
) -> None:
    raw = json.dumps({"class": "A", "args": [], **extra})
    assert decode_payload(raw).trace_context == carrier


@pytest.mark.parametrize(
    ("before", "added", "after"),
    [
        ({}, {"traceparent": "t"}, {"traceparent": "t"}),
        ({"baggage": "a=1"}, {"baggage": "sentry-trace_id=2"}, {"baggage": "a=1,sentry-trace_id=2"}),
        ({"baggage": ""}, {"baggage": "b=2"}, {"baggage": "b=2"}),
        ({"sentry-trace": "s"}, {"traceparent": "t"}, {"sentry-trace": "s", "traceparent": "t"}),
    ],
)  # fmt: skip
def test_a_second_integrations_entries_join_the_carrier(
    before: dict[str, str], added: dict[str, str], after: dict[str, str]
) -> None:
    carrier = dict(before)
    tracing.merge_into(carrier, added)
    assert carrier == after


class Failing(Exception):
    pass


def job_of(target: Any, *args: Any) -> Job:
    spec = Registry().register("J", target)
    return Job("q", decode_payload(encode_payload("J", list(args))), spec)


def test_job_failed_runs_with_the_exception_between_the_jobs_hooks() -> None:
    seen: list[Any] = []

    def job(x: int) -> None:
        raise Failing(f"no {x}")

    hooks = WorkerHooks()
    hooks.add("before_job", lambda j: seen.append("before_job"))
    hooks.add("job_failed", lambda j, exc: seen.append(("job_failed", j.args, str(exc))))
    hooks.add("after_job", lambda j: seen.append("after_job"))
    result = perform_with_job_hooks(job_of(job, 3), hooks)
    assert result.outcome is Outcome.FAILED
    assert seen == ["before_job", ("job_failed", [3], "no 3"), "after_job"]


def test_job_failed_does_not_run_for_a_job_that_succeeded_and_its_own_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    hooks = WorkerHooks()
    hook = hooks.add("job_failed", lambda j, exc: seen.append("ok job"))
    assert perform_with_job_hooks(job_of(lambda: None), hooks).outcome is Outcome.PERFORMED
    assert seen == []
    hooks.remove("job_failed", hook)
    assert not hooks.has("job_failed")

    def broken(job: Job, exc: BaseException) -> None:
        raise RuntimeError("the reporter is down")

    hooks = WorkerHooks()
    hooks.add("job_failed", broken)

    def job() -> None:
        raise Failing("x")

    result = perform_with_job_hooks(job_of(job), hooks)
    assert result.outcome is Outcome.FAILED  # the job's failure is still what is recorded
    assert "job_failed hook failed" in caplog.text


def test_a_tracer_that_raises_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    class Broken(tracing.Tracer):
        def moved(self, queue: str, payload: Any, started: float) -> None:
            raise RuntimeError("collector away")

    class Counting(tracing.Tracer):
        def moved(self, queue: str, payload: Any, started: float) -> None:
            calls.append(queue)

    broken, counting = Broken(), Counting()
    tracing.add_tracer(broken)
    tracing.add_tracer(counting)
    try:
        tracing.notify("moved", "q", decode_payload('{"class":"A","args":[]}'), 0.0)
    finally:
        tracing.remove_tracer(broken)
        tracing.remove_tracer(counting)
    assert calls == ["q"]
    assert "tracer Broken failed in moved" in caplog.text
    assert tracing.tracers() == ()
