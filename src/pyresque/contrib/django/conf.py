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
        "JOB_TIMEOUT": 30,                         # any worker setting with a key (see below)
    }

The worker settings' keys come from their declarations (:mod:`pyresque.settings.worker`; the table
in docs/configuration.md lists them), each value checked as its kind requires. They beat the
environment and lose to the command line: the Django commands hand them on as the settings'
environment variables, replacing the process's own (:func:`worker_environment`).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyresque.errors import ConfigError
from pyresque.settings.declare import Setting
from pyresque.settings.worker import worker_declarations

# the keys of the connection (handed on as --redis and --namespace) and of the Django integration
OWN_KEYS = ("REDIS_URL", "NAMESPACE", "POOL", "ALLOW_MODULES", "JOBS_MODULE")


def _worker_keys() -> dict[str, Setting]:
    """The worker settings that ``settings.PYRESQUE`` may set, by key."""
    return {
        d.django: d
        for d in worker_declarations()
        if d.django is not None and d.django not in OWN_KEYS and d.env
    }


def known_keys() -> tuple[str, ...]:
    return (*OWN_KEYS, *_worker_keys())


@dataclass(frozen=True)
class PyresqueSettings:
    redis_url: str | None = None
    namespace: str | None = None
    pool_file: str | None = None  # a path (made absolute against the project's BASE_DIR)
    pool_mapping: Mapping[str, object] | None = None  # the config itself, as a file would hold it
    allow_modules: tuple[str, ...] = ()
    jobs_module: str = "jobs"
    # worker settings, (name, checked value), in declaration order
    worker: tuple[tuple[str, object], ...] = ()


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
    known = known_keys()
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ConfigError(
            f"settings.PYRESQUE: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    pool_file, pool_mapping = _pool(raw, base_dir)
    return PyresqueSettings(
        redis_url=_optional_str(raw, "REDIS_URL"),
        namespace=_optional_str(raw, "NAMESPACE"),
        pool_file=pool_file,
        pool_mapping=pool_mapping,
        allow_modules=_modules(raw),
        jobs_module=_optional_str(raw, "JOBS_MODULE") or "jobs",
        worker=_worker(raw),
    )


def _worker(raw: Mapping[str, object]) -> tuple[tuple[str, object], ...]:
    """The worker settings among the keys, each held to its kind's rules."""
    out: list[tuple[str, object]] = []
    for key, declared in _worker_keys().items():
        if key in raw:
            declared.kind.check(f"PYRESQUE[{key!r}]", raw[key])
            out.append((declared.name, raw[key]))
    return tuple(out)


def worker_environment(settings: PyresqueSettings, env: MutableMapping[str, str]) -> None:
    """Write the worker settings into ``env`` as their environment variables (the first each
    declares), replacing what was there: the layer above the environment, below the command
    line. A switch whose variable means on when set at all is removed to say off."""
    declared = {d.name: d for d in worker_declarations()}
    for name, value in settings.worker:
        variable = declared[name].env[0]
        text = variable.text_for(value)
        for other in declared[name].env:  # QUEUE must not outvote what QUEUES now says
            env.pop(other.name, None)
        if text is not None:
            env[variable.name] = text


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
