"""Pool configuration: finding the file, safe templating, environment sections, custom loaders.

resque-pool reads ``resque-pool.yml`` through ERB, which runs arbitrary Ruby. We keep the file format
and the few ERB idioms real configs use, but expand them as text and never run code: a config file
is data. Every error names the file (or loader), the key and what was expected, because a bad config
found on HUP must be explained in the log while the pool keeps running on its old one.
"""

from __future__ import annotations

import enum
import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from pyresque.errors import ConfigError
from pyresque.pool.template import Constants, render_template
from pyresque.yamlfile import load_yaml

# Looked for in this order, relative to the working directory, as Ruby's resque-pool does.
CONFIG_FILES: Final = ("resque-pool.yml", "config/resque-pool.yml")
# The environment name comes from the first of these that is set (and not empty).
ENVIRONMENT_VARIABLES: Final = ("RACK_ENV", "RAILS_ENV", "RESQUE_ENV")


class Auto(enum.Enum):
    """The worker count ``auto``: as many workers as fit in memory, sized by the pool at runtime.

    An enum member rather than ``None`` or ``-1`` so that code which forgets to resolve it fails
    type checking instead of spawning no workers or crashing on arithmetic.
    """

    AUTO = "auto"

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Final = Auto.AUTO
Count: TypeAlias = "int | Literal[Auto.AUTO]"


@dataclass(frozen=True)
class PoolConfig:
    """The desired workers: queue-list group -> count, in the file's order, and where it came from.

    ``groups`` is copied into a read-only mapping so a config, once loaded, cannot drift; the master
    compares the old and the new one on HUP.
    """

    groups: Mapping[str, Count] = field(default_factory=dict)
    source: str = "(no config file)"

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", MappingProxyType(dict(self.groups)))

    @property
    def is_empty(self) -> bool:
        """True when no group asks for a worker: the pool logs "Pool is empty" and keeps running."""
        return not any(count is AUTO or count > 0 for count in self.groups.values())


# --- finding the file and the environment ---------------------------------------------------


def find_config_file(explicit: str | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    """The config file: ``--config PATH``, else ``$RESQUE_POOL_CONFIG``, else the usual places.

    A path the user named that does not exist is an error (a typo must not become an empty pool);
    finding none of the usual files is not: the pool then runs empty, as Ruby's does.
    """
    if explicit is not None:
        return _existing_file(cwd, explicit, "--config")
    from_env = env.get("RESQUE_POOL_CONFIG")
    if from_env:
        return _existing_file(cwd, from_env, "RESQUE_POOL_CONFIG")
    for name in CONFIG_FILES:
        candidate = cwd / name
        if candidate.is_file():
            return candidate
    return None


def no_file_source(cwd: Path) -> str:
    """The source text of an empty config for which no file was found: where it was looked for."""
    looked = " and ".join(str(cwd / name) for name in CONFIG_FILES)
    return (
        f"no config file: looked for {looked} (--config FILE or $RESQUE_POOL_CONFIG names another)"
    )


def _existing_file(cwd: Path, given: str, origin: str) -> Path:
    path = cwd / given
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError(f"{origin}: config file {given!r} {what} (looked in {cwd})")
    return path


def environment_name(explicit: str | None, env: Mapping[str, str]) -> str | None:
    """The environment whose section applies: ``-E NAME``, else RACK_ENV, RAILS_ENV, RESQUE_ENV.

    An empty value counts as unset (Ruby would take ``""``, which never names a section anyway).
    """
    if explicit:
        return explicit
    for name in ENVIRONMENT_VARIABLES:
        value = env.get(name)
        if value:
            return value
    return None


# --- parsing and validation -----------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")
_COUNT_EXPECTED = "expected a worker count (a whole number ≥ 0 or 'auto')"


def load_config(
    path: Path | None,
    environment: str | None,
    env: Mapping[str, str],
    cwd: Path | None = None,
    constants: Constants | None = None,
) -> PoolConfig:
    """Read, render and validate the config file; no file gives an empty config whose source says
    where the file was looked for (relative to ``cwd``, the working directory by default), so
    "Pool is empty" tells a user in the wrong directory where to put it."""
    if path is None:
        return PoolConfig({}, source=no_file_source(Path.cwd() if cwd is None else cwd))
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: the config file is not UTF-8 text: {exc}") from None
    return parse_config(text, source=source, environment=environment, env=env, constants=constants)


def parse_config(
    text: str,
    *,
    source: str,
    environment: str | None,
    env: Mapping[str, str],
    constants: Constants | None = None,
) -> PoolConfig:
    """Render the template, parse the YAML and validate it; ``source`` names the file in errors."""
    data = load_yaml(render_template(text, env, source, constants), source)
    if data is None:  # empty, or only comments
        return PoolConfig({}, source=source)
    return config_from_mapping(data, source=source, environment=environment)


def config_from_mapping(data: object, *, source: str, environment: str | None) -> PoolConfig:
    """Validate a parsed config (from a file or a loader) and apply its environment section.

    Ruby's rule: the section named after the environment overrides the root's keys, then every
    mapping-valued key (that section, other environments, YAML anchors such as ``defaults``) is
    dropped. Group names are kept verbatim: ``"foo,bar"`` and ``"bar,foo"`` are two groups.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: expected a mapping of queue list to worker count "
            f"(such as \"'*': 2\"), got {_describe(data)}"
        )
    merged: dict[object, tuple[object, str]] = {key: (value, "") for key, value in data.items()}
    if environment is not None:
        section = data.get(environment)
        if isinstance(section, Mapping):
            for key, value in section.items():
                merged[key] = (value, f" (in section {environment!r})")
    groups: dict[str, Count] = {}
    for key, (value, where) in merged.items():
        if isinstance(value, Mapping):
            continue
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(
                f"{source}: key {key!r}{where}: expected a queue list (a string such as "
                f"'foo,bar' or '*'), got {_describe(key)}; quote the key"
            )
        groups[key] = parse_count(value, f"{source}: key {key!r}{where}")
    return PoolConfig(groups, source=source)


def parse_count(value: object, what: str) -> Count:
    """A worker count: a whole number ≥ 0, a string of digits (after templating) or ``auto``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "auto":
            return AUTO
        if _DIGITS.fullmatch(text):
            return int(text)
    raise ConfigError(f"{what}: {_COUNT_EXPECTED}, got {_describe(value)}")


def _describe(value: object) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str) and not value.strip():
        return "an empty string"
    return repr(value)


# --- custom loaders -------------------------------------------------------------------------


@dataclass(frozen=True)
class Loader:
    """A custom config loader (``--config-loader module:callable``) for dynamic configs.

    The callable gets the environment name and returns the mapping a file would hold; its result
    goes through the same validation as a file, with the loader named in errors. Whatever it raises
    becomes a :class:`ConfigError`, so the master can keep its old config and log why.
    """

    spec: str
    function: Callable[[str | None], object]

    @property
    def source(self) -> str:
        return f"config loader {self.spec!r}"

    def load(self, environment: str | None) -> PoolConfig:
        try:
            data = self.function(environment)
        except Exception as exc:
            raise ConfigError(f"{self.source} raised {type(exc).__name__}: {exc}") from exc
        return config_from_mapping(data, source=self.source, environment=environment)


def load_loader(spec: str) -> Loader:
    """Import ``module:callable`` (the callable may be a dotted attribute path) as a :class:`Loader`."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ConfigError(
            f"--config-loader {spec!r}: expected module:callable, such as 'myapp.pool:load_config'"
        )
    try:
        target: object = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"--config-loader {spec!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(
                f"--config-loader {spec!r}: {module_name!r} has no attribute {attribute!r}"
            ) from None
    if not callable(target):
        raise ConfigError(f"--config-loader {spec!r}: {attribute!r} is not callable")
    return Loader(spec, target)


class LoaderPoller:
    """When to call a config loader again: about once a second, or less often when throttled.

    Pure bookkeeping with an injected clock, so the master's loop asks ``due(now)`` and tests step
    time. ``throttle`` is Ruby's ``ConfigLoaders::Throttled`` period, for loaders that are costly
    (a Redis or HTTP lookup); ``reset()`` makes the next check due at once (HUP).
    """

    def __init__(self, *, interval: float = 1.0, throttle: float = 0.0) -> None:
        if interval <= 0 or throttle < 0:
            raise ValueError("interval must be > 0 and throttle ≥ 0")
        self.period = max(interval, throttle)
        self._last: float | None = None

    def due(self, now: float) -> bool:
        """True when the loader should be called at ``now``."""
        if self._last is None or now < self._last:  # never called, or the clock went back
            return True
        return now - self._last >= self.period

    def record_call(self, now: float) -> None:
        """Note that the loader was called at ``now`` (whether it succeeded or not)."""
        self._last = now

    def next_at(self) -> float | None:
        """When the next call is due, or None if it is due now (never called, or reset)."""
        return None if self._last is None else self._last + self.period

    def reset(self) -> None:
        """Make the next ``due`` true at once."""
        self._last = None
