"""Recurring entries: resque-scheduler's format, timing, missed ticks and the running schedule."""

from __future__ import annotations

import calendar
import re
from typing import Any

import pytest

from pyresque.errors import ConfigError
from pyresque.scheduler.recurring import (
    Cron,
    entries_from_mapping,
    format_enqueued_at,
    normalize_args,
    parse_duration,
    parse_enqueued_at,
    parse_entry,
)
from pyresque.scheduler.schedule import Schedule, parse_dynamic, parse_schedule_text


def utc(text: str) -> float:
    """Epoch seconds of ``YYYY-MM-DD HH:MM:SS`` UTC."""
    date, clock = text.split()
    return float(
        calendar.timegm((*map(int, date.split("-")), *map(int, clock.split(":")), 0, 0, 0))
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2), ("30", 30), (45, 45), ("1m", 60), ("1h30m", 5400), ("1d", 86400), ("500ms", 0.5)],
)
def test_durations_as_rufus_writes_them(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0s", "2x"])
def test_bad_durations_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "args"),
    [([1, "x"], [1, "x"]), ({"h": 1}, [{"h": 1}]), ("x", ["x"]), (None, []), (5, [5])],
)
def test_args_as_resque_scheduler_normalises_them(value: Any, args: list[Any]) -> None:
    assert normalize_args(value) == args


def test_an_entry_in_ruby_format() -> None:
    entry = parse_entry(
        "every_min",
        {"cron": "* * * * *", "class": "SomeJob", "queue": "mail", "args": [1], "description": "d"},
    )
    assert (entry.class_name, entry.queue, entry.args, entry.description) == (
        "SomeJob",
        "mail",
        [1],
        "d",
    )
    assert entry.cron == Cron("* * * * *")
    nameless = parse_entry("Reports::Daily", {"every": ["2s", {"first_in": "1s"}]})
    assert (nameless.class_name, nameless.every, nameless.first_in) == ("Reports::Daily", 2, 1)


@pytest.mark.parametrize(
    "config",
    [
        {"class": "X"},
        {"cron": "* * * * *", "every": "1s"},
        {"cron": "61 * * * *"},
        {"cron": "* * *"},
        {"every": "1s", "missed": "burst"},
        "not a mapping",
    ],
)
def test_bad_entries_name_themselves(config: Any) -> None:
    with pytest.raises(ConfigError, match="'job'"):
        parse_entry("job", config)


def test_cron_honours_its_time_zone() -> None:
    berlin = Cron.parse("0 3 * * * Europe/Berlin")
    assert berlin.zone == "Europe/Berlin"
    # 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer
    assert berlin.next_after(utc("2026-01-10 12:00:00")) == utc("2026-01-11 02:00:00")
    assert berlin.next_after(utc("2026-07-10 12:00:00")) == utc("2026-07-11 01:00:00")
    daily = Cron.parse("@daily America/New_York")
    assert daily.next_after(utc("2026-01-10 12:00:00")) == utc("2026-01-11 05:00:00")
    seconds = Cron.parse("*/10 * * * * * UTC")  # rufus: six fields, seconds first
    assert seconds.next_after(utc("2026-01-10 12:00:01")) == utc("2026-01-10 12:00:10")


def test_environment_sections_and_rails_env() -> None:
    data = {
        "always": {"every": "1m", "class": "A"},
        "prod_only": {"every": "1m", "class": "P", "rails_env": "production, staging"},
        "production": {"section": {"cron": "0 * * * *", "class": "S"}},
        "development": {"dev": {"every": "1s", "class": "D"}},
    }
    assert set(entries_from_mapping(data, "production", "f")) == {"always", "prod_only", "section"}
    assert set(entries_from_mapping(data, "development", "f")) == {"always", "dev"}
    assert set(entries_from_mapping(data, None, "f")) == {"always"}
    with pytest.raises(ConfigError, match="schedule file"):
        entries_from_mapping(["a"], None, "f")


def test_missed_ticks_run_once_by_default_or_are_skipped() -> None:
    hourly = parse_entry("h", {"cron": "0 * * * *", "class": "H"})
    now = utc("2026-01-10 12:30:00")
    three_hours_ago = utc("2026-01-10 09:00:00")
    assert hourly.first_fire(now, three_hours_ago) == now
    assert hourly.first_fire(now, three_hours_ago, "skip") == utc("2026-01-10 13:00:00")
    assert hourly.first_fire(now, utc("2026-01-10 12:00:00")) == utc("2026-01-10 13:00:00")
    assert hourly.first_fire(now, None) == utc("2026-01-10 13:00:00")
    every = parse_entry("e", {"every": "10s", "class": "E", "missed": "skip"})
    assert every.first_fire(100.0, 55.0) == 105.0  # keeps its phase: 65, 75, … 95 missed
    assert every.first_fire(100.0, 95.0) == 105.0
    assert every.first_fire(100.0, None) == 110.0


def test_the_schedule_fires_each_due_entry_once_however_late() -> None:
    schedule = Schedule()
    every = parse_entry("e", {"every": "10s", "class": "E"})
    cron = parse_entry("c", {"cron": "* * * * *", "class": "C"})
    start = utc("2026-01-10 12:00:30")
    schedule.load({"e": every, "c": cron}, start, {})
    assert schedule.next_wake() == start + 10
    assert schedule.take_due(start + 5) == []
    late = start + 95  # nine ticks of "every" and one of cron passed: one fire each
    assert sorted(e.name for e in schedule.take_due(late)) == ["c", "e"]
    assert schedule.take_due(late) == []
    assert schedule.next_at["e"] == start + 100
    assert schedule.next_at["c"] == utc("2026-01-10 12:03:00")
    # reloading the same entries keeps their times; a changed one starts again
    changed = parse_entry("e", {"every": "20s", "class": "E"})
    schedule.load({"e": changed, "c": cron}, late, {})
    assert schedule.next_at == {"e": late + 20, "c": utc("2026-01-10 12:03:00")}


def test_dynamic_entries_from_ruby_json_and_a_broken_one_skipped() -> None:
    raw = {
        "dyn_py": '{"class":"Py::Remote","every":["2s",{"first_in":"1s"}],"queue":"py","args":"x"}',
        "broken": "{not json",
        "no_timing": '{"class":"X"}',
    }
    entries = parse_dynamic(raw)
    assert list(entries) == ["dyn_py"]
    assert entries["dyn_py"].args == ["x"]
    assert entries["dyn_py"].first_in == 1


def test_last_enqueued_at_in_rubys_time_to_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    text = format_enqueued_at(utc("2026-11-29 16:21:00") + 0.9)
    assert text == "2026-11-29 16:21:00 +0000"
    assert parse_enqueued_at(text) == utc("2026-11-29 16:21:00")
    assert parse_enqueued_at("yesterday") is None


def test_options_from_resque_schedulers_variables() -> None:
    from pathlib import Path

    from pyresque.scheduler.service import SchedulerOptions

    env = {
        "RESQUE_SCHEDULER_INTERVAL": "0.5",
        "LOCK_TIMEOUT": "5",
        "RESQUE_SCHEDULER_MASTER_LOCK_PREFIX": "MyApp:",
        "DELAYED_REQUEUE_BATCH_SIZE": "2",
    }
    options = SchedulerOptions.from_env(env, schedule_file=Path("s.yml"), missed=None)
    assert (options.poll_interval, options.lock_timeout, options.lock_prefix) == (0.5, 5, "MyApp:")
    assert (options.batch_size, options.schedule_file, options.missed) == (2, Path("s.yml"), "once")
    assert SchedulerOptions.from_env({}) == SchedulerOptions()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3 * * * * Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("0 3 * * * * Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("@daily Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("3 * * * * Marsland", "unknown time zone 'Marsland'"),
        # found by fuzz/run.py schedule: a zone *directory* escaped as IsADirectoryError
        ("3 * * * * Europe", "unknown time zone 'Europe'"),
        ("3 * * * * America/", "unknown time zone 'America/'"),
        ("3 * * * * ../../etc", "unknown time zone"),
        ("61 * * * *", "not a cron expression"),
    ],
)
def test_schedule_errors_in_our_words(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        Cron.parse(text)
    assert "acceptable" not in str(refused.value)  # croniter's own wording stays out


@pytest.mark.parametrize(
    "text", ["0 3 * * * mon", "0 3 * * * mon-fri", "0 3 * * * sun,sat", "3 * * * * UTC"]
)
def test_a_day_of_week_is_not_taken_for_a_zone(text: str) -> None:
    assert Cron.parse(text).next_after(0.0) > 0.0


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("a:\n  cron: '* * * * *'\na:\n  every: 5s\n", 3, "duplicate key 'a' (first on line 1)"),
        ("a:\n  cron: '* * * * *'\n  cron: '0 * * * *'\n", 3, "duplicate key 'cron'"),
        ("a: [1\n", 2, "expected ',' or ']'"),
    ],
)
def test_a_schedule_file_error_is_one_line_with_file_and_line(
    text: str, line: int, what: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_schedule_text(text, None, "config/resque-schedule.yml")
    message = str(refused.value)
    assert message.startswith(f"config/resque-schedule.yml:{line}: ")
    assert what in message and "\n" not in message
