"""Fuzz targets: each takes bytes someone else could have written and checks the property.

The property, for every parser that reads foreign input: a clear error (a ``PyresqueError``
subclass, or the documented ``None``) or a correct result; never another exception, a hang or a
changed byte. A target raises ``AssertionError`` when a result is wrong, and lets any unexpected
exception escape, so atheris reports both as crashes with the input that caused them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from pyresque.errors import PyresqueError
from pyresque.wire import protocol


def _text(data: bytes) -> str:
    """Foreign bytes as Redis hands them to us: UTF-8, with bad bytes kept as surrogates."""
    return data.decode("utf-8", "surrogateescape")


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values: numbers by value (1 == 1.0 is not enough: the type must survive)."""
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, float) and isinstance(b, float)):
            return False
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def payload(data: bytes) -> None:
    """Decode a queue item; what decodes must encode to a text that decodes to the same job and
    encodes to itself (no byte changes on a second pass), with Ruby's float text."""
    raw = _text(data)
    try:
        job = protocol.decode_payload(raw)
    except PyresqueError:
        return
    out = job.encode()
    again = protocol.decode_payload(out)
    assert _same_json(again.to_dict(), job.to_dict()), (raw, out)
    assert again.encode() == out, (raw, out)
    original = protocol.loads(raw)
    canonical = raw == protocol.dumps(original) and list(original)[:2] == ["class", "args"]
    if canonical and isinstance(original["args"], list):
        assert out == raw, (raw, out)  # Ruby's own text is written back byte for byte


def floats(data: bytes) -> None:
    """A double written as Ruby writes it reads back as the same double, in the form Ruby uses."""
    if len(data) < 8:
        return
    value = struct.unpack("<d", data[:8])[0]
    if math.isnan(value) or math.isinf(value):
        try:
            protocol.dumps(value)
        except ValueError:
            return
        raise AssertionError(f"{value} was encoded")
    text = protocol.dumps(value)
    assert float(text) == value and math.copysign(1, float(text)) == math.copysign(1, value), text
    mantissa, _, exponent = text.lstrip("-").partition("e")
    digits = mantissa.replace(".", "").lstrip("0") or "0"
    if value != 0:
        e10 = math.floor(math.log10(abs(value))) if not exponent else int(exponent)
        if exponent:
            assert not (-4 <= e10 <= 14), f"{text}: Ruby writes exponent {e10} in fixed notation"
            assert "." in mantissa, text
        else:
            assert -5 <= e10 <= 15, f"{text}: Ruby writes this in exponent form"
    assert digits, text
    assert protocol.loads(text) == value


def failure(data: bytes) -> None:
    """A failure record written by anyone: decoded or refused, marked retried without losing a
    field, and drawn by the dashboard without raising."""
    from pyresque.web.data import failure_row

    raw = _text(data)
    row = failure_row(0, raw)
    assert row.raw == raw
    try:
        record = protocol.decode_failure(raw)
    except PyresqueError:
        return
    marked = protocol.loads(protocol.mark_retried(raw, 0.0))
    assert isinstance(marked, dict) and "retried_at" in marked
    assert all(_same_json(marked[k], v) for k, v in record.items() if k != "retried_at")


def worker(data: bytes) -> None:
    """Worker ids and busy records written by other clients: a parsed id prints back to itself,
    and a busy record is shown (or shown as text) by the status command and the dashboard."""
    from pyresque.cli.status import _busy_record
    from pyresque.web.data import Job
    from pyresque.worker.recovery import WorkerId

    text = _text(data)
    wid, _, busy = text.partition("\n")
    parsed = WorkerId.parse(wid)
    if parsed is not None:
        assert str(parsed) == wid, wid
    record = _busy_record(busy)
    assert record is None or isinstance(record, dict)
    Job.parse("q", busy)


def pool_config(data: bytes) -> None:
    """resque-pool.yml with its templating: a config or a ConfigError naming the file."""
    from pyresque.pool.config import parse_config

    text = _text(data)
    env = {"WORKERS": "2", "EMPTY": "", "QUEUES": "a,b"}
    try:
        config = parse_config(text, source="fuzz.yml", environment="production", env=env)
    except PyresqueError as exc:
        assert str(exc).startswith("fuzz.yml"), str(exc)
        return
    for group, count in config.groups.items():
        assert isinstance(group, str) and group.strip(), group
        assert not isinstance(count, int) or count >= 0, count


def schedule(data: bytes) -> None:
    """A schedule file, and a cron string alone: entries or a ConfigError; every entry's next
    run comes strictly after the time asked about."""
    from pyresque.scheduler.recurring import Cron
    from pyresque.scheduler.schedule import parse_schedule_text

    text = _text(data)
    try:
        entries = parse_schedule_text(text, "production", "fuzz.yml")
    except PyresqueError:
        entries = {}
    for entry in entries.values():
        assert entry.next_after(1_700_000_000.0) > 1_700_000_000.0, entry
    try:
        cron = Cron.parse(text.splitlines()[0] if text else text)
    except PyresqueError:
        return
    assert cron.next_after(1_700_000_000.0) > 1_700_000_000.0, cron


def redis_url(data: bytes) -> None:
    """A Redis URL: accepted as it is, or refused with a ConfigError that never shows the password
    (checked for URLs with one ``@``, where the password is unambiguous)."""
    from pyresque.store.connection import _schemes, validate_url

    url = _text(data)
    try:
        assert validate_url(url) == url
    except PyresqueError as exc:
        if url.count("@") != 1 or url.find("@") < url.find("://"):
            return
        userinfo = url.partition("@")[0].rpartition("://")[2]
        user, colon, password = userinfo.partition(":")
        secret = password if colon else user
        generic = _GENERIC_URL_ERROR + _schemes()  # text every such error holds is no leak
        shown = str(exc).replace(_schemes(), "")
        if len(secret) >= 6 and url.count(secret) == 1 and secret not in generic:
            assert secret not in shown, (url, str(exc))


_GENERIC_URL_ERROR = "expected scheme://..., such as redis://localhost:6379/0"


def web_fields(data: bytes) -> None:
    """The dashboard's query strings and form fields: numbers clamped, items parsed, no raise."""
    from urllib.parse import parse_qs

    from starlette.requests import Request

    from pyresque.web.actions import _items
    from pyresque.web.app import _int

    query, _, body = data.partition(b"\n")
    request = Request({"type": "http", "query_string": query, "headers": []})
    for name, default, low, high in (("start", 0, 0, 10**9), ("hours", 1, 1, 8)):
        value = _int(request, name, default, low, high)
        assert low <= value <= high, (name, value)
    fields = parse_qs(_text(body), keep_blank_values=True)
    for index, want in _items(fields):
        assert index >= 0 and want, (index, want)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "payload": payload,
    "floats": floats,
    "failure": failure,
    "worker": worker,
    "pool_config": pool_config,
    "schedule": schedule,
    "redis_url": redis_url,
    "web_fields": web_fields,
}
