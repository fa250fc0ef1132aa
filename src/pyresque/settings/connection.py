"""Where the jobs live: a Redis URL and a key namespace, resolved once per command.

Both are declared with the worker's settings (``redis_url``, ``namespace``); this is how a command,
the enqueue API and the dashboard resolve them, with one statement of precedence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pyresque.settings.worker import declared, read_env
from pyresque.store.connection import DEFAULT_URL, validate_url
from pyresque.wire.keys import DEFAULT_NAMESPACE


@dataclass(frozen=True)
class ConnectionSettings:
    """Where the jobs live: a Redis URL and a key namespace."""

    redis_url: str
    namespace: str


def connection_settings(
    url: str | None = None, namespace: str | None = None, env: Mapping[str, str] | None = None
) -> ConnectionSettings:
    """The one statement of precedence for both: what the caller was given (an option, an
    argument) < ``$REDIS_URL`` / ``$RESQUE_NAMESPACE`` < the defaults, read right to left."""
    env = os.environ if env is None else env
    return ConnectionSettings(
        url or read_env(declared("redis_url"), env) or DEFAULT_URL,
        namespace or read_env(declared("namespace"), env) or DEFAULT_NAMESPACE,
    )


def resolve_connection(
    url: str | None, namespace: str | None, env: Mapping[str, str] | None = None
) -> ConnectionSettings:
    """:func:`connection_settings` for a command, once: a URL that is not usable stops here, as a
    :class:`~pyresque.errors.ConfigError` that names where it came from (``--redis`` or
    ``REDIS_URL``) with the password hidden."""
    resolved = connection_settings(url, namespace, env)
    validate_url(resolved.redis_url, "--redis" if url else "REDIS_URL")
    return resolved
