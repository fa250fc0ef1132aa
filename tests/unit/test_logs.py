"""One log format for every process: time, level, role[app][pid], message; or JSON."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest

from pyresque.logs import LogFormatter, PoolFormatter, by_pid, install, timestamp

LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d (?P<level>[A-Z]+) "
    r"(?P<role>[a-z-]+)\[(?P<app>[^\]]*)\]\[(?P<pid>\d+)\]: (?P<message>.*)",
    re.DOTALL,
)


def record(level: int, message: str, pid: int, *args: object) -> logging.LogRecord:
    rec = logging.LogRecord("pyresque.test", level, __file__, 1, message, args, None)
    rec.process = pid
    return rec


def test_pool_lines_have_time_level_and_the_role_users_grep_for() -> None:
    formatter = PoolFormatter("shop", 100, as_json=False)
    master = LINE.fullmatch(formatter.format(record(logging.INFO, "spawned %s", 100, "w")))
    worker = LINE.fullmatch(formatter.format(record(logging.WARNING, "slow", 101)))
    assert master is not None and worker is not None
    assert master.group("level", "role", "app", "pid", "message") == (
        "INFO",
        "resque-pool-manager",
        "shop",
        "100",
        "spawned w",
    )
    assert worker.group("role", "pid", "level") == ("resque-pool-worker", "101", "WARNING")
    assert "resque-pool-manager[shop][100]: spawned w" in formatter.format(
        record(logging.INFO, "spawned %s", 100, "w")
    )


def test_a_traceback_follows_its_line() -> None:
    formatter = LogFormatter("app", by_pid(1, "pyresque-worker", "pyresque-job"), as_json=False)
    try:
        raise ValueError("bad")
    except ValueError:
        rec = record(logging.ERROR, "job failed", 2)
        rec.exc_info = sys.exc_info()
    text = formatter.format(rec)
    match = LINE.fullmatch(text)
    assert match is not None and match.group("role") == "pyresque-job"
    assert "\nTraceback (most recent call last):" in text and "ValueError: bad" in text


def test_json_lines_hold_the_same_fields() -> None:
    formatter = PoolFormatter("shop", 100, as_json=True)
    data = json.loads(formatter.format(record(logging.INFO, "spawned", 100)))
    assert data == {
        "time": data["time"],
        "level": "info",
        "role": "resque-pool-manager",
        "app": "shop",
        "pid": 100,
        "logger": "pyresque.test",
        "message": "spawned",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", data["time"])


def test_timestamp_keeps_milliseconds() -> None:
    assert timestamp(1_700_000_000.25)[19:23] == ".250"


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("redis", "redis.connection")}
    yield
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


@pytest.mark.usefixtures("root_restored")
def test_verbose_shows_our_debug_lines_but_not_redis_py_noise() -> None:
    stream = io.StringIO()
    install(PoolFormatter("shop", 1, as_json=False), verbose=1, stream=stream)
    logging.getLogger("pyresque.pool").debug("ours")
    logging.getLogger("redis.maint_notifications").debug("MAINT_NOTIFICATIONS handshake")
    logging.getLogger("redis.connection").info("connected")
    logging.getLogger("redis.connection").warning("reconnecting")
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["ours", "reconnecting"]
