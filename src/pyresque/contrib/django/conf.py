"""``settings.PYRESQUE``: where the jobs live, the pool's config and which job modules to allow.

Read once into a frozen dataclass; anything unknown or of the wrong type is a :class:`ConfigError`
naming the key, so a typo cannot silently run a pool against the wrong Redis. Pure: it takes the
mapping and the project's base directory, so it is tested without Django.

::

    PYRESQUE = {
        "REDIS_URL": "redis://localhost:6379/0",   # default $REDIS_URL
        "NAMESPACE": "resque",                     # default $RESQUE_NAMESPACE or resque
        "POOL": "config/resque-pool.yml",          # or {"mail": 2, "default": 1}
        "ALLOW_MODULES": ["myapp.tasks"],          # payloads may name callables under these
        "JOBS_MODULE": "jobs",                     # imported from every installed app
    }
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyresque.errors import ConfigError

KNOWN_KEYS = ("REDIS_URL", "NAMESPACE", "POOL", "ALLOW_MODULES", "JOBS_MODULE")


@dataclass(frozen=True)
class PyresqueSettings:
    redis_url: str | None = None
    namespace: str | None = None
    pool_file: str | None = None  # a path (made absolute against the project's BASE_DIR)
    pool_mapping: Mapping[str, object] | None = None  # the config itself, as a file would hold it
    allow_modules: tuple[str, ...] = ()
    jobs_module: str = "jobs"


def _optional_str(raw: Mapping[str, object], key: str) -> str | None:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and value):
        return value
    raise ConfigError(f"PYRESQUE[{key!r}]: expected a non-empty string, got {value!r}")


def _pool(
    raw: Mapping[str, object], base_dir: Path | None
) -> tuple[str | None, Mapping[str, object] | None]:
    value = raw.get("POOL")
    if value is None:
        return None, None
    if isinstance(value, (str, Path)) and str(value):
        path = Path(value)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return str(path), None
    if isinstance(value, Mapping):
        return None, dict(value)
    raise ConfigError(
        f"PYRESQUE['POOL']: expected a config file path or a mapping of queues to counts, got {value!r}"
    )


def _modules(raw: Mapping[str, object]) -> tuple[str, ...]:
    value = raw.get("ALLOW_MODULES", ())
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(
            f"PYRESQUE['ALLOW_MODULES']: expected a list of module names, got {value!r}"
        )
    if not all(isinstance(m, str) and m for m in value):
        raise ConfigError(
            f"PYRESQUE['ALLOW_MODULES']: every entry must be a module name: {value!r}"
        )
    return tuple(value)


def parse_settings(raw: object, base_dir: Path | None = None) -> PyresqueSettings:
    """``settings.PYRESQUE`` (None when the project has none) as :class:`PyresqueSettings`."""
    if raw is None:
        return PyresqueSettings()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"settings.PYRESQUE: expected a dict, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"settings.PYRESQUE: unknown key(s) {', '.join(unknown)}; known: {', '.join(KNOWN_KEYS)}"
        )
    pool_file, pool_mapping = _pool(raw, base_dir)
    return PyresqueSettings(
        redis_url=_optional_str(raw, "REDIS_URL"),
        namespace=_optional_str(raw, "NAMESPACE"),
        pool_file=pool_file,
        pool_mapping=pool_mapping,
        allow_modules=_modules(raw),
        jobs_module=_optional_str(raw, "JOBS_MODULE") or "jobs",
    )


def _given(argv: Sequence[str], *names: str) -> bool:
    return any(a == n or a.startswith(n + "=") for a in argv for n in names)


def pool_argv(settings: PyresqueSettings, given: Sequence[str]) -> list[str]:
    """The pool's command line: the settings as options, then what the operator typed (which wins:
    for single-valued options argparse keeps the last; a config file or loader given on the command
    line replaces the settings' pool config)."""
    argv = connection_argv(settings)
    if not _given(given, "-c", "--config", "--config-loader"):
        if settings.pool_file is not None:
            argv += ["--config", settings.pool_file]
        elif settings.pool_mapping is not None:
            argv += ["--config-loader", "pyresque.contrib.django.conf:pool_from_settings"]
    return [*argv, *given]


def connection_argv(settings: PyresqueSettings) -> list[str]:
    """``--redis``, ``--namespace`` and ``--allow-module`` options from the settings."""
    argv: list[str] = []
    if settings.redis_url:
        argv += ["--redis", settings.redis_url]
    if settings.namespace:
        argv += ["--namespace", settings.namespace]
    for module in settings.allow_modules:
        argv += ["--allow-module", module]
    return argv


def current() -> PyresqueSettings:
    """The running project's settings (Django must be set up)."""
    from django.conf import settings

    base_dir = getattr(settings, "BASE_DIR", None)
    return parse_settings(
        getattr(settings, "PYRESQUE", None), Path(base_dir) if base_dir is not None else None
    )


def pool_from_settings(environment: str | None) -> Mapping[str, object]:
    """The pool config loader behind ``"POOL": {...}`` (``--config-loader``)."""
    return current().pool_mapping or {}
