"""Redis connections from URLs, with passwords kept out of every log line and title."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis

from pyresque.errors import ConfigError
from pyresque.wire.redaction import redact as redact  # noqa: PLC0414 - re-exported for importers
from pyresque.wire.redaction import redact_text

DEFAULT_URL = "redis://localhost:6379/0"


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
    from pyresque.store import sentinel
    from pyresque.store.cluster import connect_cluster, is_cluster_url

    if is_cluster_url(url):
        return connect_cluster(url, options)  # type: ignore[return-value]  # same commands
    if sentinel.is_sentinel_url(url):
        return sentinel.connect_sentinel(url, options)
    try:
        return redis.Redis.from_url(url, **options)
    except ValueError as exc:  # a URL this client cannot use: say so, never a traceback
        raise ConfigError(redact_text(f"Redis URL {redact(url)!r}: {exc}", url)) from None


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

# How a server says it cannot take a command for now (a failover, a load, memory, a missing
# replica, a busy script): the error reply's first word, also where Redis 6 embeds a command's
# error in a script's, after ": -" ("... @user_script: 1: -OOM command not allowed ...").
_FOR_NOW = re.compile(
    r"(?:^|: -)(?:READONLY|LOADING|MASTERDOWN|OOM|MISCONF|NOREPLICAS|BUSY|TRYAGAIN) "
)

_PASSING_ERRORS = (
    redis.exceptions.ReadOnlyError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.MasterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


def is_refusal_for_now(exc: BaseException) -> bool:
    """True for a refusal that passes as the server recovers (see ``_FOR_NOW``, and a durable
    write no replica confirmed in time): a line in the log and a retry, not a traceback, which
    is for a refusal that says something is wrong (a key of the wrong type, a script error)."""
    from pyresque.store.sentinel import NotReplicated

    if isinstance(exc, (NotReplicated, *_PASSING_ERRORS)):  # and redis-py's names for those
        return True
    return isinstance(exc, redis.ResponseError) and _FOR_NOW.search(str(exc)) is not None


def is_full(exc: BaseException) -> bool:
    """True for a refusal because Redis reached ``maxmemory`` (``noeviction``): the command's own
    ``OOM`` reply or one a script embeds (``... @user_script: 37: -OOM ...``)."""
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return True
    return (
        isinstance(exc, redis.ResponseError) and re.search(r"(?:^|: -)OOM ", str(exc)) is not None
    )


# --- checking a URL before use, telling refusals from outages --------------------

SCHEMES: tuple[str, ...] = (
    "redis",
    "rediss",
    "unix",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
)
# Several host[:port] entries, comma separated: where a client may start (sentinels, cluster nodes).
_MULTI_HOST_SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel", "redis+cluster"})
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.%-]+)")
_PORT = re.compile(r"[0-9]{1,5}")
_DB = re.compile(r"[0-9]+")
# Redis keeps database numbers in a C int; a server's own limit (``databases``) is checked on SELECT.
MAX_DB = 2**31 - 1


def validate_url(url: str, origin: str = "--redis") -> str:
    """``url`` unchanged if it is a Redis URL pyresque can use; else a :class:`ConfigError` that
    says what is wrong with it (the password hidden), for the command to print and exit 2.

    Why here: redis-py rejects some mistakes with a raw ``ValueError`` deep in a connection and
    silently reads others (``/abc``) as database 0, so a typo could write to the wrong database.
    """
    problem = _url_problem(url)
    if problem is not None:  # the message quotes parts of the URL: no password may be among them
        message = f"{origin} {redact(url)!r} is not a usable Redis URL: {problem}"
        raise ConfigError(redact_text(message, url))
    return url


def _url_problem(url: str) -> str | None:
    scheme, sep, _rest = url.partition("://")
    if not sep:
        return "expected scheme://..., such as redis://localhost:6379/0 (" + _schemes() + ")"
    if scheme.lower() not in SCHEMES:
        return f"unknown scheme {scheme + '://'!r}: use {_schemes()}"
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        return str(exc)
    rest = url[len(scheme) + 3 :]
    at = _userinfo_end(rest)
    if scheme.lower() != "unix" and at >= 0 and any(c in rest[:at] for c in "/?#"):
        return (
            "the user name or password holds '/', '?' or '#', which end the host part of a URL: "
            "percent-encode them (%2F, %3F, %23)"
        )
    if scheme.lower() == "unix":
        if not parts.path:
            return "a unix:// URL needs the socket's path, such as unix:///run/redis.sock?db=0"
        return _db_problem(query.get("db", [None])[-1], "?db=")
    where = _hosts_problem(parts.netloc.rpartition("@")[2], scheme.lower() in _MULTI_HOST_SCHEMES)
    if where is not None:
        return where
    path = parts.path.strip("/")
    if scheme.lower().endswith("+sentinel"):  # /service_name[/db], as redis-sentinel-url has it
        _service, _slash, path = path.partition("/")
    if "db" in query:
        return _db_problem(query["db"][-1], "?db=")
    return _db_problem(path or None, "the path (/N)")


def _userinfo_end(rest: str) -> int:
    """Where the user info of ``rest`` (a URL after its scheme) ends: its last ``@`` before any
    ``?`` or ``#``, else its last ``@`` (a password with an unescaped ``?``); -1 if none."""
    head = rest.split("?", 1)[0].split("#", 1)[0]
    at = head.rfind("@")
    return rest.rfind("@") if at < 0 else at


def _schemes() -> str:
    return ", ".join(f"{s}://" for s in SCHEMES)


def _hosts_problem(hosts: str, several: bool) -> str | None:
    entries = hosts.split(",") if several else [hosts]
    if not several and "," in hosts:
        return f"{hosts!r}: only the sentinel and cluster schemes take several hosts"
    for entry in entries:
        if not entry:
            if several:
                return "expected host[:port][,host[:port]...], got an empty entry"
            continue  # redis:// alone: redis-py's default, localhost
        host, colon, port = entry.rpartition(":") if not entry.endswith("]") else (entry, "", "")
        if not colon:
            host, port = entry, ""
        if not _HOST.fullmatch(host):
            return f"{host!r} is not a host name or address"
        if colon and not _PORT.fullmatch(port):
            return f"port {port!r} is not a number"
        if colon and not 1 <= int(port) <= 65535:
            return f"port {port} is out of range (1-65535)"
    return None


def _db_problem(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    if not _DB.fullmatch(value):
        return f"database {value!r} in {where} is not a number (expected 0, 1, ...)"
    if int(value) > MAX_DB:
        return f"database {value} in {where} is out of range (0-{MAX_DB})"
    return None


# How a refusal reads when redis-py passes it on as plain error text (the server's reply).
AUTH_MARKERS: tuple[str, ...] = (
    "WRONGPASS",
    "NOAUTH",
    "NOPERM",
    "invalid username-password pair",
    "invalid password",
    "Authentication required",
    "HELLO must be called with the client already authenticated",
    "no permissions to run",
)


def is_auth_failure(exc: BaseException) -> bool:
    """True when ``exc`` is Redis refusing us (wrong or missing password, an ACL rule), not an
    outage: retrying cannot help, so a command should stop and say "authentication failed".

    redis-py raises :class:`redis.AuthenticationError` (a ``ConnectionError``!) for most refusals,
    :class:`redis.exceptions.NoPermissionError` for an ACL denial, and plain ``ResponseError`` text
    for others (``HELLO`` on a server that wants a password), so both the types and the text count.
    """
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.NoPermissionError):
        return True
    if isinstance(exc, redis.RedisError):
        text = str(exc)
        return any(marker in text for marker in AUTH_MARKERS)
    return False


def is_bad_database(exc: BaseException) -> bool:
    """True when the server refused the URL's database number (``SELECT`` out of range)."""
    return isinstance(exc, redis.ResponseError) and "DB index is out of range" in str(exc)


def refusal(exc: BaseException) -> str | None:
    """What to tell the user when Redis refused us for good (a password, an ACL rule, a database
    number the server does not have); None for anything a retry might cure (an outage)."""
    if is_auth_failure(exc):
        return f"authentication failed: {exc}"
    if is_bad_database(exc):
        return f"the server refused the URL's database number: {exc}"
    return None
