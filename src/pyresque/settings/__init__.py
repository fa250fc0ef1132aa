"""Settings, each declared once: the workers' (:mod:`.worker`), the connection's (:mod:`.connection`)
and the pool master's own options (:mod:`.pool`).

Precedence, the same for all of them and stated in :func:`~.worker.worker_settings`: defaults <
environment < ``settings.PYRESQUE`` (Django) < command line. ``python -m pyresque.settings --markdown`` prints the tables of
docs/configuration.md, which a test holds equal to the declarations.
"""

from __future__ import annotations

from pyresque.settings.connection import (
    ConnectionSettings,
    connection_settings,
    resolve_connection,
)
from pyresque.settings.worker import WorkerSettings, from_env, worker_settings

__all__ = [
    "ConnectionSettings",
    "WorkerSettings",
    "connection_settings",
    "from_env",
    "resolve_connection",
    "worker_settings",
]
