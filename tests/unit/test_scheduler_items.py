"""Delayed items and what the move makes of them, byte for byte against resque-scheduler 5.0.0."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyresque.errors import PayloadError
from pyresque.scheduler.delayed import encode_item, parse_item, timestamp_of
from pyresque.scheduler.mover import plan_move
from pyresque.wire.keys import Keys
from tests.scheduler_fixtures import call, scenario

S1 = "s1_enqueue_at"


@pytest.mark.parametrize(
    ("source", "class_name", "args", "queue"),
    [
        (
            'Resque.enqueue_at(Time.at(1800000000), SomeJob, 1, "two", {"k"=>3.5})',
            "SomeJob",
            [1, "two", {"k": 3.5}],
            "mail",
        ),
        (
            "Resque.enqueue_at_with_queue('other', Time.at(1800000000), SomeJob, 3)",
            "SomeJob",
            [3],
            "other",
        ),
        (
            'Resque.enqueue_at(1800000400, OtherJob, :sym, nil, true, "é ✓", '
            '{b: 1, "a" => [2.0, 1e20, -0.5]})',
            "OtherJob",
            ["sym", None, True, "é ✓", {"b": 1, "a": [2.0, 1e20, -0.5]}],
            "low",
        ),
    ],
)
def test_items_are_rubys_bytes(source: str, class_name: str, args: list[Any], queue: str) -> None:
    rpush, sadd, zadd = call(S1, source)["redis"]
    item = encode_item(class_name, args, queue)
    assert item == rpush[2]
    assert sadd[1] == Keys("resque").timestamps(item)
    ts = int(zadd[2])
    assert rpush[1] == Keys("resque").delayed(ts)
    assert sadd[2] == f"delayed:{ts}"


def test_times_are_rounded_up_to_whole_seconds_so_a_job_never_runs_early() -> None:
    """Ruby's ``to_i`` truncates, so ``enqueue_in(1, …)`` could run 0.2 s after the call; a
    delayed job runs in the first whole second at or after its time (issue 25)."""
    assert timestamp_of(1800000300.75) == 1800000301
    assert timestamp_of(1800000300.0) == 1800000300
    assert timestamp_of(datetime(2027, 1, 15, 8, 0, 0, 999, tzinfo=timezone.utc)) == 1800000001
    assert timestamp_of(datetime(2027, 1, 15, 8, 0, 0, tzinfo=timezone.utc)) == 1800000000


@given(st.floats(0, 4e9), st.floats(0, 1e6))
def test_a_delayed_time_is_never_before_the_time_given(now: float, seconds: float) -> None:
    assert timestamp_of(now + seconds) >= now + seconds


def test_unserialisable_args_are_refused() -> None:
    with pytest.raises(PayloadError, match="SomeJob"):
        encode_item("SomeJob", [object()], "mail")


def test_a_moved_item_is_queued_as_resque_enqueue_writes_it() -> None:
    s6 = scenario("s6_enqueue_payload")["compare_with_scheduler_pushed"][0]
    item = encode_item("SomeJob", [1, "two", {"k": 3.5}], "mail")
    move = plan_move(Keys("resque"), 1800000000, item, 0.0)
    assert (move.target, move.payload, move.queue) == ("resque:queue:mail", s6["payload"], "mail")


def test_extra_keys_survive_the_move_and_queue_does_not() -> None:
    move = plan_move(Keys(), 1, '{"class":"K","args":[],"queue":"q","id":"x1"}', 0.0)
    assert move.payload == '{"class":"K","args":[],"id":"x1"}'


@pytest.mark.parametrize("item", ["{not json", '{"args":[]}', '{"class":"K","args":[]}'])
def test_an_item_that_is_not_a_job_becomes_a_failure_record(item: str) -> None:
    move = plan_move(Keys("resque"), 1800000000, item, 0.0)
    assert move.target == "resque:failed"
    assert move.queue == ""
    assert '"exception":"PayloadError"' in move.payload


def test_listing_reads_items_back() -> None:
    job = parse_item(7, '{"class":"SomeJob","args":[2],"queue":"mail"}')
    assert (job.timestamp, job.queue, job.class_name, job.args) == (7, "mail", "SomeJob", [2])


def test_a_raw_payload_becomes_a_delayed_item_for_its_queue() -> None:
    from pyresque.scheduler.delayed import payload_item

    assert payload_item("mail", '{"class":"SomeJob","args":[2]}') == (
        '{"class":"SomeJob","args":[2],"queue":"mail"}'  # Ruby's bytes for enqueue_at(…, 2)
    )
    assert payload_item("q", '{"class":"K","args":[],"queue":"old","id":1}') == (
        '{"class":"K","args":[],"queue":"q","id":1}'
    )
    with pytest.raises(PayloadError):
        payload_item("q", "[1]")
