"""``pyresque web``: serve the dashboard with uvicorn.

Listens on 127.0.0.1 unless told otherwise; a non-loopback bind without ``--auth`` (or
``$PYRESQUE_WEB_AUTH``) is refused, since the page can retry, remove and pause.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from pyresque.errors import ConfigError
from pyresque.logs import setup_role_logging
from pyresque.settings.options import add_connection_flags
from pyresque.web.security import AUTH_ENV, is_loopback, parse_auth

log = logging.getLogger(__name__)
DEFAULT_BIND = "127.0.0.1:5678"


def parse_bind(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--bind wants host:port, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_flags(parser)
    parser.add_argument(
        "--bind", "-b", default=DEFAULT_BIND, help="host:port (default %(default)s)"
    )
    parser.add_argument(
        "--auth",
        default=None,
        metavar="USER:PASSWORD",
        help=f"HTTP basic auth (default ${AUTH_ENV}); required for a non-loopback --bind",
    )
    parser.add_argument("--read-only", action="store_true", help="show, never change anything")
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    parser.add_argument("--verbose", "-v", action="count", default=0)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from pyresque.web.app import create_app
    except ImportError as exc:
        raise ConfigError(
            f"pyresque web needs the 'web' extra: pip install 'pyresque[web]' ({exc})"
        ) from exc
    setup_role_logging("pyresque-web", Path.cwd().name, as_json=args.log_json, verbose=args.verbose)
    host, port = parse_bind(args.bind)
    auth = args.auth or os.environ.get(AUTH_ENV) or None
    try:
        credentials = parse_auth(auth)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if credentials is None and not is_loopback(host):
        raise ConfigError(
            f"--bind {args.bind} listens beyond this host: set --auth user:password "
            f"(or ${AUTH_ENV}), or bind to 127.0.0.1"
        )
    connection = args.connection
    app = create_app(
        connection.redis_url, connection.namespace, auth=auth, read_only=args.read_only
    )
    log.info("web: serving the dashboard on http://%s:%d/", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0
