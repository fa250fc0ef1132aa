"""Running one job with Resque's job hooks.

Hook semantics follow Resque::Job#perform: ``before_perform*`` hooks run first and may raise
:class:`DontPerform` to skip the job quietly; ``around_perform*`` hooks nest, the first wrapping the
second and so on down to ``perform`` (a hook that does not yield skips the job); ``after_perform*``
hooks run after success; ``on_failure*`` hooks run once, with the exception, when anything raises.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyresque.errors import DontPerform, TermException
from pyresque.jobs.registry import JobSpec
from pyresque.wire.protocol import Failure, Payload, dumps, shorten

log = logging.getLogger(__name__)


class Outcome(str, enum.Enum):
    PERFORMED = "performed"
    NOT_PERFORMED = "not_performed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Result:
    """How a job ended. ``failure`` is set when it FAILED."""

    outcome: Outcome
    failure: Failure | None = None
    retryable: bool = False  # the job's retry policy covers this failure's exception
    # the exception itself, in the process that ran the job (for the job_failed hooks); a
    # result read from a job child's pipe has none
    error: BaseException | None = field(default=None, compare=False, repr=False)

    def to_wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {"outcome": self.outcome.value}
        if self.failure is not None:
            data["failure"] = self.failure.to_dict()
        if self.retryable:
            data["retryable"] = True
        return data

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Result:
        failure = data.get("failure")
        return cls(
            Outcome(data["outcome"]),
            Failure(failure["exception"], failure["error"], list(failure["backtrace"]))
            if failure
            else None,
            bool(data.get("retryable")),
        )


@dataclass(frozen=True)
class Job:
    """A reserved job as hooks see it: its queue, its decoded payload and the Python job behind it."""

    queue: str
    payload: Payload
    spec: JobSpec
    raw: str = field(default="", compare=False, repr=False)  # the payload as reserved, if known

    @property
    def args(self) -> list[Any]:
        return self.payload.args

    def describe(self, show_args: bool = False) -> str:
        """The job for a log line: queue, class and a digest of the arguments, which may hold
        personal data (the arguments themselves, cut short, only when asked for)."""
        args = self.shown_args(show_args)
        return f"(Job{{{self.queue}}} | {self.payload.short_class} | {args})"

    def shown_args(self, show_args: bool = False) -> str:
        """The arguments as logs and error reports show them: a digest, or (when asked for)
        their text cut short."""
        if show_args:
            return shorten(repr(self.payload.args), 500)
        encoded = dumps(self.payload.args).encode("utf-8", "surrogateescape")
        return f"args sha1:{hashlib.sha1(encoded).hexdigest()[:10]}"

    def __str__(self) -> str:
        return self.describe()


def perform(spec: JobSpec, args: Sequence[Any]) -> Result:
    """Run the job and its hooks, and say how it ended; it does not raise (a TermException
    becomes an INTERRUPTED result, any other exception a FAILED one)."""
    try:
        performed = _perform_with_hooks(spec, list(args))
    except TermException:
        return Result(Outcome.INTERRUPTED)
    except BaseException as exc:  # a job's SystemExit or KeyboardInterrupt is its failure too
        run_failure_hooks(spec, exc, args)
        retryable = spec.retry.covers(exc) if spec.retry is not None else True
        return Result(Outcome.FAILED, Failure.from_exception(exc), retryable, exc)
    return Result(Outcome.PERFORMED if performed else Outcome.NOT_PERFORMED)


def run_failure_hooks(spec: JobSpec, exc: BaseException, args: Sequence[Any]) -> None:
    """Call every on_failure hook with the exception and the job's args; log their own errors."""
    for hook in spec.hooks("on_failure"):
        try:
            hook(exc, *args)
        except Exception:
            log.exception("on_failure hook %s of %s failed", _name(hook), spec.name)


def _perform_with_hooks(spec: JobSpec, args: list[Any]) -> bool:
    try:
        for hook in spec.hooks("before_perform"):
            hook(*args)
    except DontPerform:
        return False
    performer = spec.performer()
    performed = False

    def innermost() -> None:
        nonlocal performed
        performed = True
        performer(*args)

    _nest(spec.hooks("around_perform"), args, innermost)
    if not performed:
        return False
    for hook in spec.hooks("after_perform"):
        hook(*args)
    return True


def _nest(
    hooks: Sequence[Callable[..., Any]], args: list[Any], innermost: Callable[[], None]
) -> None:
    """Run ``innermost`` inside each around hook; a hook is a generator that yields once."""
    if not hooks:
        innermost()
        return
    gen = hooks[0](*args)
    if not isinstance(gen, Generator):
        raise TypeError(f"around_perform hook {_name(hooks[0])} must be a generator (use yield)")
    try:
        next(gen)
    except StopIteration:
        return  # the hook did not yield: the job is skipped, as in Resque
    try:
        _nest(hooks[1:], args, innermost)
    except BaseException as exc:
        try:
            gen.throw(exc)
        except StopIteration:
            return  # the hook handled the exception
        raise RuntimeError(f"around_perform hook {_name(hooks[0])} yielded twice") from exc
    try:
        next(gen)
    except StopIteration:
        return
    raise RuntimeError(f"around_perform hook {_name(hooks[0])} yielded twice")


def _name(hook: Callable[..., Any]) -> str:
    return getattr(hook, "__qualname__", repr(hook))
