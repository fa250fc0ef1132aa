"""Redis connections from URLs, with passwords kept out of every log line and title."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

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


def _driver_options() -> dict[str, Any]:
    """Tell redis-py its own version, so each new connection does not look it up again.

    Left to itself, redis-py scans every installed distribution's metadata for its version on each
    connection it creates; in a forked worker that costs about 1.4 MB of private memory.
    """
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py before 7: no CLIENT SETINFO metadata to resolve
        return {}
    return {"driver_info": DriverInfo(lib_version=redis.__version__)}


def connect(url: str, socket_timeout: float = 10.0) -> redis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` for TLS, ``unix://``).

    Keepalive, a health check and a socket timeout make a half-open connection (a Redis restart, a
    NAT timeout, a server that accepts but never answers) surface as an error that the caller's
    reconnect loop handles, rather than a hang. No command pyresque sends blocks in Redis on these
    connections (the blocking move has its own, and reads only once its socket is readable).
    """
    options: dict[str, Any] = {
        "health_check_interval": 30,
        "socket_connect_timeout": 5,
        "socket_timeout": socket_timeout,
        **_driver_options(),
    }
    if not url.startswith("unix:"):
        options["socket_keepalive"] = True
    from pyresque.cluster import connect_cluster, is_cluster_url

    if is_cluster_url(url):
        return connect_cluster(url, options)  # type: ignore[return-value]  # same commands
    return redis.Redis.from_url(url, **options)


CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    ConnectionError,
    OSError,
)

# Worth retrying with backoff rather than crashing: every Redis error, including a replica's
# READONLY after a failover, OOM and MISCONF refusals, and a script error (logged each time).
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, ConnectionError, OSError)
