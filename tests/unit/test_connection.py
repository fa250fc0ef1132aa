"""Passwords never leave connection.redact(); the URL comes from REDIS_URL."""

from __future__ import annotations

import pytest

from pyresque.connection import DEFAULT_URL, redact, url_from_env


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://user:pw@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:pw@host", "redis://:***@host"),
        ("redis://:pw@host:6379/1", "redis://:***@host:6379/1"),
        (
            "rediss://default:s3cr3t@db.example.com:25061/0",
            "rediss://default:***@db.example.com:25061/0",
        ),
        ("REDISS://u:pw@h", "REDISS://u:***@h"),
        ("redis://h:6379/0?password=pw", "redis://h:6379/0?password=***"),
        ("redis://h:6379/0?db=1&password=pw&x=1", "redis://h:6379/0?db=1&password=***&x=1"),
        ("redis://h/0?PASSWORD=pw", "redis://h/0?PASSWORD=***"),
        ("unix:///tmp/redis.sock?db=0&password=pw", "unix:///tmp/redis.sock?db=0&password=***"),
        ("unix://:pw@/tmp/redis.sock", "unix://:***@/tmp/redis.sock"),
        ("redis://u:pw@h/0?password=pw2", "redis://u:***@h/0?password=***"),
        # unescaped characters in a password must not leak part of it
        ("redis://:p@ss@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://u:pa/ss@host", "redis://u:***@host"),
        ("redis://u:pa?ss@host", "redis://u:***@host"),
        ("redis://u:pa#ss@host", "redis://u:***@host"),
        # nothing to hide
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://user@host", "redis://user@host"),
        ("unix:///tmp/redis.sock?db=0", "unix:///tmp/redis.sock?db=0"),
        ("", ""),
    ],
)
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:hunter2@host",
        "redis://:hunter2@host",
        "rediss://:hunter2@host:6380",
        "redis://host?password=hunter2",
        "redis://:hun@ter2@host",
        "redis://:hun/ter2@host/0",
    ],
)
def test_the_password_is_gone(url: str) -> None:
    redacted = redact(url)
    for fragment in ("hunter2", "hun", "ter2"):
        assert fragment not in redacted
    assert "***" in redacted


def test_url_from_env() -> None:
    assert url_from_env({}) == DEFAULT_URL == "redis://localhost:6379/0"
    assert url_from_env({"REDIS_URL": ""}) == DEFAULT_URL
    assert url_from_env({"REDIS_URL": "redis://h:1/2"}) == "redis://h:1/2"
