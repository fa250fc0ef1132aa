"""Redis connections from URLs, with passwords kept out of every log line and title."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import redis

DEFAULT_URL = "redis://localhost:6379/0"

_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z0-9+.-]+://)(?P<user>[^:@/]*):(?P<pw>[^@/]*)@", re.I)
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&]password=)[^&]*", re.I)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    url = _PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
    return _PASSWORD_PARAM.sub(lambda m: f"{m['key']}***", url)


def url_from_env(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("REDIS_URL") or DEFAULT_URL


def connect(url: str) -> redis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` for TLS, ``unix://``).

    Keepalive and a health check make a half-open connection (a Redis restart, a NAT timeout)
    surface as an error that the worker's reconnect loop handles, rather than a hang.
    """
    if url.startswith("unix:"):
        return redis.Redis.from_url(url, health_check_interval=30, socket_connect_timeout=5)
    return redis.Redis.from_url(
        url, socket_keepalive=True, health_check_interval=30, socket_connect_timeout=5
    )


CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    ConnectionError,
    OSError,
)
