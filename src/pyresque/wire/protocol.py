"""Byte-level encoding of what Resque keeps in Redis: payloads, failure records, timestamps.

Pure functions, no Redis. Ruby Resque writes compact JSON with keys in insertion order and raw
UTF-8; resque-web and Ruby workers parse what we write, and golden tests compare our bytes with
what Ruby wrote (``shared/fixtures/resque-3.0.0``).
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, NoReturn

from pyresque.errors import PayloadError

JSONValue = Any  # the JSON edge: converted to typed values as soon as it is read


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON string (skipped) or a float as Python writes it: with a fraction or an exponent.
_STRING_OR_FLOAT = re.compile(
    r'"(?:[^"\\]|\\.)*"|(-?[0-9]+(?:\.[0-9]+)?[eE][-+][0-9]+|-?[0-9]+\.[0-9]+)'
)


def ruby_float(text: str) -> str:
    """Ruby's text for a float Python wrote as ``text`` (``repr``: the same shortest digits).

    Ruby writes a float in fixed notation only when its decimal exponent is between -4 and 14,
    and in exponent form always with a fraction: ``1.0e+20`` (Python: ``1e+20``),
    ``1.0e+15`` (Python: ``1000000000000000.0``), ``5.0e-324`` (Python: ``5e-324``). Ruby's
    ``Resque.dequeue`` and resque-scheduler match payload text byte for byte, so ours must match.
    """
    mantissa, e, exponent = text.partition("e")
    if e:
        return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}"
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    if len(whole) != 16:  # Python turns to exponents from 1e16 on, Ruby from 1e15
        return text
    digits = (whole + fraction).rstrip("0")
    return f"{sign}{digits[0]}.{digits[1:] or '0'}e+15"


def _ruby_floats(match: re.Match[str]) -> str:
    number = match.group(1)
    return match.group(0) if number is None else ruby_float(number)


def dumps(value: JSONValue) -> str:
    """Encode like Ruby's JSON.generate: compact separators, raw UTF-8, Ruby's float text, no NaN.

    A lone surrogate (which ``json.loads`` accepts from ``"\\ud800"``) is written as a ``\\u``
    escape: raw, it is not UTF-8, and redis-py would fail to send the text at all.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if "." in text or "e" in text or "E" in text:
        text = _STRING_OR_FLOAT.sub(_ruby_floats, text)
    if text.isascii():
        return text
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range for a double")
    return value


# One decoder for every call: building one per call costs more than parsing a small payload.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def loads(text: str | bytes) -> JSONValue:
    """Parse strict JSON, as Ruby's JSON.parse does: ``NaN`` and ``Infinity`` are rejected, and so
    is a number too large for a double (``1e999``), which could never be written back.

    Raises ValueError for anything that is not JSON, including nesting too deep to parse, so a
    hostile or broken payload becomes a failure record instead of crashing the worker.
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _json_type(value: JSONValue) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@dataclass(frozen=True)
class Payload:
    """A decoded job payload: the class name, the arguments, and any extra keys (kept as they are)."""

    class_name: str
    args: list[JSONValue]
    extra: dict[str, JSONValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, JSONValue]:
        return {"class": self.class_name, "args": self.args, **self.extra}

    @property
    def short_class(self) -> str:
        """The class name as logs and process titles show it: a hostile 1 MB name is cut."""
        return shorten(self.class_name)

    def encode(self) -> str:
        return dumps(self.to_dict())

    @property
    def trace_context(self) -> dict[str, str]:
        """The trace context the job was enqueued with: its string entries (anything else, from
        a broken or foreign producer, is left out), empty when it has none."""
        carrier = self.extra.get(TRACE_CONTEXT)
        if not isinstance(carrier, dict):
            return {}
        return {k: v for k, v in carrier.items() if isinstance(v, str)}


def shorten(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"


# The payload key that carries a job's trace context from its enqueue to its run (W3C
# ``traceparent``/``tracestate``, Sentry's ``sentry-trace``/``baggage``), written after ``class``
# and ``args`` and only while a tracing integration is on. Ruby Resque 3 and our ``dequeue``
# match a job by class and args, so they do not see it (docs/protocol.md).
TRACE_CONTEXT = "trace_context"


def encode_payload(
    class_name: str,
    args: list[JSONValue] | tuple[JSONValue, ...],
    trace: dict[str, str] | None = None,
) -> str:
    """The queue item for a job: ``{"class":…,"args":[…]}``, then ``"trace_context":{…}`` when a
    tracing integration gave one; raises PayloadError if the arguments are not JSON-able or if
    JSON would change a mapping's key (a tuple becomes a list: JSON has only arrays)."""
    check_keys(class_name, args)
    item: dict[str, JSONValue] = {"class": class_name, "args": list(args)}
    if trace:
        item[TRACE_CONTEXT] = trace
    try:
        return dumps(item)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"arguments of {class_name} are not JSON-serialisable: {exc}") from exc


def check_keys(class_name: str, args: list[JSONValue] | tuple[JSONValue, ...]) -> None:
    """PayloadError when a mapping in ``args`` has a key that is not a string.

    Why: JSON keys are strings, and ``json.dumps`` turns ``{1: "a"}`` into ``{"1": "a"}`` without a
    word, so the job would get another mapping than it was given (issue 25)."""
    found = _non_string_key(list(args), "args")
    if found is not None:
        path, key = found
        raise PayloadError(
            f"arguments of {class_name}: {path} has key {key!r}, and JSON keys are strings "
            f"(it would arrive as {str(key)!r}): convert the keys first"
        )


def _non_string_key(value: JSONValue, path: str) -> tuple[str, object] | None:
    """The path and key of the first mapping key in ``value`` that is not a string."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return path, key
            if isinstance(item, (dict, list, tuple)):
                found = _non_string_key(item, f"{path}[{key!r}]")
                if found is not None:
                    return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if isinstance(item, (dict, list, tuple)):
                found = _non_string_key(item, f"{path}[{index}]")
                if found is not None:
                    return found
    return None


def decode_payload(raw: str | bytes) -> Payload:
    """Parse a queue item, raising PayloadError with a message that says what is wrong."""
    try:
        data = loads(raw)
    except ValueError as exc:
        raise PayloadError(f"payload is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError(f"payload must be a JSON object, got {_json_type(data)}")
    class_name = data.get("class")
    if not isinstance(class_name, str) or not class_name:
        raise PayloadError("payload has no 'class' string")
    args = data.get("args")
    if args is None:  # Ruby runs a job with "args": null (or none) with no arguments
        args = []
    if not isinstance(args, list):
        raise PayloadError(f"payload 'args' must be a list, got {_json_type(args)}")
    extra = {k: v for k, v in data.items() if k not in ("class", "args")}
    return Payload(class_name, args, extra)


def delayed_item(queue: str, payload: str) -> str:
    """resque-scheduler's delayed item for a raw queue payload: class, args, queue, then its extra
    keys (pyresque's scheduler pushes them back; Ruby's pushes only class and args). PayloadError
    if the payload is not a job."""
    decoded = decode_payload(payload)
    item = {"class": decoded.class_name, "args": decoded.args, "queue": queue}
    item.update({k: v for k, v in decoded.extra.items() if k != "queue"})
    return dumps(item)


def payload_for_record(raw: str | bytes) -> JSONValue:
    """The payload as a failure record embeds it: parsed if it is JSON, else the raw text."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        return loads(text)
    except ValueError:
        return text


# Exception names of Ruby's own records, kept so that resque-web filters and plugins still match.
DIRTY_EXIT = "Resque::DirtyExit"
PRUNE_DIRTY_EXIT = "Resque::PruneDeadWorkerDirtyExit"


# --- times -----------------------------------------------------------------------------------


def failure_time(now: float) -> str:
    """``2026/11/28 06:57:33 UTC``: local time with the zone's abbreviation (Resque's failed_at)."""
    return time.strftime("%Y/%m/%d %H:%M:%S %Z", time.localtime(now))


def started_time(now: float) -> str:
    """``2026-11-28 06:57:33 +0000``: local time with numeric offset (``worker:<id>:started``)."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(now))


_EPOCH_NUMBER = re.compile(r"[0-9]{9,}(?:\.[0-9]*)?")
_EPOCH_MS_FROM = 1e11  # as seconds, the year 5138; as milliseconds, 1973


def shown_time(text: str | None) -> str | None:
    """A time another client wrote, as :func:`started_time` shows it: an epoch number (node-resque
    writes ``worker:<id>:started`` in epoch seconds, other clients in milliseconds) becomes a
    local time; anything else (Resque's own text) is shown as it is.

    Why: ``status`` and the dashboard list every registered worker, not only ours, and
    ``1796698678000`` tells a reader nothing."""
    if text is None or not _EPOCH_NUMBER.fullmatch(text.strip()):
        return text
    number = float(text)
    seconds = number / 1000 if number >= _EPOCH_MS_FROM else number
    try:
        return started_time(seconds)
    except (OverflowError, OSError, ValueError):  # beyond what the platform's clock can show
        return text


def heartbeat_time(now: float) -> str:
    """``2026-11-28T06:57:33+00:00``: ISO 8601 local time with offset (``workers:heartbeat``)."""
    return datetime.fromtimestamp(int(now)).astimezone().isoformat(timespec="seconds")


@functools.lru_cache(maxsize=4)
def _run_at_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_at_time(now: float) -> str:
    """``2026-11-28T06:57:33Z``: UTC ISO 8601 (``run_at`` of a busy worker); formatted once per
    second, as a worker asks for it with every job."""
    return _run_at_second(int(now))


def parse_heartbeat(text: str) -> float | None:
    """Epoch seconds of a heartbeat written by Ruby or by us; None if unparseable."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# --- failures --------------------------------------------------------------------------------


def exception_name(exc: BaseException) -> str:
    """The class name resque-web shows: builtins bare, others qualified by module."""
    cls = type(exc)
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def format_backtrace(tb: TracebackType | None) -> list[str]:
    """Frames innermost first, in Ruby's ``file:line:in `name'`` shape that resque-web expects."""
    frames = traceback.extract_tb(tb)
    return [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in reversed(frames)]


def _message(exc: BaseException) -> str:
    """``str(exc)``, even when the exception's ``__str__`` itself raises (as traceback does it):
    reporting a failure must not fail, or that error escapes job.perform, replacing the job's own
    in a forked child and stopping an in-process worker."""
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


@dataclass(frozen=True)
class Failure:
    """What went wrong with one job, before it becomes a record."""

    exception: str
    error: str
    backtrace: list[str] = field(default_factory=list)

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        return cls(exception_name(exc), _message(exc), format_backtrace(exc.__traceback__))

    def to_dict(self) -> dict[str, JSONValue]:
        return {"exception": self.exception, "error": self.error, "backtrace": self.backtrace}


def failure_record(
    payload_raw: str | bytes, failure: Failure, worker_id: str, queue: str, now: float
) -> str:
    """A ``failed`` list entry with Ruby's field order."""
    return dumps(
        {
            "failed_at": failure_time(now),
            "payload": payload_for_record(payload_raw),
            "exception": failure.exception,
            "error": failure.error,
            "backtrace": list(failure.backtrace),
            "worker": worker_id,
            "queue": queue,
        }
    )


def decode_failure(record: str | bytes) -> dict[str, JSONValue]:
    """A failure record as a mapping; raises PayloadError if it is not one."""
    try:
        data = loads(record)
    except ValueError as exc:
        raise PayloadError(f"failure record is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError("failure record is not a JSON object")
    return data


def mark_retried(record: str | bytes, now: float) -> str:
    """The record with ``retried_at`` added (Resque keeps retried records in place)."""
    data = decode_failure(record)
    data["retried_at"] = failure_time(now)
    return dumps(data)


def busy_record(queue: str, payload_raw: str, now: float) -> str:
    """``worker:<id>`` while busy: ``{"queue":…,"run_at":…,"payload":{…}}``.

    The CYCLE script writes this record itself, in the same call that reserves the job; this is
    the reference encoding the golden tests hold both to.
    """
    return dumps(
        {"queue": queue, "run_at": run_at_time(now), "payload": payload_for_record(payload_raw)}
    )
