"""job.perform with Resque's hook semantics (Resque::Job#perform, Resque::Plugin)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from pyresque.errors import DontPerform, TermException
from pyresque.jobs.job import Job, Outcome, Result, perform
from pyresque.jobs.registry import JobSpec
from pyresque.wire.protocol import Failure, Payload


class BoomError(Exception):
    pass


class Recorder:
    """Base of the job classes below: ``events`` is per class, reset by the fixture."""

    events: ClassVar[list[str]] = []


@pytest.fixture(autouse=True)
def _reset_events() -> Iterator[None]:
    classes: list[type[Recorder]] = [*Recorder.__subclasses__(), Recorder]
    for cls in classes:
        cls.events = []
    yield


def run(cls: type, *args: Any) -> Result:
    return perform(JobSpec(cls.__name__, cls), args)


class Ordered(Recorder):
    @staticmethod
    def before_perform_b(*args: Any) -> None:
        Ordered.events.append("before_b")

    @staticmethod
    def before_perform(*args: Any) -> None:
        Ordered.events.append("before")

    @staticmethod
    def before_perform_a(*args: Any) -> None:
        Ordered.events.append("before_a")

    @staticmethod
    def around_perform_b(*args: Any) -> Iterator[None]:
        Ordered.events.append("b:enter")
        yield
        Ordered.events.append("b:exit")

    @staticmethod
    def around_perform_a(*args: Any) -> Iterator[None]:
        Ordered.events.append(f"a:enter{list(args)}")
        yield
        Ordered.events.append("a:exit")

    @staticmethod
    def perform(x: int, y: str) -> None:
        Ordered.events.append(f"perform({x},{y})")

    @staticmethod
    def after_perform_z(*args: Any) -> None:
        Ordered.events.append("after_z")

    @staticmethod
    def after_perform(*args: Any) -> None:
        Ordered.events.append(f"after{list(args)}")

    @staticmethod
    def on_failure(exc: BaseException, *args: Any) -> None:
        Ordered.events.append("on_failure")


def test_hooks_run_in_name_order_around_hooks_nested() -> None:
    result = run(Ordered, 1, "x")
    assert result == Result(Outcome.PERFORMED)
    assert Ordered.events == [
        "before",
        "before_a",
        "before_b",
        "a:enter[1, 'x']",
        "b:enter",
        "perform(1,x)",
        "b:exit",
        "a:exit",
        "after[1, 'x']",
        "after_z",
    ]


class Declined(Recorder):
    @staticmethod
    def before_perform_1(*args: Any) -> None:
        Declined.events.append("before_1")
        raise DontPerform("not today")

    @staticmethod
    def before_perform_2(*args: Any) -> None:
        Declined.events.append("before_2")

    @staticmethod
    def around_perform(*args: Any) -> Iterator[None]:
        Declined.events.append("around")
        yield

    @staticmethod
    def perform() -> None:
        Declined.events.append("perform")

    @staticmethod
    def after_perform() -> None:
        Declined.events.append("after")

    @staticmethod
    def on_failure(exc: BaseException) -> None:
        Declined.events.append("on_failure")


def test_dont_perform_in_a_before_hook_skips_quietly() -> None:
    result = run(Declined)
    assert result == Result(Outcome.NOT_PERFORMED, None)
    assert Declined.events == ["before_1"]


class NoYield(Recorder):
    @staticmethod
    def around_perform_a(*args: Any) -> Iterator[None]:
        NoYield.events.append("a:enter")
        yield
        NoYield.events.append("a:exit")

    @staticmethod
    def around_perform_b(*args: Any) -> Iterator[None]:
        NoYield.events.append("b:decides-not-to-yield")
        return
        yield

    @staticmethod
    def perform() -> None:
        NoYield.events.append("perform")

    @staticmethod
    def after_perform() -> None:
        NoYield.events.append("after")

    @staticmethod
    def on_failure(exc: BaseException) -> None:
        NoYield.events.append("on_failure")


def test_an_around_hook_that_does_not_yield_skips_perform_and_after_hooks() -> None:
    assert run(NoYield) == Result(Outcome.NOT_PERFORMED)
    assert NoYield.events == ["a:enter", "b:decides-not-to-yield", "a:exit"]


class Failing(Recorder):
    calls: ClassVar[list[tuple[BaseException, tuple[Any, ...]]]] = []

    @staticmethod
    def around_perform(*args: Any) -> Iterator[None]:
        Failing.events.append("around:enter")
        try:
            yield
        finally:
            Failing.events.append("around:finally")

    @staticmethod
    def perform(x: str, n: int) -> None:
        Failing.events.append("perform")
        raise BoomError(f"boom: {x} {n}")

    @staticmethod
    def after_perform(*args: Any) -> None:
        Failing.events.append("after")

    @staticmethod
    def on_failure(exc: BaseException, *args: Any) -> None:
        Failing.events.append("on_failure")
        Failing.calls.append((exc, args))

    @staticmethod
    def on_failure_notify(exc: BaseException, *args: Any) -> None:
        Failing.events.append("on_failure_notify")


def test_a_failing_job_runs_each_on_failure_hook_once_and_no_after_hook() -> None:
    Failing.calls = []
    result = run(Failing, "x", 42)
    assert result.outcome is Outcome.FAILED
    assert result.failure is not None
    assert result.failure.exception == "tests.unit.test_job_hooks.BoomError"
    assert result.failure.error == "boom: x 42"
    assert result.failure.backtrace[0].endswith("in `perform'")
    assert Failing.events == [
        "around:enter",
        "perform",
        "around:finally",
        "on_failure",
        "on_failure_notify",
    ]
    [(exc, args)] = Failing.calls
    assert isinstance(exc, BoomError)
    assert str(exc) == "boom: x 42"
    assert args == ("x", 42)


class AfterFails(Recorder):
    @staticmethod
    def perform() -> None:
        AfterFails.events.append("perform")

    @staticmethod
    def after_perform() -> None:
        raise BoomError("after hook broke")

    @staticmethod
    def on_failure(exc: BaseException) -> None:
        AfterFails.events.append(f"on_failure:{exc}")


def test_an_after_hook_that_raises_fails_the_job() -> None:
    result = run(AfterFails)
    assert result.outcome is Outcome.FAILED
    assert result.failure is not None
    assert result.failure.error == "after hook broke"
    assert AfterFails.events == ["perform", "on_failure:after hook broke"]


class BadFailureHook(Recorder):
    @staticmethod
    def perform() -> None:
        raise BoomError("original")

    @staticmethod
    def on_failure_a(exc: BaseException) -> None:
        raise RuntimeError("hook broke")

    @staticmethod
    def on_failure_b(exc: BaseException) -> None:
        BadFailureHook.events.append(f"b:{exc}")


def test_a_raising_on_failure_hook_does_not_hide_the_failure_or_other_hooks() -> None:
    result = run(BadFailureHook)
    assert result.failure is not None
    assert result.failure.error == "original"
    assert BadFailureHook.events == ["b:original"]


class Interrupted(Recorder):
    @staticmethod
    def around_perform(*args: Any) -> Iterator[None]:
        try:
            yield
        finally:
            Interrupted.events.append("around:cleanup")

    @staticmethod
    def perform() -> None:
        Interrupted.events.append("perform")
        raise TermException("shutdown")

    @staticmethod
    def after_perform() -> None:
        Interrupted.events.append("after")

    @staticmethod
    def on_failure(exc: BaseException) -> None:
        Interrupted.events.append("on_failure")


def test_term_exception_interrupts_without_failure_hooks() -> None:
    assert run(Interrupted) == Result(Outcome.INTERRUPTED, None)
    assert Interrupted.events == ["perform", "around:cleanup"]


class Swallows(Recorder):
    @staticmethod
    def around_perform(*args: Any) -> Iterator[None]:
        try:
            yield
        except BoomError as exc:
            Swallows.events.append(f"around:caught:{exc}")

    @staticmethod
    def perform() -> None:
        raise BoomError("handled")

    @staticmethod
    def on_failure(exc: BaseException) -> None:
        Swallows.events.append("on_failure")


def test_an_exception_handled_by_an_around_hook_does_not_fail_the_job() -> None:
    result = run(Swallows)
    assert result.outcome is not Outcome.FAILED
    assert result.failure is None
    assert Swallows.events == ["around:caught:handled"]


class Instance(Recorder):
    instances: ClassVar[list[Instance]] = []

    def __init__(self) -> None:
        Instance.instances.append(self)

    def perform(self, x: int) -> None:
        Instance.events.append(f"{type(self).__name__}.perform({x})")


def test_a_plain_method_perform_instantiates_the_class_per_job() -> None:
    Instance.instances = []
    assert run(Instance, 1) == Result(Outcome.PERFORMED)
    assert run(Instance, 2) == Result(Outcome.PERFORMED)
    assert Instance.events == ["Instance.perform(1)", "Instance.perform(2)"]
    assert len(Instance.instances) == 2
    assert Instance.instances[0] is not Instance.instances[1]


def test_one_spec_runs_every_hook_and_a_fresh_instance_for_every_job() -> None:
    """A spec finds its hooks and a static ``perform`` once; every job still runs them all, in
    order, and a class with a plain ``perform`` still gets an instance of its own per job."""
    ordered = JobSpec("Ordered", Ordered)
    assert perform(ordered, [1, "x"]) == Result(Outcome.PERFORMED)
    first = list(Ordered.events)
    assert perform(ordered, [1, "x"]) == Result(Outcome.PERFORMED)
    assert Ordered.events == first + first and "perform(1,x)" in first
    Instance.instances = []
    instance = JobSpec("Instance", Instance)
    assert perform(instance, [1]) == perform(instance, [2]) == Result(Outcome.PERFORMED)
    assert len(Instance.instances) == 2
    assert Instance.instances[0] is not Instance.instances[1]


class ClassMethodJob(Recorder):
    @classmethod
    def perform(cls, x: int) -> None:
        cls.events.append(f"{cls.__name__}({x})")


def test_a_classmethod_perform_is_called_on_the_class() -> None:
    assert run(ClassMethodJob, 3) == Result(Outcome.PERFORMED)
    assert ClassMethodJob.events == ["ClassMethodJob(3)"]


def test_a_function_job_runs_with_its_args_and_has_no_hooks() -> None:
    seen: list[tuple[Any, ...]] = []

    def job(*args: Any) -> None:
        seen.append(args)

    assert perform(JobSpec("f", job), [1, "two"]) == Result(Outcome.PERFORMED)
    assert seen == [(1, "two")]


def test_a_function_job_that_raises_fails() -> None:
    def job() -> None:
        raise KeyError("k")

    result = perform(JobSpec("f", job), [])
    assert result.failure is not None
    assert (result.outcome, result.failure.exception, result.failure.error) == (
        Outcome.FAILED,
        "KeyError",
        "'k'",
    )


def test_system_exit_in_a_job_is_its_failure() -> None:
    def job() -> None:
        raise SystemExit(3)

    result = perform(JobSpec("f", job), [])
    assert result.outcome is Outcome.FAILED
    assert result.failure is not None
    assert result.failure.exception == "SystemExit"


class NotAGenerator(Recorder):
    @staticmethod
    def around_perform() -> None:
        NotAGenerator.events.append("around")

    @staticmethod
    def perform() -> None:
        NotAGenerator.events.append("perform")


def test_an_around_hook_must_be_a_generator() -> None:
    result = run(NotAGenerator)
    assert result.failure is not None
    assert result.failure.exception == "TypeError"
    assert "around_perform hook" in result.failure.error
    assert "must be a generator" in result.failure.error
    assert NotAGenerator.events == ["around"]


class YieldsTwice(Recorder):
    @staticmethod
    def around_perform() -> Iterator[None]:
        yield
        yield

    @staticmethod
    def perform() -> None:
        YieldsTwice.events.append("perform")


def test_an_around_hook_that_yields_twice_fails_the_job() -> None:
    result = run(YieldsTwice)
    assert result.failure is not None
    assert result.failure.exception == "RuntimeError"
    assert "yielded twice" in result.failure.error
    assert YieldsTwice.events == ["perform"]


def test_result_wire_format_round_trips() -> None:
    failed = Result(Outcome.FAILED, Failure("E", "m", ["a.py:1:in `f'"]))
    assert failed.to_wire() == {
        "outcome": "failed",
        "failure": {"exception": "E", "error": "m", "backtrace": ["a.py:1:in `f'"]},
    }
    for result in (failed, Result(Outcome.PERFORMED), Result(Outcome.INTERRUPTED)):
        assert Result.from_wire(result.to_wire()) == result


def test_job_str_names_queue_class_and_args() -> None:
    job = Job("oracle", Payload("Echo", [1, "a"]), JobSpec("Echo", Ordered))
    # arguments may hold personal data: logs show a digest of them unless asked for more
    digest = hashlib.sha1(b'[1,"a"]').hexdigest()[:10]
    assert str(job) == f"(Job{{oracle}} | Echo | args sha1:{digest})"
    assert job.describe(show_args=True) == "(Job{oracle} | Echo | [1, 'a'])"
    huge = Job("q", Payload("C" * 1_000_000, []), JobSpec("C", Ordered))
    assert len(str(huge)) < 300  # a hostile class name does not make a 1 MB log line
    assert job.args == [1, "a"]


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ broke")


def test_an_unprintable_exception_still_fails_the_job_with_its_own_class() -> None:
    def job() -> None:
        raise UnprintableError

    result = perform(JobSpec("f", job), [])
    assert result.failure is not None
    assert (result.outcome, result.failure.exception, result.failure.error) == (
        Outcome.FAILED,
        "tests.unit.test_job_hooks.UnprintableError",
        "<exception str() failed>",
    )
