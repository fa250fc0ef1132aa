"""The running state of recurring entries: when each fires next. Pure; time is passed in.

Loading the file and the dynamic entries is here too, so that ``pyresque schedule list`` and the
scheduler read the same thing the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from pyresque.errors import ConfigError
from pyresque.scheduler.recurring import Entry, entries_from_mapping, parse_entry
from pyresque.wire import protocol
from pyresque.yamlfile import load_yaml

log = logging.getLogger(__name__)

DEFAULT_SCHEDULE_FILES = ("config/resque-schedule.yml", "config/resque_schedule.yml")


def find_schedule_file(explicit: str | None, cwd: Path) -> Path | None:
    """``--schedule FILE`` (which must exist), else the first default file that exists."""
    if explicit:
        path = cwd / explicit
        if not path.is_file():
            raise ConfigError(f"schedule file {explicit!r} does not exist (looked in {cwd})")
        return path
    for name in DEFAULT_SCHEDULE_FILES:
        if (cwd / name).is_file():
            return cwd / name
    return None


def load_schedule_file(path: Path, env_name: str | None, missed: str = "once") -> dict[str, Entry]:
    """The entries of a schedule file; a ConfigError naming the file (and line) otherwise."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the schedule: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the schedule is not UTF-8 text: {exc}") from None
    return parse_schedule_text(text, env_name, str(path), missed)


def parse_schedule_text(
    text: str, env_name: str | None, source: str, missed: str = "once"
) -> dict[str, Entry]:
    """The entries of a schedule document; duplicate names are refused with their lines."""
    return entries_from_mapping(load_yaml(text, source), env_name, source, missed)


def parse_dynamic(raw: Mapping[str, str], missed: str = "once") -> dict[str, Entry]:
    """Entries of ``persistent_schedules`` (name -> JSON); a broken one is logged and skipped,
    as one bad entry written by another process must not stop every other schedule."""
    out = {}
    for name, text in raw.items():
        try:
            out[name] = parse_entry(name, protocol.loads(text), missed)
        except (ValueError, ConfigError) as exc:
            log.error("dynamic schedule %s ignored: %s", name, exc)
    return out


class Schedule:
    """Recurring entries and when each fires next."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.next_at: dict[str, float] = {}

    def load(
        self, entries: Mapping[str, Entry], now: float, last: Mapping[str, float | None]
    ) -> None:
        """Take ``entries``; an entry already known with the same configuration keeps its next
        time, a new or changed one starts from its last enqueue (see ``Entry.first_fire``)."""
        old = self.entries
        self.entries = dict(entries)
        next_at = {}
        for name, entry in self.entries.items():
            if name in old and old[name] == entry and name in self.next_at:
                next_at[name] = self.next_at[name]
            else:
                next_at[name] = entry.first_fire(now, last.get(name))
        self.next_at = next_at

    def clear(self) -> None:
        self.entries, self.next_at = {}, {}

    def take_due(self, now: float) -> list[Entry]:
        """Entries due at ``now``, each once however late (no burst), moved to their next tick."""
        due = []
        for name, at in self.next_at.items():
            if at <= now:
                entry = self.entries[name]
                due.append(entry)
                self.next_at[name] = self._after(entry, at, now)
        return due

    @staticmethod
    def _after(entry: Entry, at: float, now: float) -> float:
        if entry.every is None:
            return entry.next_after(now)
        nxt = at + entry.every
        if nxt <= now:
            nxt += ((now - nxt) // entry.every + 1) * entry.every
        return nxt

    def next_wake(self) -> float | None:
        return min(self.next_at.values(), default=None)
