"""What Ruby Resque 3.0.0 wrote to Redis (``tests/fixtures/resque-3.0.0``), for golden tests.

The fixture directory is a copy of ``shared/fixtures/resque-3.0.0``: ``observed.json`` (a queue item,
a busy worker's keys, failure records, a retried record, times in another zone) and
``worker-lifetime-monitor.md`` (every command of one Ruby worker's life, as MONITOR printed it).
Times there are 2026-11-28 in UTC unless noted; :func:`at` turns a time of that day into epoch
seconds, and :func:`mask_times` replaces each of Resque's four time formats by its own placeholder,
so a comparison still fails if a time has the wrong format.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import time
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "resque-3.0.0"
SHARED_FIXTURE_DIR = Path("/work/shared/fixtures/resque-3.0.0")

# The four time formats of Resque's keys, anchored.
FAILED_AT = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [A-Za-z+-][A-Za-z0-9+-]*")
STARTED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}")
HEARTBEAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")
RUN_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

FAILURE_KEYS = ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]


@cache
def observed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURE_DIR / "observed.json").read_text("utf-8"))
    return data


def at(hour: int, minute: int, second: int, day: str = "2026-11-28") -> float:
    """Epoch seconds of ``day hour:minute:second`` UTC (the fixture's clock)."""
    year, month, mday = (int(p) for p in day.split("-"))
    return float(calendar.timegm((year, month, mday, hour, minute, second, 0, 0, 0)))


def failed_at_epoch(failed_at: str) -> float:
    """Epoch seconds of a UTC ``failed_at`` such as ``2026/11/28 06:57:33 UTC``."""
    return float(calendar.timegm(time.strptime(failed_at, "%Y/%m/%d %H:%M:%S UTC")))


def mask_times(text: str) -> str:
    """Each time replaced by a placeholder naming its format (run_at before heartbeat: both ISO)."""
    text = FAILED_AT.sub("<failed_at>", text)
    text = STARTED.sub("<started>", text)
    text = RUN_AT.sub("<run_at>", text)
    return HEARTBEAT.sub("<heartbeat>", text)


def tz_available(name: str) -> bool:
    """Whether the C library can load zone ``name`` (TZ falls back to UTC silently otherwise)."""
    return any(os.path.exists(os.path.join(d, name)) for d in zoneinfo.TZPATH)


@contextmanager
def local_tz(name: str) -> Iterator[None]:
    """Run with ``TZ=name`` for the C library (``time.localtime``), then restore the old zone."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


# --- the MONITOR capture ---------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One command of the capture: the client label (``c1`` is the worker) and its arguments."""

    client: str
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.args[0].lower()


_LINE = re.compile(r"^(c\d+): (.*)$")
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b", '"': b'"', "\\": b"\\"}


def _unrepr(token: str) -> str:
    """Undo Redis's sdscatrepr quoting (``\\"``, ``\\\\``, ``\\xHH``, ...)."""
    out = bytearray()
    i = 0
    while i < len(token):
        ch = token[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
        elif token[i + 1] == "x":
            out.append(int(token[i + 2 : i + 4], 16))
            i += 4
        else:
            out += _ESCAPES[token[i + 1]]
            i += 2
    return out.decode("utf-8")


@cache
def monitor_commands() -> tuple[Command, ...]:
    """Every command line of the capture, in order (the 'repeated' note is reads only: skipped)."""
    text = (FIXTURE_DIR / "worker-lifetime-monitor.md").read_text("utf-8")
    block = text.split("```", 2)[1]
    commands = []
    for line in block.splitlines():
        match = _LINE.match(line.strip())
        if match:
            tokens = tuple(_unrepr(t) for t in _TOKEN.findall(match.group(2)))
            commands.append(Command(match.group(1), tokens))
    return tuple(commands)
