"""Payloads, failure records and times, byte for byte against what Ruby Resque 3.0.0 wrote."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyresque.errors import PayloadError
from pyresque.wire import protocol
from pyresque.wire.protocol import Failure, Payload
from tests.ruby_fixtures import (
    FAILED_AT,
    FAILURE_KEYS,
    FIXTURE_DIR,
    HEARTBEAT,
    RUN_AT,
    SHARED_FIXTURE_DIR,
    STARTED,
    at,
    failed_at_epoch,
    local_tz,
    mask_times,
    observed,
    tz_available,
)

NEW_YORK = "America/New_York"
needs_new_york = pytest.mark.skipif(
    not tz_available(NEW_YORK), reason="the system has no tz database entry for America/New_York"
)

ECHO_ARGS: list[Any] = [1, "two", {"k": 3.5, "n": None}, True, "é ✓", 0]


@pytest.fixture
def utc() -> Iterator[None]:
    with local_tz("UTC"):
        yield


@pytest.fixture
def new_york() -> Iterator[None]:
    if not tz_available(NEW_YORK):
        pytest.skip("the system has no tz database entry for America/New_York")
    with local_tz(NEW_YORK):
        yield


class BoomError(Exception):
    pass


def test_fixture_copy_is_the_shared_one() -> None:
    if not SHARED_FIXTURE_DIR.is_dir():
        pytest.skip("shared fixtures not present on this machine")
    for name in ("observed.json", "worker-lifetime-monitor.md"):
        assert (FIXTURE_DIR / name).read_bytes() == (SHARED_FIXTURE_DIR / name).read_bytes()


# --- payloads --------------------------------------------------------------------------------


def test_encode_payload_is_rubys_queue_item_byte_for_byte() -> None:
    enqueue = observed()["enqueue"]
    encoded = protocol.encode_payload("Echo", ECHO_ARGS)
    assert encoded == enqueue["queue_item"]
    assert encoded.encode("utf-8") == enqueue["redis"][1][2].encode("utf-8")
    assert Payload("Echo", ECHO_ARGS).encode() == enqueue["queue_item"]


def test_encode_payload_accepts_a_tuple_of_args() -> None:
    assert protocol.encode_payload("Archive", (44, "masterbrew")) == (
        '{"class":"Archive","args":[44,"masterbrew"]}'
    )


def test_encode_payload_writes_raw_utf8_not_escapes() -> None:
    encoded = protocol.encode_payload("Echo", ["é ✓", "日本", "\U0001f600"])
    assert "\\u" not in encoded
    assert encoded.encode("utf-8") == (
        b'{"class":"Echo","args":["\xc3\xa9 \xe2\x9c\x93","\xe6\x97\xa5\xe6\x9c\xac",'
        b'"\xf0\x9f\x98\x80"]}'
    )


def test_decode_rubys_queue_item() -> None:
    payload = protocol.decode_payload(observed()["enqueue"]["queue_item"])
    assert payload == Payload("Echo", ECHO_ARGS, {})


def test_decode_accepts_utf8_bytes() -> None:
    raw = observed()["enqueue"]["queue_item"].encode("utf-8")
    assert protocol.decode_payload(raw).args[4] == "é ✓"


def test_extra_keys_are_preserved_after_class_and_args() -> None:
    raw = '{"class":"A","args":[1],"jid":"abc","enqueued_at":1.5,"meta":{"x":[null]}}'
    payload = protocol.decode_payload(raw)
    assert payload.extra == {"jid": "abc", "enqueued_at": 1.5, "meta": {"x": [None]}}
    assert list(payload.to_dict()) == ["class", "args", "jid", "enqueued_at", "meta"]
    assert payload.encode() == raw


def test_missing_args_means_no_args() -> None:
    assert protocol.decode_payload('{"class":"A"}') == Payload("A", [], {})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_encode_rejects_nan_and_infinity(value: float) -> None:
    with pytest.raises(PayloadError, match=r"arguments of A are not JSON-serialisable"):
        protocol.encode_payload("A", [1, {"x": value}])


def test_encode_rejects_objects_json_cannot_represent() -> None:
    with pytest.raises(PayloadError, match=r"arguments of A are not JSON-serialisable"):
        protocol.encode_payload("A", [object()])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"class":"A","args":[1', "payload is not valid JSON"),
        ("", "payload is not valid JSON"),
        (b"\xff\xfe{", "payload is not valid JSON"),
        ('{"class":"A","args":[NaN]}', "payload is not valid JSON: NaN is not valid JSON"),
        ('{"class":"A","args":[Infinity]}', "payload is not valid JSON: Infinity is not valid"),
        ('{"class":"A","args":[-Infinity]}', "payload is not valid JSON: -Infinity is not valid"),
        ("[" * 100_000 + "]" * 100_000, "payload is not valid JSON: JSON nested too deeply"),
        ('[{"class":"A","args":[]}]', "payload must be a JSON object, got array"),
        ('"Echo"', "payload must be a JSON object, got string"),
        ("null", "payload must be a JSON object, got null"),
        ("42", "payload must be a JSON object, got number"),
        ('{"args":[1]}', "payload has no 'class' string"),
        ('{"class":"","args":[]}', "payload has no 'class' string"),
        ('{"class":7,"args":[]}', "payload has no 'class' string"),
        ('{"class":null,"args":[]}', "payload has no 'class' string"),
        ('{"class":"A","args":{"a":1}}', "payload 'args' must be a list, got object"),
        ('{"class":"A","args":"x"}', "payload 'args' must be a list, got string"),
        ('{"class":"A","args":5}', "payload 'args' must be a list, got number"),
        ('{"class":"A","args":true}', "payload 'args' must be a list, got boolean"),
    ],
)
def test_decode_rejects_bad_payloads_with_a_clear_message(raw: str | bytes, message: str) -> None:
    with pytest.raises(PayloadError) as info:
        protocol.decode_payload(raw)
    assert str(info.value).startswith(message)


def test_lone_surrogate_is_escaped_so_redis_can_take_it() -> None:
    # json.loads turns "\ud800" into a lone surrogate; written raw it is not UTF-8 at all.
    raw = '{"class":"A","args":["\\ud800x"]}'
    payload = protocol.decode_payload(raw)
    assert payload.args == ["\ud800x"]
    assert payload.encode() == raw
    record = protocol.failure_record(raw, Failure("E", "m"), "w", "q", at(6, 57, 33))
    record.encode("utf-8")
    assert '"payload":{"class":"A","args":["\\ud800x"]}' in record


def test_payload_for_record_embeds_json_and_keeps_other_text() -> None:
    assert protocol.payload_for_record('{"class":"A","args":[1]}') == {"class": "A", "args": [1]}
    assert protocol.payload_for_record("not json") == "not json"
    assert protocol.payload_for_record('{"class":"A","args":[NaN]}') == (
        '{"class":"A","args":[NaN]}'
    )
    assert protocol.payload_for_record(b"\xff") == "\ufffd"


# --- times -----------------------------------------------------------------------------------


def _fixture_run_at() -> str:
    busy = json.loads(observed()["worker_while_busy"]["resque:worker:vm:15355:oracle,other"])
    return str(busy["run_at"])


def test_times_in_utc_match_ruby(utc: None) -> None:
    busy = observed()["worker_while_busy"]
    record = json.loads(observed()["failure_records"][0])
    now = at(6, 57, 33)
    assert protocol.failure_time(now) == record["failed_at"] == "2026/11/28 06:57:33 UTC"
    assert protocol.started_time(now) == busy["resque:worker:vm:15355:oracle,other:started"]
    assert protocol.heartbeat_time(now) == busy["resque:workers:heartbeat"]["vm:15355:oracle,other"]
    assert protocol.run_at_time(now) == _fixture_run_at() == "2026-11-28T06:57:33Z"


def test_times_in_new_york_match_ruby(new_york: None) -> None:
    ny = observed()["timestamps_in_TZ_America_New_York"]
    now = at(6, 57, 57)
    assert protocol.failure_time(now) == ny["failed_at"] == "2026/11/28 01:57:57 EST"
    assert protocol.started_time(now) == ny["started"] == "2026-11-28 01:57:57 -0500"
    assert protocol.heartbeat_time(now) == ny["heartbeat"] == "2026-11-28T01:57:57-05:00"
    example = re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ny["run_at"])
    assert example is not None
    assert protocol.run_at_time(now) == example.group() == "2026-11-28T06:57:57Z"


def test_times_in_new_york_summer_use_daylight_time(new_york: None) -> None:
    now = at(6, 0, 0, day="2026-07-01")
    assert protocol.failure_time(now) == "2026/07/01 02:00:00 EDT"
    assert protocol.started_time(now) == "2026-07-01 02:00:00 -0400"
    assert protocol.heartbeat_time(now) == "2026-07-01T02:00:00-04:00"
    assert protocol.run_at_time(now) == "2026-07-01T06:00:00Z"


@pytest.mark.parametrize("zone", ["UTC", pytest.param(NEW_YORK, marks=needs_new_york)])
def test_fractions_of_a_second_are_truncated_like_ruby(zone: str) -> None:
    with local_tz(zone):
        now = at(6, 57, 33)
        for fn in (
            protocol.failure_time,
            protocol.started_time,
            protocol.heartbeat_time,
            protocol.run_at_time,
        ):
            assert fn(now + 0.999) == fn(now)


@pytest.mark.parametrize("zone", ["UTC", pytest.param(NEW_YORK, marks=needs_new_york)])
def test_time_formats_have_rubys_shape(zone: str) -> None:
    with local_tz(zone):
        now = at(6, 57, 33)
        assert FAILED_AT.fullmatch(protocol.failure_time(now))
        assert STARTED.fullmatch(protocol.started_time(now))
        assert HEARTBEAT.fullmatch(protocol.heartbeat_time(now))
        assert RUN_AT.fullmatch(protocol.run_at_time(now))


def test_parse_heartbeat_reads_rubys_heartbeats() -> None:
    busy = observed()["worker_while_busy"]["resque:workers:heartbeat"]["vm:15355:oracle,other"]
    ny = observed()["timestamps_in_TZ_America_New_York"]["heartbeat"]
    assert protocol.parse_heartbeat(busy) == at(6, 57, 33)
    assert protocol.parse_heartbeat(ny) == at(6, 57, 57)
    assert protocol.parse_heartbeat("2026-11-28T06:57:33Z") == at(6, 57, 33)
    assert protocol.parse_heartbeat("yesterday") is None


def test_heartbeat_round_trips_in_any_zone(new_york: None) -> None:
    now = at(6, 57, 57)
    assert protocol.parse_heartbeat(protocol.heartbeat_time(now)) == now


# --- failure records -------------------------------------------------------------------------


def _rebuild(record_text: str) -> str:
    """Our record for the same job, failure and worker as a fixture record."""
    record = json.loads(record_text)
    return protocol.failure_record(
        protocol.dumps(record["payload"]),
        Failure(record["exception"], record["error"], record["backtrace"]),
        record["worker"],
        record["queue"],
        failed_at_epoch(record["failed_at"]),
    )


@pytest.mark.parametrize("index", range(4))
def test_failure_record_is_rubys_byte_for_byte(utc: None, index: int) -> None:
    expected = observed()["failure_records"][index]
    assert _rebuild(expected) == expected


@pytest.mark.parametrize("index", range(4))
def test_failure_record_field_order_with_times_masked(new_york: None, index: int) -> None:
    expected = observed()["failure_records"][index]
    ours = _rebuild(expected)
    assert ours != expected  # a different zone, so a different failed_at ...
    assert mask_times(ours) == mask_times(expected)  # ... in the same format, all else equal
    assert list(json.loads(ours)) == FAILURE_KEYS


def test_failure_record_of_a_payload_that_is_not_json_embeds_the_text(utc: None) -> None:
    record = protocol.failure_record(b"oops{", Failure("E", "m"), "w:1:q", "q", at(6, 57, 33))
    assert record == (
        '{"failed_at":"2026/11/28 06:57:33 UTC","payload":"oops{","exception":"E","error":"m",'
        '"backtrace":[],"worker":"w:1:q","queue":"q"}'
    )


def test_mark_retried_matches_rubys_retried_record(utc: None) -> None:
    fixture = observed()
    assert (
        protocol.mark_retried(fixture["failure_records"][0], at(6, 57, 49))
        == fixture["failure_retried"]
    )


def test_mark_retried_again_updates_retried_at_in_place(utc: None) -> None:
    once = observed()["failure_retried"]
    twice = protocol.mark_retried(once.encode("utf-8"), at(7, 0, 0))
    assert list(json.loads(twice)) == [*FAILURE_KEYS, "retried_at"]
    assert twice == once.replace("2026/11/28 06:57:49 UTC", "2026/11/28 07:00:00 UTC")


@pytest.mark.parametrize(
    ("record", "message"),
    [("{", "failure record is not valid JSON"), ("[]", "failure record is not a JSON object")],
)
def test_decode_failure_rejects_non_records(record: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        protocol.decode_failure(record)


def test_busy_record_matches_rubys_worker_key(new_york: None) -> None:
    expected = observed()["worker_while_busy"]["resque:worker:vm:15355:oracle,other"]
    busy = protocol.busy_record("oracle", '{"class":"Sleepy","args":[3,"sleepy"]}', at(6, 57, 33))
    assert busy == expected  # run_at is UTC in every zone


def _raise_boom() -> None:
    raise BoomError('boom: ["x",42]')


def test_failure_from_exception_names_the_class_and_lists_frames_innermost_first() -> None:
    try:
        _raise_boom()
    except BoomError as exc:
        failure = Failure.from_exception(exc)
    assert failure.exception == "tests.unit.test_protocol.BoomError"
    assert failure.error == 'boom: ["x",42]'
    assert failure.backtrace[0].endswith("in `_raise_boom'")
    assert failure.backtrace[-1].endswith(
        "in `test_failure_from_exception_names_the_class_and_lists_frames_innermost_first'"
    )
    assert all(re.fullmatch(r".+\.py:\d+:in `[^']+'", line) for line in failure.backtrace)


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_an_exception_whose_str_raises_still_becomes_a_failure() -> None:
    failure = Failure.from_exception(UnprintableError())
    assert failure == Failure(
        "tests.unit.test_protocol.UnprintableError", "<exception str() failed>", []
    )


def test_builtin_exceptions_are_named_bare() -> None:
    assert Failure.from_exception(KeyError("k")).exception == "KeyError"
    assert Failure.from_exception(KeyError("k")).backtrace == []
    assert protocol.exception_name(PayloadError("x")) == "pyresque.errors.PayloadError"


# --- properties ------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
class_names = st.text(min_size=1).filter(lambda s: s.strip() != "")
extra_keys = st.dictionaries(
    st.text().filter(lambda k: k not in ("class", "args")), json_values, max_size=3
)


@given(class_names, st.lists(json_values, max_size=6))
def test_decode_of_encode_round_trips(name: str, args: list[Any]) -> None:
    encoded = protocol.encode_payload(name, args)
    assert protocol.decode_payload(encoded) == Payload(name, args, {})
    assert protocol.decode_payload(encoded.encode("utf-8")) == Payload(name, args, {})


@given(class_names, st.lists(json_values, max_size=4), extra_keys)
def test_payload_with_extra_keys_round_trips(
    name: str, args: list[Any], extra: dict[str, Any]
) -> None:
    payload = Payload(name, args, extra)
    assert protocol.decode_payload(payload.encode()) == payload


surrogates = st.characters(
    codec=None, min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()
)
any_text = st.text(st.characters(codec=None, exclude_categories=()) | surrogates)


@given(any_text)
def test_every_python_string_encodes_to_utf8_json(text: str) -> None:
    encoded = protocol.encode_payload("A", [text])
    encoded.encode("utf-8")  # lone surrogates included
    assert isinstance(protocol.decode_payload(encoded).args[0], str)


# --- Ruby's float text -----------------------------------------------------------------------


def _ruby_floats() -> list[dict[str, str]]:
    data = json.loads((FIXTURE_DIR / "floats.json").read_text("utf-8"))
    floats: list[dict[str, str]] = data["floats"]
    return floats


def test_floats_fixture_copy_is_the_shared_one() -> None:
    if not SHARED_FIXTURE_DIR.is_dir():
        pytest.skip("shared fixtures not present on this machine")
    assert (FIXTURE_DIR / "floats.json").read_bytes() == (
        SHARED_FIXTURE_DIR / "floats.json"
    ).read_bytes()


@pytest.mark.parametrize("case", _ruby_floats(), ids=lambda c: c["ruby_json"])
def test_every_float_is_written_as_ruby_writes_it(case: dict[str, str]) -> None:
    value = float.fromhex(case["hex"])
    assert protocol.dumps([value]) == f"[{case['ruby_json']}]"
    assert protocol.encode_payload("A", [value, {"k": value}]) == (
        f'{{"class":"A","args":[{case["ruby_json"]},{{"k":{case["ruby_json"]}}}]}}'
    )


def test_float_text_inside_strings_is_left_alone() -> None:
    assert protocol.dumps(["1e+20", "1000000000000000.0", 1e20]) == (
        '["1e+20","1000000000000000.0",1.0e+20]'
    )
    assert protocol.dumps({'a"1e+20': '\\"2e+20'}) == '{"a\\"1e+20":"\\\\\\"2e+20"}'


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_ruby_float_text_parses_back_to_the_same_float(value: float) -> None:
    text = protocol.dumps(value)
    assert float(text) == value
    assert protocol.loads(text) == value


# --- payloads that cannot be represented -----------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "[1e999]",
        '{"class":"Nope","args":[1e999]}',
        '{"class":5,"x":-1e999}',
        '{"class":"A","args":[],"meta":1e999}',
    ],
)
def test_out_of_range_numbers_are_refused_and_recorded_verbatim(raw: str) -> None:
    with pytest.raises(PayloadError, match="out of range"):
        protocol.decode_payload(raw)
    failure = Failure("pyresque.errors.PayloadError", "bad")
    record = protocol.failure_record(raw, failure, "w", "q", 0.0)
    assert protocol.decode_failure(record)["payload"] == raw


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("1796698678", protocol.started_time(1796698678)),  # node-resque: epoch seconds
        ("1796698678000", protocol.started_time(1796698678)),  # epoch milliseconds
        ("1796698678.5", protocol.started_time(1796698678.5)),
        ("2026-11-28 06:57:33 +0000", "2026-11-28 06:57:33 +0000"),  # Resque's own: as it is
        ("12", "12"),  # too short to be a time
        ("not a time", "not a time"),
        ("9" * 400, "9" * 400),  # beyond the clock: shown as written
        (None, None),
    ],
)
def test_other_clients_started_values_are_shown_as_times(
    written: str | None, shown: str | None
) -> None:
    assert protocol.shown_time(written) == shown
