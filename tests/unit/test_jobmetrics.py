"""When a worker's per-job figures are due to be written: the batch's rules, without Redis."""

from __future__ import annotations

import math

from pyresque.wire.jobmetrics import MetricsBatch, bucket_of

MINUTE = 60 * 29_000_000  # epoch seconds at the start of a minute


def test_nothing_pending_is_never_due() -> None:
    batch = MetricsBatch(interval=1.0)
    assert batch.seconds_until_due(100.0) == math.inf
    assert batch.take(100.0) == []
    assert batch.seconds_until_due(100.0) == math.inf


def test_a_job_after_a_quiet_second_is_due_at_once_then_its_followers_wait() -> None:
    batch = MetricsBatch(interval=1.0)
    batch.add("A", 0.002, False, MINUTE + 1)
    assert batch.due(100.0)  # nothing written for a second: at once
    assert [f.increments for f in batch.take(100.0)] == [{"A|ms": 2, f"A|h{bucket_of(2)}": 1}]
    batch.add("A", 0.002, False, MINUTE + 1)
    batch.add("A", 0.004, True, MINUTE + 1)
    assert not batch.due(100.5)
    assert batch.seconds_until_due(100.5) == 0.5
    assert batch.due(101.0)
    (figures,) = batch.take(101.0)
    assert figures.minute == MINUTE // 60
    assert figures.increments == {
        "A|ms": 6,
        f"A|h{bucket_of(2)}": 1,
        f"A|h{bucket_of(4)}": 1,
        "A|f": 1,
    }


def test_a_minute_is_due_as_soon_as_a_job_finishes_in_the_next() -> None:
    batch = MetricsBatch(interval=1.0)
    batch.add("A", 0.001, False, MINUTE + 59.9)
    batch.take(100.0)
    batch.add("A", 0.001, False, MINUTE + 59.95)
    assert not batch.due(100.1)
    batch.add("A", 0.001, False, MINUTE + 60.01)
    assert batch.due(100.1)
    assert [f.minute for f in batch.take(100.1)] == [MINUTE // 60, MINUTE // 60 + 1]
