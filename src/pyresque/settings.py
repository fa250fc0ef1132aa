"""Worker settings: Resque's environment knobs and their defaults, as one frozen dataclass.

Precedence is stated once, in :func:`worker_settings`: defaults < environment < command line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from pyresque.errors import ConfigError
from pyresque.store.connection import url_from_env
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
        url or url_from_env(env), namespace or env.get("RESQUE_NAMESPACE") or DEFAULT_NAMESPACE
    )


@dataclass(frozen=True)
class WorkerSettings:
    queues: str = ""
    # Ruby's INTERVAL: longest wait between polls while idle; 0 means burst (exit when empty).
    interval: float = 5.0
    burst: bool = False
    fork_per_job: bool = True
    # TERM_CHILD: on TERM, let the running job finish for pre_shutdown_timeout, then raise
    # TermException in it and kill it term_timeout later. Unset: kill the job child at once.
    term_child: bool = False
    term_timeout: float = 4.0
    pre_shutdown_timeout: float = 0.0
    graceful_term: bool = False
    heartbeat_interval: float = 60.0
    prune_interval: float = 300.0
    # A job whose process dies unexpectedly this many times becomes a failure record.
    max_deliveries: int = 3
    verbose: int = 0
    # gc.freeze() before forking job children (keeps the worker's pages shared with them)
    gc_freeze: bool = True
    # leave after this many jobs (0: never), so a pool replaces a worker that slowly leaks
    max_jobs: int = 0
    namespace: str = DEFAULT_NAMESPACE
    redis_url: str = ""
    # per-job metrics (count, failures, run time per class per minute), added up by the worker and
    # written about once a second
    job_metrics: bool = True
    # job arguments may hold personal data: logs show a digest unless this is set
    log_args: bool = False
    # a job's time limit in seconds when its own decorator sets none (0: no limit)
    job_timeout: float = 0.0
    # a burst worker gives up after Redis has been unreachable this long (a cron job must end)
    burst_outage_timeout: float = 30.0
    # retries (through the delayed queue) of a failed job whose own decorator sets no policy
    retry_attempts: int = 0
    # fork mode: fork the next job's child ahead, while a job runs, and hand it its job over a
    # pipe (takes the fork off the job's path; see docs/design.md, "The warm child")
    warm_child: bool = False
    # prune dead workers itself: at start, as a Ruby worker does, and then about every heartbeat
    # interval while it runs (whichever worker finds Resque's prune lock free); a pool's workers
    # leave it to their master's janitor, which prunes every heartbeat interval (the pool sets it
    # False)
    prunes: bool = True


_FALSE = {"false", "0", "no", "off"}


def _fork_per_job(value: str) -> bool:
    """Ruby forks unless ``FORK_PER_JOB`` is ``false``; an empty or unknown value keeps forking."""
    return value.strip().lower() not in _FALSE


def _number(name: str, value: str) -> float:
    """A non-negative, finite number: ``nan`` or ``inf`` would reach ``select`` as a timeout."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{name}={value!r}: expected a number of seconds (0 or more)")
    return number


def _whole(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected a whole number (1 or more)") from None


def _text(name: str, value: str) -> str:
    return value


def _on(name: str, value: str) -> bool:
    return True


def _switch(value: str) -> bool:
    """On unless ``false``, ``0``, ``no`` or ``off``."""
    return value.strip().lower() not in _FALSE


# Resque's environment variables: (variable, setting, parse, only when non-empty). Where two set
# the same setting, the first one present wins (QUEUES over QUEUE, VVERBOSE over VERBOSE).
_ENVIRONMENT: tuple[tuple[str, str, Callable[[str, str], Any], bool], ...] = (
    ("QUEUES", "queues", _text, True),
    ("QUEUE", "queues", _text, True),
    ("INTERVAL", "interval", _number, False),
    ("FORK_PER_JOB", "fork_per_job", lambda _n, v: _fork_per_job(v), False),
    ("TERM_CHILD", "term_child", _on, False),  # Ruby: set at all, even to "", means on
    ("RESQUE_TERM_TIMEOUT", "term_timeout", _number, False),
    ("RESQUE_PRE_SHUTDOWN_TIMEOUT", "pre_shutdown_timeout", _number, False),
    ("GRACEFUL_TERM", "graceful_term", _on, True),
    ("RESQUE_HEARTBEAT_INTERVAL", "heartbeat_interval", _number, False),
    ("RESQUE_PRUNE_INTERVAL", "prune_interval", _number, False),
    ("RESQUE_MAX_DELIVERIES", "max_deliveries", _whole, False),
    ("RESQUE_MAX_JOBS_PER_WORKER", "max_jobs", lambda n, v: int(_number(n, v)), False),
    ("VVERBOSE", "verbose", lambda _n, _v: 2, True),
    ("VERBOSE", "verbose", lambda _n, _v: 1, True),
    ("RESQUE_NAMESPACE", "namespace", _text, True),
    ("REDIS_URL", "redis_url", _text, True),
    ("RESQUE_BURST_REDIS_TIMEOUT", "burst_outage_timeout", _number, False),
    ("RESQUE_JOB_TIMEOUT", "job_timeout", _number, False),
    ("PYRESQUE_RETRY_ATTEMPTS", "retry_attempts", lambda n, v: int(_number(n, v)), False),
    ("PYRESQUE_LOG_ARGS", "log_args", lambda _n, v: _switch(v), True),
    ("PYRESQUE_JOB_METRICS", "job_metrics", lambda _n, v: _switch(v), False),
    ("PYRESQUE_WARM_CHILD", "warm_child", lambda _n, v: _switch(v), True),
)


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings that Resque's environment variables set (only those present)."""
    out: dict[str, Any] = {}
    for name, setting, parse, non_empty in _ENVIRONMENT:
        value = env.get(name)
        if setting in out or value is None or (non_empty and not value):
            continue
        out[setting] = parse(name, value)
    if "interval" in out:
        out["burst"] = out["interval"] == 0
    return out


_SECONDS = (
    "interval",
    "term_timeout",
    "pre_shutdown_timeout",
    "heartbeat_interval",
    "prune_interval",
    "job_timeout",
    "burst_outage_timeout",
)
_COUNTS = ("max_deliveries", "max_jobs", "retry_attempts")


def _check_override(setting: str, value: Any) -> None:
    """An option's value is held to the rules of its environment variable: a number of seconds is
    finite and not negative (``--interval -1`` would reach ``select``), a count is whole."""
    if setting in _SECONDS:
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number < 0:
            raise ConfigError(f"{setting} {value!r}: expected a number of seconds (0 or more)")
    if setting in _COUNTS and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ConfigError(f"{setting} {value!r}: expected a whole number (0 or more)")


def worker_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> WorkerSettings:
    """Defaults < environment < ``overrides`` (the command line; None values are ignored)."""
    env = os.environ if env is None else env
    known = {f.name for f in fields(WorkerSettings)}
    merged = from_env(env)
    for key in overrides or {}:
        if key not in known:
            raise ConfigError(f"unknown worker setting {key!r}")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key, value in given.items():
        _check_override(key, value)
    merged.update(given)
    if "burst" not in given and "interval" in merged:
        # INTERVAL=0 means burst, whichever layer set the interval (--interval 5 beats INTERVAL=0)
        merged["burst"] = merged["interval"] == 0
    settings = replace(WorkerSettings(), **merged)
    if settings.max_deliveries < 1:
        raise ConfigError("RESQUE_MAX_DELIVERIES must be at least 1")
    if settings.heartbeat_interval < 1:
        # it is also the prune lock's EX in whole seconds, and Redis refuses EX 0
        raise ConfigError("RESQUE_HEARTBEAT_INTERVAL must be at least 1 (second)")
    if settings.prune_interval <= settings.heartbeat_interval + 1:
        # heartbeats are stamped in whole seconds: a shorter expiry prunes live workers
        raise ConfigError(
            f"RESQUE_PRUNE_INTERVAL ({settings.prune_interval:g}) must be above "
            f"RESQUE_HEARTBEAT_INTERVAL + 1 ({settings.heartbeat_interval + 1:g}), or live "
            "workers would be taken for dead"
        )
    return settings
