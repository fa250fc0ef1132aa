"""Pure parts of the dashboard: percentiles from bucket counts, the metrics accumulator, the
terminal view, auth and bind parsing."""

from __future__ import annotations

import pytest

from pyresque.cli.watch import Snapshot, render
from pyresque.web.jobstats import parse_minute, per_minute, percentile, summarize
from pyresque.wire.keys import Keys


def test_dashboard_keys() -> None:
    assert Keys("ns").metrics_jobs(29_000_000) == "ns:metrics:jobs:29000000"
    assert Keys("ns").pool("h:1") == "ns:pool:h:1" and Keys("ns").pools == "ns:pools"


@pytest.mark.parametrize(
    ("counts", "q", "expected"),
    [
        ({3: 10}, 0.5, 7.5),  # all in (5, 10]: the median sits halfway
        ({0: 1, 6: 1}, 0.5, 1.0),  # 1 of 2 in the first bucket
        ({0: 1, 6: 1}, 0.95, 95.0),  # (50, 100], 90 % of the way
        ({15: 4}, 0.5, 60000.0),  # the open bucket answers with its lower bound
        ({}, 0.5, None),
    ],
)
def test_percentile_interpolates_inside_the_bucket(
    counts: dict[int, int], q: float, expected: float | None
) -> None:
    buckets = [counts.get(i, 0) for i in range(16)]
    assert percentile(buckets, q) == expected


def test_minute_hashes_summarize_per_class_and_per_minute() -> None:
    # m1 as earlier versions wrote it (a "|p" count beside the buckets it duplicates), m2 as now,
    # with a bucket beyond ours (a newer writer's): its job counts, in no bucket of ours
    m1 = {"A|p": 2, "A|f": 1, "A|ms": 30, "A|h3": 1, "A|h4": 1, "Mod::B|p": 1, "Mod::B|h0": 1}
    m2 = {"A|ms": 4, "A|h2": 1, "junk": 5, "A|h99": 1, "A|zz": 1}
    rows = summarize([m1, m2])
    assert [(r.name, r.processed, r.failed, r.total_ms) for r in rows] == [
        ("A", 4, 1, 34),
        ("Mod::B", 1, 0, 0),
    ]
    assert parse_minute(m2)["A"].buckets[2] == 1
    series = per_minute([10, 11], [m1, m2], "A")
    assert series["processed"] == [2.0, 2.0] and series["minute"] == [600.0, 660.0]
    assert series["p50"][1] == 3.75  # one job in (2.5, 5]: rank 0.5 of 1


def test_histogram_labels_and_bars() -> None:
    from pyresque.web.jobstats import JobTotals, bucket_label, histogram

    assert [bucket_label(i) for i in (0, 1, 9, 14, 15)] == [
        "\u2264 1 ms",
        "\u2264 2.5 ms",
        "\u2264 1 s",
        "\u2264 60 s",
        "> 60 s",
    ]
    row = JobTotals("A", buckets=[0] * 14 + [2, 4])
    assert histogram(row)[14:] == [("\u2264 60 s", 2, 0.5), ("> 60 s", 4, 1.0)]


def test_accumulator_counts_each_completed_minute_once() -> None:
    pytest.importorskip("prometheus_client")
    from pyresque.web.metrics import JobMetricsAccumulator

    data = {100: {"A|h0": 1}, 101: {"A|h0": 2}, 102: {"A|h3": 4}}
    asked: list[list[int]] = []

    def fetch(minutes: object) -> list[dict[str, int]]:
        asked.append(list(minutes))  # type: ignore[call-overload]
        return [data.get(m, {}) for m in asked[-1]]

    acc = JobMetricsAccumulator()
    acc.advance(102 * 60 + 10, fetch)  # minute 102 is still being written
    assert acc.snapshot()[0].processed == 3 and asked[0][-1] == 101
    acc.advance(102 * 60 + 50, fetch)
    assert len(asked) == 1  # nothing new completed
    acc.advance(103 * 60 + 1, fetch)  # the workers may still be writing minute 102's figures
    assert len(asked) == 1
    acc.advance(103 * 60 + 6, fetch)
    assert asked[1] == [102] and acc.snapshot()[0].processed == 7


def test_watch_render_shows_rates_and_fits_the_terminal() -> None:
    prev = Snapshot(100.0, 10, 1, 1, False, {"a": 5}, [], 2)
    snap = Snapshot(102.0, 20, 3, 3, True, {"a": 2, "b": 9}, [("h:1:a", "a: Echo [1]")], 1)
    lines = render(snap, prev, 80, 40, "redis://***@h")
    text = "\n".join(lines)
    assert "ALL WORKERS PAUSED" in lines[0]
    assert "processed 20 (5.0/s)  failed 3 (1.0/s)" in text
    assert "workers 2: 1 busy, 1 idle" in text
    assert lines.index(next(x for x in lines if x.startswith("b "))) < lines.index(
        next(x for x in lines if x.startswith("a "))
    )  # deepest queue first
    assert any(x.startswith("a ") and x.endswith("-3") for x in lines)
    small = render(snap, prev, 20, 6, "x")
    assert len(small) == 5 and all(len(x) <= 20 for x in small) and small[-1].startswith("…")


def test_auth_and_bind_parsing() -> None:
    from pyresque.errors import ConfigError
    from pyresque.web.security import is_loopback, parse_auth, token_ok
    from pyresque.web.server import parse_bind

    assert parse_auth("ops:a:b") == ("ops", "a:b") and parse_auth("") is None
    with pytest.raises(ValueError):
        parse_auth("nopassword")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("")
    assert parse_bind("[::1]:80") == ("::1", 80) and parse_bind("0.0.0.0:5678") == ("0.0.0.0", 5678)
    with pytest.raises(ConfigError):
        parse_bind("localhost")
    assert token_ok("abc", "abc") and not token_ok("abc", "abd") and not token_ok(None, "")
