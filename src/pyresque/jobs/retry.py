"""Retrying a job that failed for a passing reason: how often, how long to wait, on what.

A retry goes through the delayed queue (resque-scheduler's layout), so it is visible (resque-web,
``pyresque schedule delayed``) and survives restarts, and the scheduler, ours or Ruby's, moves it
back to its queue when due. The attempt count lives in Redis under resque-retry's key
(``resque-retry:<class>:<args joined by '-'>``), not in the payload, so Ruby still reads the payload
as it was and resque-retry's resque-web tab sees the count.
"""

from __future__ import annotations

import json
import math
import random
import warnings
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any

from pyresque.wire.protocol import ruby_float


@dataclass(frozen=True)
class Retry:
    """A retry policy: ``retries`` runs after the first failure (so ``retries + 1`` attempts in
    all), waiting ``backoff`` seconds before the first, multiplied by ``factor`` for each next one,
    at most ``max_delay``, each spread by ±``jitter`` (a fraction) so that a burst of failures does
    not come back at once. ``on``: the exceptions worth retrying (subclasses included); others fail
    at once.

    One word, one meaning: a *retry* is a run after a failure, an *attempt* is any run, as the
    failure text says (``after 4 attempts`` for ``retries=3``). ``attempts=`` is the old name of
    ``retries`` (same meaning), kept with a DeprecationWarning.
    """

    retries: int = 3
    backoff: float = 1.0
    factor: float = 2.0
    max_delay: float = 3600.0
    jitter: float = 0.1
    on: tuple[type[BaseException], ...] = field(default=(Exception,))
    attempts: InitVar[int | None] = None

    def __post_init__(self, attempts: int | None) -> None:
        if attempts is not None:
            warnings.warn(
                "Retry(attempts=N) is now Retry(retries=N): N retries after the first failure",
                DeprecationWarning,
                stacklevel=3,
            )
            object.__setattr__(self, "retries", attempts)
        if self.retries < 0 or self.backoff < 0 or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(
                "Retry: retries ≥ 0, backoff ≥ 0, factor ≥ 1 and 0 ≤ jitter < 1 are required"
            )

    def covers(self, exc: BaseException | type[BaseException]) -> bool:
        """Whether a failure with this exception is retried (retries left or not)."""
        cls = exc if isinstance(exc, type) else type(exc)
        return issubclass(cls, self.on)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        base = min(self.max_delay, self.backoff * self.factor ** max(attempt - 1, 0))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))

    def due_at(self, now: float, attempt: int, rng: random.Random | None = None) -> int:
        """The whole second retry number ``attempt`` is delayed to, after a failure at ``now``:
        rounded up, as the delayed queue holds whole seconds and a retry must never come back
        before its delay (``int()`` made 1, 2, 4 s into about 1, 1, 3 s)."""
        return math.ceil(now + self.delay(attempt, rng))


def policy_of(value: Retry | int | None) -> Retry | None:
    """``retry=`` as a job decorator takes it: a policy, a number of retries, or nothing."""
    if value is None or isinstance(value, Retry):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Retry(retries=value)
    raise TypeError(f"retry= takes a pyresque.Retry or a number of retries, not {value!r}")


def retry_identifier(args: Sequence[Any]) -> str:
    """resque-retry's identifier: Ruby's ``args.join('-')`` (arrays flattened, values as Ruby's
    ``to_s`` writes them) with white space removed; empty for no arguments."""
    return "".join("-".join(_ruby_to_s(a) for a in _flatten(args)).split())


def _flatten(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out += _flatten(value)
        else:
            out.append(value)
    return out


def _ruby_to_s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ruby_float(repr(value))
    if isinstance(value, dict):  # Ruby 3.1's Hash#inspect
        inner = ", ".join(f"{_ruby_inspect(k)}=>{_ruby_inspect(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return str(value)


def _ruby_inspect(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_ruby_inspect(v) for v in value) + "]"
    if value is None:
        return "nil"
    return _ruby_to_s(value)
