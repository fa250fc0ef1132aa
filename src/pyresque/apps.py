"""Loading the application: the modules that register jobs and hooks, for ``work`` and ``pool``.

Its own module so that both commands (and the pool's workers, with ``--no-preload``) use one way
of finding and importing the app, and nothing below the command line imports ``cli``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence

from pyresque.errors import ConfigError


def app_modules(given: Sequence[str] | None, env: Mapping[str, str] | None = None) -> list[str]:
    """The modules to import: ``--app`` (repeatable), else ``$PYRESQUE_APP`` (comma separated)."""
    if given:
        return list(given)
    env = os.environ if env is None else env
    return [m.strip() for m in env.get("PYRESQUE_APP", "").split(",") if m.strip()]


def import_apps(modules: Sequence[str]) -> None:
    """Import the application modules that register jobs and hooks (from the current directory
    too, as ``python -m`` would)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"--app {name}: cannot import it: {exc}") from exc
