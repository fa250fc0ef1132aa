"""Recurring schedules in resque-scheduler's format: entries, their timing, and missed ticks.

An entry (``config/resque-schedule.yml``, or a dynamic one in ``persistent_schedules``)::

    clear_cache:
      cron: "0 3 * * * Europe/Berlin"   # rufus-style: optional time zone as the last field
      class: ClearCache                  # default: the entry's name
      queue: low                         # default: the job's registered queue
      args: [1, "x"]                     # a list as is; a mapping or a scalar becomes [it]
      description: "nightly"
    poll:
      every: ["30s", {first_in: "5s"}]
      missed: skip                       # pyresque: what to do about ticks no scheduler ran

Pure: no Redis. Times are epoch seconds.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any

from pyresque.errors import ConfigError

MISSED_POLICIES = ("once", "skip")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|[wdhms])?")
_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: Any) -> float:
    """Seconds of a rufus duration: ``30``, ``"2s"``, ``"1h30m"``, ``"1d"``, ``"500ms"``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text).strip()
        pos, seconds = 0, 0.0
        while pos < len(value):
            match = _DURATION.match(value, pos)
            if match is None:
                raise ConfigError(f"{text!r} is not a duration (e.g. 30s, 5m, 1h30m, 1d)")
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
            pos = match.end()
    if seconds <= 0:
        raise ConfigError(f"duration {text!r} must be positive")
    return seconds


def normalize_args(value: Any) -> list[Any]:
    """resque-scheduler's ``args``: a list as is, nothing as [], anything else as [it]."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def local_zone() -> tzinfo:
    """The process's time zone, with its DST rules (TZ, else /etc/localtime, else UTC)."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return zoneinfo.ZoneInfo(name)
        with open("/etc/localtime", "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f)
    except (OSError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        return timezone.utc


@dataclass(frozen=True)
class Cron:
    """A cron expression (5 fields, or 6 with seconds first as rufus has it) in a time zone."""

    expression: str
    zone: str | None = None

    @classmethod
    def parse(cls, text: str) -> Cron:
        fields = text.split()
        zone = None
        if _meant_as_zone(fields):
            zone = fields.pop()
            if not is_time_zone(zone):
                raise ConfigError(f"cron {text!r}: unknown time zone {zone!r}")
        nicknamed = len(fields) == 1 and fields[0].startswith("@")  # @daily, @hourly, …
        if len(fields) not in (5, 6) and not nicknamed:
            raise ConfigError(f"cron {text!r}: expected 5 or 6 fields and an optional time zone")
        cron = cls(" ".join(fields), zone)
        cron.next_after(0.0)  # validate now, not at the first fire
        return cron

    def tz(self) -> tzinfo:
        return zoneinfo.ZoneInfo(self.zone) if self.zone else local_zone()

    def next_after(self, after: float) -> float:
        """The first matching time strictly after ``after``."""
        from croniter import croniter  # here: with dateutil, ~1 MB that only cron entries need

        start = datetime.fromtimestamp(after, self.tz())
        try:
            it = croniter(
                self.expression, start, second_at_beginning=len(self.expression.split()) == 6
            )
            return float(it.get_next(float))
        except (ValueError, KeyError) as exc:
            detail = _CRONITER_WORDS.sub(" ", str(exc)).strip(" ,")  # croniter repeats the text
            raise ConfigError(
                f"cron {self.expression!r}: not a cron expression"
                + (f" ({detail})" if detail else "")
            ) from None


_CRONITER_WORDS = re.compile(r"^\[[^\]]*\]|,? *is not acceptable,?")
# A sixth field that is a day of the week (seconds come first): digits, names, ranges, L, #.
_DAY_OF_WEEK = re.compile(r"(?:[0-7*?LW#/,-]|sun|mon|tue|wed|thu|fri|sat)+", re.IGNORECASE)


def _meant_as_zone(fields: list[str]) -> bool:
    """Whether the last field names a time zone (rufus: ``0 3 * * * Europe/Berlin``): always after
    a nickname or six fields; after five, when it has letters and is not a day of the week."""
    if len(fields) not in (2, 6, 7) or not re.search("[A-Za-z]", fields[-1]):
        return False
    return len(fields) != 6 or not _DAY_OF_WEEK.fullmatch(fields[-1])


def is_time_zone(name: str) -> bool:
    """Whether the IANA database here knows ``name`` (a directory such as ``Europe`` is no zone:
    zoneinfo raises IsADirectoryError for it, which must not escape as a crash)."""
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return True


@dataclass(frozen=True)
class Entry:
    """One recurring job."""

    name: str
    class_name: str
    queue: str | None
    args: list[Any]
    cron: Cron | None = None
    every: float | None = None
    first_in: float | None = None
    description: str = ""
    missed: str = "once"
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def when(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron.expression}" + (f" {self.cron.zone}" if self.cron.zone else "")
        return f"every {self.every:g}s"

    def next_after(self, after: float) -> float:
        """The next regular tick after ``after`` (for ``every``: ``after`` + the interval)."""
        if self.cron is not None:
            return self.cron.next_after(after)
        assert self.every is not None
        return after + self.every

    def first_fire(self, now: float, last: float | None, missed: str | None = None) -> float:
        """When to fire first, on loading the entry at ``now``.

        ``last`` is when it was last enqueued (by any scheduler, from ``last_enqueued_at``): a
        tick due between then and now was missed while no scheduler ran, and policy ``once`` fires
        it now, once, however many were missed; ``skip`` waits for the next regular tick. A
        first load with no record waits for the next tick (``first_in`` for ``every``).
        """
        policy = missed or self.missed
        if last is not None:
            due = self.next_after(last)
            if due <= now:
                return now if policy == "once" else self._next_from(now, due)
            return due
        if self.every is not None:
            return now + (self.first_in if self.first_in is not None else self.every)
        return self.next_after(now)

    def _next_from(self, now: float, due: float) -> float:
        """The next regular tick after ``now`` (an ``every`` keeps its phase from ``due``)."""
        if self.every is None:
            return self.next_after(now)
        missed = int((now - due) // self.every) + 1
        return due + missed * self.every


def _when_value(config: Mapping[str, Any], key: str) -> tuple[Any, Mapping[str, Any]]:
    """A ``cron``/``every`` value and its options (rufus allows ``[value, {options}]``)."""
    value = config.get(key)
    if isinstance(value, list):
        options = value[1] if len(value) > 1 and isinstance(value[1], Mapping) else {}
        return (value[0] if value else None), options
    return value, {}


def parse_entry(name: str, config: Any, default_missed: str = "once") -> Entry:
    """An entry from its configuration; ConfigError naming the entry if it is not one."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"schedule {name!r}: expected a mapping, got {type(config).__name__}")
    config = {str(k): v for k, v in config.items()}
    cron_value, _ = _when_value(config, "cron")
    every_value, every_options = _when_value(config, "every")
    if (cron_value is None) == (every_value is None):
        raise ConfigError(f"schedule {name!r}: give exactly one of cron and every")
    missed = str(config.get("missed", default_missed))
    if missed not in MISSED_POLICIES:
        raise ConfigError(f"schedule {name!r}: missed must be one of {', '.join(MISSED_POLICIES)}")
    try:
        cron = Cron.parse(str(cron_value)) if cron_value is not None else None
        every = parse_duration(every_value) if every_value is not None else None
        first_in = every_options.get("first_in")
        first = parse_duration(first_in) if first_in is not None else None
    except ConfigError as exc:
        raise ConfigError(f"schedule {name!r}: {exc}") from None
    queue = config.get("queue")
    return Entry(
        name=name,
        class_name=str(config.get("class") or name),
        queue=str(queue) if queue else None,
        args=normalize_args(config.get("args")),
        cron=cron,
        every=every,
        first_in=first,
        description=str(config.get("description") or ""),
        missed=missed,
        config=config,
    )


def _is_entry(value: Any) -> bool:
    return isinstance(value, Mapping) and any(k in value for k in ("cron", "every", "class"))


def _env_matches(config: Mapping[str, Any], env_name: str | None) -> bool:
    """resque-scheduler's ``rails_env``/``env`` filter: a comma-separated list of environments."""
    wanted = config.get("rails_env", config.get("env"))
    if wanted is None:
        return True
    return env_name in [e.strip() for e in str(wanted).split(",")]


def entries_from_mapping(
    data: Any, env_name: str | None, source: str, default_missed: str = "once"
) -> dict[str, Entry]:
    """Entries of a schedule document: top-level entries, then the section named after the
    environment (``production:`` with entries under it) over them; other sections are ignored."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a schedule file must be a mapping of names to entries")
    flat: dict[str, Any] = {str(k): v for k, v in data.items() if _is_entry(v)}
    section = data.get(env_name) if env_name else None
    if isinstance(section, Mapping) and not _is_entry(section):
        flat.update({str(k): v for k, v in section.items()})
    out = {}
    for name, config in flat.items():
        if isinstance(config, Mapping) and not _env_matches(config, env_name):
            continue
        try:
            out[name] = parse_entry(name, config, default_missed)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return out


def format_enqueued_at(now: float) -> str:
    """``last_enqueued_at``'s value: Ruby's ``Time.now.to_s``, local time, whole seconds."""
    return datetime.fromtimestamp(int(now), local_zone()).strftime("%Y-%m-%d %H:%M:%S %z")


def parse_enqueued_at(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z").timestamp()
    except ValueError:
        return None
