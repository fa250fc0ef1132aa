"""Sentinel URLs: what they say, the clear errors for what they must not say, and redaction."""

from __future__ import annotations

import pytest

from pyresque.errors import ConfigError
from pyresque.store.connection import redact
from pyresque.store.sentinel import SentinelURL, is_sentinel_url, parse_sentinel_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://h1:26379,h2:26380/mymaster",
            SentinelURL((("h1", 26379), ("h2", 26380)), "mymaster"),
        ),
        (
            "redis+sentinel://:s3cret@h1,[::1]:5000/svc/3",
            SentinelURL((("h1", 26379), ("::1", 5000)), "svc", db=3, password="s3cret"),
        ),
        (
            "rediss+sentinel://u:p%40ss@h:1/svc?sentinel_auth=yes&wait=1&wait_timeout=250",
            SentinelURL(
                (("h", 1),),
                "svc",
                username="u",
                password="p@ss",
                ssl=True,
                sentinel_auth=True,
                wait_replicas=1,
                wait_timeout_ms=250,
            ),
        ),
    ],
)
def test_parse(url: str, expected: SentinelURL) -> None:
    assert is_sentinel_url(url)
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel:///svc", "no sentinel host"),
        ("redis+sentinel://h:1", "service_name"),
        ("redis+sentinel://h:1/svc/0/extra", "service_name"),
        ("redis+sentinel://h:x/svc", "host:port"),
        ("redis+sentinel://h:1/svc/zero", "db="),
        ("redis+sentinel://:pw@h:1/svc?bogus=1", "unknown option 'bogus'"),
        ("redis+sentinel://h:1/svc?wait=-1", "wait="),
        ("redis+sentinel://h:1/svc?wait_timeout=0", "wait_timeout="),
    ],
)
def test_errors_are_clear_and_never_name_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_sentinel_url(url)
    assert "pw" not in str(info.value).replace("password", "")


def test_plain_urls_are_not_sentinel_urls() -> None:
    assert not is_sentinel_url("redis://h:6379/0")
    assert not is_sentinel_url("unix:///tmp/r.sock")


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:s3cret@h1:26379,h2:26379/mymaster/0",
        "rediss+sentinel://user:s3cret@h1:26379/mymaster",
        "redis+sentinel://:s3c@ret@h1:26379/mymaster?wait=1",
    ],
)
def test_redact_hides_the_password(url: str) -> None:
    shown = redact(url)
    assert "s3c" not in shown
    assert "mymaster" in shown
    assert "h1:26379" in shown
