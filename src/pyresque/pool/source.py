"""Where the master's config comes from: a file looked up on every load, or a custom loader.

A reload must never empty a running pool by accident: a deploy rewriting the file or a logrotate
``HUP`` can find it missing, a directory or empty for an instant. Once a file gave workers, a load
that finds no usable file raises :class:`NoUsableConfig`, and the master keeps what it runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from pyresque.errors import ConfigError
from pyresque.pool.config import (
    PoolConfig,
    environment_name,
    find_config_file,
    load_config,
    load_loader,
)
from pyresque.pool.template import Constants

log = logging.getLogger("pyresque.pool")


class NoUsableConfig(ConfigError):
    """A reload found no config file, or an empty one, where the last load found workers."""


class FileSource:
    """Loads ``--config``, ``$RESQUE_POOL_CONFIG`` or the first of the usual files, each time."""

    def __init__(
        self,
        explicit: str | None,
        environment: str | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        constants: Constants | None = None,
    ) -> None:
        """``constants``: the lookup of ``<%= NAME %>`` (the app modules' attributes)."""
        self.explicit = explicit
        self.environment = environment
        self.env = os.environ if env is None else env
        self.cwd = cwd
        self.constants = constants
        self._had_workers = False

    def __call__(self) -> PoolConfig:
        cwd = self.cwd or Path.cwd()
        path = find_config_file(self.explicit, self.env, cwd)
        config = load_config(path, self.environment, self.env, self.cwd, self.constants)
        if config.is_empty and self._had_workers:
            what = "no config file" if path is None else f"{path} has no workers"
            raise NoUsableConfig(f"{what} (a file being rewritten?)")
        self._had_workers = not config.is_empty
        return config


def config_source(
    explicit: str | None,
    environment: str | None,
    config_loader: str | None,
    env: Mapping[str, str] | None = None,
    constants: Constants | None = None,
) -> Callable[[], PoolConfig]:
    """The function the master calls to (re)load its config: a file or a custom loader."""
    env = os.environ if env is None else env
    name = environment_name(environment, env)
    if config_loader:
        loader = load_loader(config_loader)
        return lambda: loader.load(name)
    return FileSource(explicit, name, env, constants=constants)


def reload_config(load: Callable[[], PoolConfig]) -> PoolConfig | None:
    """Load the config again for a HUP; None, after saying why, when the old one must stay."""
    try:
        return load()
    except NoUsableConfig as exc:
        log.warning("HUP: keeping the old config and workers: %s", exc)
    except ConfigError as exc:
        log.error("HUP: keeping the old config and workers: %s", exc)
    except Exception:  # a loader's own bug: keep running, and show where it broke
        log.exception("HUP: keeping the old config and workers: loading it failed")
    return None
