"""Every parser of foreign input, by property: a clear error (a PyresqueError, or the documented
None) or a correct result, never another exception or a changed byte.

The same properties run for minutes under atheris (``fuzz/``); here each runs briefly (a few
dozen examples), so the suite stays quick. Round trips of payloads built by our own encoder are in
``test_protocol.py``; this file feeds what *other* clients (and users) write.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from pyresque.cli.status import _busy_record
from pyresque.errors import ConfigError, PayloadError, PyresqueError
from pyresque.pool.config import parse_config
from pyresque.scheduler.recurring import Cron
from pyresque.scheduler.schedule import parse_schedule_text
from pyresque.store.connection import validate_url
from pyresque.web.actions import _items
from pyresque.web.app import _int
from pyresque.web.data import Job, failure_row
from pyresque.wire import protocol

brief = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


def ruby_text(value: float) -> str:
    """Ruby's text for a double, from its rule rather than from the code under test: the shortest
    digits (Python's ``repr`` has the same), fixed when the decimal exponent is -4..14, else
    ``d.ddde±XX`` with at least one fraction digit and two exponent digits."""
    sign = "-" if math.copysign(1, value) < 0 else ""
    if value == 0:
        return sign + "0.0"
    mantissa, e, exp = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    if e:  # Python's exponent form has one digit before the point
        exponent = int(exp)
    elif whole != "0":
        exponent = len(whole) - 1
    else:
        exponent = -(len(fraction) - len(fraction.lstrip("0")) + 1)
    figures = (whole + fraction).lstrip("0").rstrip("0") or "0"
    if -4 <= exponent <= 14:
        if exponent < 0:
            return f"{sign}0.{'0' * (-exponent - 1)}{figures}"
        padded = figures.ljust(exponent + 1, "0")
        return f"{sign}{padded[: exponent + 1]}.{padded[exponent + 1 :] or '0'}"
    mark = "+" if exponent >= 0 else "-"
    return f"{sign}{figures[0]}.{figures[1:] or '0'}e{mark}{abs(exponent):02d}"


def test_the_rule_agrees_with_rubys_own_floats() -> None:
    import json
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "resque-3.0.0" / "floats.json"
    for case in json.loads(fixture.read_text("utf-8"))["floats"]:
        assert ruby_text(float.fromhex(case["hex"])) == case["ruby_json"], case


# --- payloads --------------------------------------------------------------------------------


@brief
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_double_is_written_in_rubys_form(value: float) -> None:
    assert protocol.dumps(value) == ruby_text(value)


@brief
@given(
    st.text(max_size=8), json_values, st.dictionaries(st.text(max_size=5), json_values, max_size=2)
)
def test_rubys_own_text_is_written_back_byte_for_byte(
    name: str, args: Any, extra: dict[str, Any]
) -> None:
    """A payload as Ruby would write it (class, args, then any extra keys) decodes and encodes to
    the same bytes; anything else is a PayloadError."""
    item = {
        "class": name,
        "args": args,
        **{k: v for k, v in extra.items() if k not in ("class", "args")},
    }
    raw = protocol.dumps(item)
    try:
        payload = protocol.decode_payload(raw)
    except PayloadError:
        assert not name or (not isinstance(args, list) and args is not None)
        return
    if isinstance(args, list):
        assert payload.encode() == raw


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("where", ["args", "extra"])
def test_nesting_beyond_the_parsers_depth_is_a_payload_error(depth: int, where: str) -> None:
    deep = "[" * depth + "]" * depth
    raw = (
        '{"class":"A","args":' + deep + "}" if where == "args" else '{"class":"A","x":' + deep + "}"
    )
    try:
        payload = protocol.decode_payload(raw)
    except PayloadError as exc:
        assert "nested too deeply" in str(exc)
    else:  # shallow enough to parse: it must then round-trip
        assert protocol.decode_payload(payload.encode()) == payload


@brief
@given(st.binary(max_size=200))
def test_any_bytes_decode_to_a_job_or_a_payload_error(raw: bytes) -> None:
    with contextlib.suppress(PayloadError):
        protocol.decode_payload(raw)


@brief
@given(st.text(max_size=3000), st.integers(1, 400))
def test_a_long_name_is_cut_and_says_how_much(text: str, limit: int) -> None:
    shown = protocol.shorten(text, limit)
    assert shown == text if len(text) <= limit else shown.startswith(text[:limit])
    if len(text) > limit:
        assert shown.endswith(f"(+{len(text) - limit} chars)")


# --- failure records, busy records -------------------------------------------------------------


records = st.one_of(
    st.text(max_size=60),
    st.builds(
        protocol.dumps,
        st.dictionaries(
            st.sampled_from(
                [
                    "failed_at",
                    "payload",
                    "exception",
                    "error",
                    "backtrace",
                    "worker",
                    "queue",
                    "retried_at",
                ]
            ),
            json_values,
        ),
    ),
)


@brief
@given(records)
def test_a_failure_record_by_anyone_is_drawn_and_marked_without_losing_a_field(raw: str) -> None:
    row = failure_row(3, raw)
    assert row.raw == raw and row.index == 3
    try:
        record = protocol.decode_failure(raw)
    except PayloadError:
        return
    marked = protocol.decode_failure(protocol.mark_retried(raw, 0.0))
    assert {k: v for k, v in marked.items() if k != "retried_at"} == {
        k: v for k, v in record.items() if k != "retried_at"
    }


@brief
@given(records)
def test_a_busy_record_by_anyone_is_shown(raw: str) -> None:
    shown = _busy_record(raw)
    assert shown is None if not raw else isinstance(shown, dict)
    assert Job.parse("q", raw).raw == raw


# --- configuration: resque-pool.yml, schedules, cron, Redis URLs -------------------------------


yaml_bits = st.sampled_from(
    [
        "foo",
        "'a,b'",
        "*",
        ":",
        " ",
        "\n",
        "  ",
        "- ",
        "1",
        "-1",
        "auto",
        "${N}",
        "${N:-2}",
        "<%= ENV['N'] || 3 %>",
        "<%= X %>",
        "production:",
        "&d",
        "*d",
        "<<: *d",
        "{",
        "}",
        "[",
        "]",
        "#",
        "'",
        '"',
        "yes",
        "~",
        "2.5",
    ]
)


@brief
@given(st.lists(yaml_bits, max_size=25).map("".join))
def test_a_pool_config_is_a_config_or_an_error_naming_the_file(text: str) -> None:
    try:
        config = parse_config(text, source="pool.yml", environment="production", env={"N": "4"})
    except ConfigError as exc:
        assert str(exc).startswith("pool.yml") and "\n" not in str(exc).strip()
        return
    assert all(isinstance(k, str) and k.strip() for k in config.groups)


cron_bits = st.sampled_from(
    [
        "*",
        "*/5",
        "0",
        "59",
        "61",
        "1-5",
        "mon",
        "mon-fri",
        "L",
        "?",
        "@daily",
        "@hourly",
        "Europe/Berlin",
        "Europe",
        "Mars/Olympus",
        "UTC",
        "jan",
        "5/0",
        ",",
        "-",
    ]
)


@brief
@given(st.lists(cron_bits, max_size=8).map(" ".join))
def test_a_cron_string_is_a_schedule_or_a_config_error(text: str) -> None:
    try:
        cron = Cron.parse(text)
    except ConfigError as exc:
        assert "acceptable" not in str(exc)
        return
    assert cron.next_after(1_700_000_000.0) > 1_700_000_000.0


@brief
@given(
    st.dictionaries(
        st.text(max_size=6),
        st.dictionaries(
            st.sampled_from(["cron", "every", "class", "queue", "args", "missed", "rails_env"]),
            st.one_of(
                st.text(max_size=12),
                st.integers(),
                st.none(),
                st.lists(st.text(max_size=4), max_size=2),
            ),
            max_size=4,
        ),
        max_size=3,
    )
)
def test_a_schedule_file_is_entries_or_a_config_error(data: dict[str, Any]) -> None:
    import yaml

    text = yaml.safe_dump(data)
    try:
        entries = parse_schedule_text(text, "production", "s.yml")
    except ConfigError as exc:
        assert str(exc).startswith("s.yml")
        return
    for entry in entries.values():
        assert entry.next_after(1_700_000_000.0) > 1_700_000_000.0


url_bits = st.sampled_from(
    [
        "redis",
        "rediss",
        "unix",
        "redis+sentinel",
        "http",
        "://",
        ":",
        "/",
        "//",
        "@",
        "?",
        "#",
        "db=",
        "h",
        "[::1]",
        "6379",
        "99999",
        "0",
        "x",
        ",",
        "s3cretpw",
        "u",
    ]
)


@brief
@given(st.lists(url_bits, max_size=12).map("".join))
def test_a_redis_url_is_kept_as_it_is_or_refused_without_its_password(url: str) -> None:
    try:
        assert validate_url(url) == url
    except PyresqueError as exc:
        before_at = url.rpartition("@")[0]
        if "s3cretpw" in before_at.rpartition("://")[2] and url.count("s3cretpw") == 1:
            assert "s3cretpw" not in str(exc)


# --- the dashboard's query strings and form fields ---------------------------------------------


@brief
@given(st.dictionaries(st.sampled_from(["start", "hours", "class", "x"]), st.text(max_size=12)))
def test_query_numbers_are_clamped_whatever_is_sent(params: dict[str, str]) -> None:
    query = urlencode(params, encoding="utf-8", errors="surrogateescape").encode()
    request = Request({"type": "http", "query_string": query, "headers": []})
    assert 0 <= _int(request, "start", 0) <= 10**9
    assert 1 <= _int(request, "hours", 1, 1, 8) <= 8


@brief
@given(
    st.lists(
        st.text(max_size=20) | st.from_regex(r"[0-9\u00b2\u0663]{1,3}:[a-f0-9]{0,4}"), max_size=6
    )
)
def test_failure_items_are_index_and_digest_or_ignored(items: list[str]) -> None:
    """``index:digest`` with an index of ASCII digits is an item; anything else is ignored (a
    superscript digit raised ValueError and answered 500)."""
    expected = []
    for text in items:
        index, _, want = text.partition(":")
        if re.fullmatch("[0-9]+", index) and want:
            expected.append((int(index), want))
    assert _items({"item": items}) == expected
