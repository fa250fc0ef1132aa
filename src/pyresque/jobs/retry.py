"""Retrying a job that failed for a passing reason: how often, how long to wait, on what.

A retry goes through the delayed queue (resque-scheduler's layout), so it is visible (resque-web,
``pyresque schedule delayed``) and survives restarts, and the scheduler, ours or Ruby's, moves it
back to its queue when due. The attempt count lives in Redis under resque-retry's key
(``resque-retry:<class>:<args joined by '-'>``), not in the payload, so Ruby still reads the payload
as it was and resque-retry's resque-web tab sees the count.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyresque.wire.protocol import ruby_float


@dataclass(frozen=True)
class Retry:
    """A retry policy: ``attempts`` retries after the first failure, waiting ``backoff`` seconds
    before the first, multiplied by ``factor`` for each next one, at most ``max_delay``, each
    spread by ±``jitter`` (a fraction) so that a burst of failures does not come back at once.
    ``on``: the exceptions worth retrying (subclasses included); others fail at once."""

    attempts: int = 3
    backoff: float = 1.0
    factor: float = 2.0
    max_delay: float = 3600.0
    jitter: float = 0.1
    on: tuple[type[BaseException], ...] = field(default=(Exception,))

    def __post_init__(self) -> None:
        if self.attempts < 0 or self.backoff < 0 or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(
                "Retry: attempts ≥ 0, backoff ≥ 0, factor ≥ 1 and 0 ≤ jitter < 1 are required"
            )

    def retries(self, exc: BaseException | type[BaseException]) -> bool:
        """Whether a failure with this exception is retried (attempts left or not)."""
        cls = exc if isinstance(exc, type) else type(exc)
        return issubclass(cls, self.on)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        base = min(self.max_delay, self.backoff * self.factor ** max(attempt - 1, 0))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))


def policy_of(value: Retry | int | None) -> Retry | None:
    """``retry=`` as a job decorator takes it: a policy, a number of attempts, or nothing."""
    if value is None or isinstance(value, Retry):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Retry(attempts=value)
    raise TypeError(f"retry= takes a pyresque.Retry or a number of attempts, not {value!r}")


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
