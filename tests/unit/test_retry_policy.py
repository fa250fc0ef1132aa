"""Retry policies: one word, one meaning (a *retry* is a run after a failure, an *attempt* is any
run), and a retry never comes back before its delay."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyresque.jobs.retry import Retry, policy_of


def test_retries_is_the_number_of_runs_after_the_first_failure() -> None:
    assert Retry(retries=3).retries == 3
    assert policy_of(3) == Retry(retries=3)
    assert Retry().retries == 3


def test_the_old_name_still_works_and_says_so() -> None:
    """``Retry(attempts=3)`` gave three retries, four attempts, and the failure said "after 4
    attempts" (issue 25): the count is now called ``retries``; the old keyword means the same."""
    with pytest.warns(DeprecationWarning, match="retries="):
        policy = Retry(attempts=3)
    assert policy == Retry(retries=3)


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="retries ≥ 0"):
        Retry(retries=-1)


@pytest.mark.parametrize(
    ("now", "attempt", "expected"),
    [
        # backoff 1, factor 2, no jitter: 1 s, 2 s, 4 s after the failure, never less
        (100.0, 1, 101),
        (100.25, 1, 102),
        (100.25, 2, 103),
        (100.25, 3, 105),
        (100.999, 3, 105),
    ],
)
def test_a_retry_is_due_in_the_first_whole_second_after_its_delay(
    now: float, attempt: int, expected: int
) -> None:
    """``int(now + delay)`` made 1, 2, 4 s come out as about 1, 1, 3 s."""
    assert Retry(retries=3, backoff=1, factor=2, jitter=0).due_at(now, attempt) == expected


@given(st.floats(0, 4e9), st.integers(1, 20), st.integers(0, 2**32))
def test_a_retry_is_never_due_before_its_delay(now: float, attempt: int, seed: int) -> None:
    policy = Retry(retries=20, backoff=2, factor=3, max_delay=600, jitter=0.5)
    rng = random.Random(seed)
    due = policy.due_at(now, attempt, random.Random(seed))
    assert due >= now + policy.delay(attempt, rng)
