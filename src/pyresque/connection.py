"""Redis connections from URLs, with passwords kept out of every log line and title."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import redis

DEFAULT_URL = "redis://localhost:6379/0"

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.I)
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&]password=)[^&#]*", re.I)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``.

    The user info ends at the last ``@`` of the authority, not the first: a password with an
    unescaped ``@``, ``/``, ``?`` or ``#`` (common in copied credentials) must not leak in part.
    """
    scheme = _SCHEME.match(url)
    if scheme is not None:
        rest = url[scheme.end() :]
        head = rest.split("?", 1)[0].split("#", 1)[0]
        at = head.rfind("@")
        if at < 0:
            at = rest.rfind("@")  # a password with an unescaped '?' or '#'
        user, colon, _password = rest[: max(at, 0)].partition(":")
        if at >= 0 and colon:
            url = f"{scheme.group()}{user}:***@{rest[at + 1 :]}"
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
