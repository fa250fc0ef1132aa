"""Worker settings: Resque's environment knobs and their defaults, as one frozen dataclass.

Precedence is stated once, in :func:`worker_settings`: defaults < environment < command line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from pyresque.connection import url_from_env
from pyresque.errors import ConfigError
from pyresque.keys import DEFAULT_NAMESPACE


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
    # per-job metrics (count, failures, run time per class per minute) in the acknowledging call
    job_metrics: bool = True
    # job arguments may hold personal data: logs show a digest unless this is set
    log_args: bool = False
    # a job's time limit in seconds when its own decorator sets none (0: no limit)
    job_timeout: float = 0.0
    # a burst worker gives up after Redis has been unreachable this long (a cron job must end)
    burst_outage_timeout: float = 30.0


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


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings that Resque's environment variables set (only those present)."""
    out: dict[str, Any] = {}
    queues = env.get("QUEUES") or env.get("QUEUE")
    if queues:
        out["queues"] = queues
    if "INTERVAL" in env:
        out["interval"] = _number("INTERVAL", env["INTERVAL"])
        out["burst"] = out["interval"] == 0
    if "FORK_PER_JOB" in env:
        out["fork_per_job"] = _fork_per_job(env["FORK_PER_JOB"])
    if "TERM_CHILD" in env:  # Ruby: set at all, even to "", means on
        out["term_child"] = True
    if "RESQUE_TERM_TIMEOUT" in env:
        out["term_timeout"] = _number("RESQUE_TERM_TIMEOUT", env["RESQUE_TERM_TIMEOUT"])
    if "RESQUE_PRE_SHUTDOWN_TIMEOUT" in env:
        out["pre_shutdown_timeout"] = _number(
            "RESQUE_PRE_SHUTDOWN_TIMEOUT", env["RESQUE_PRE_SHUTDOWN_TIMEOUT"]
        )
    if env.get("GRACEFUL_TERM"):
        out["graceful_term"] = True
    if "RESQUE_HEARTBEAT_INTERVAL" in env:
        out["heartbeat_interval"] = _number(
            "RESQUE_HEARTBEAT_INTERVAL", env["RESQUE_HEARTBEAT_INTERVAL"]
        )
    if "RESQUE_PRUNE_INTERVAL" in env:
        out["prune_interval"] = _number("RESQUE_PRUNE_INTERVAL", env["RESQUE_PRUNE_INTERVAL"])
    if "RESQUE_MAX_DELIVERIES" in env:
        value = env["RESQUE_MAX_DELIVERIES"]
        try:
            out["max_deliveries"] = int(value)
        except ValueError:
            raise ConfigError(
                f"RESQUE_MAX_DELIVERIES={value!r}: expected a whole number (1 or more)"
            ) from None
    if "RESQUE_MAX_JOBS_PER_WORKER" in env:
        out["max_jobs"] = int(
            _number("RESQUE_MAX_JOBS_PER_WORKER", env["RESQUE_MAX_JOBS_PER_WORKER"])
        )
    if "RESQUE_BURST_REDIS_TIMEOUT" in env:
        out["burst_outage_timeout"] = _number(
            "RESQUE_BURST_REDIS_TIMEOUT", env["RESQUE_BURST_REDIS_TIMEOUT"]
        )
    if "RESQUE_JOB_TIMEOUT" in env:
        out["job_timeout"] = _number("RESQUE_JOB_TIMEOUT", env["RESQUE_JOB_TIMEOUT"])
    if env.get("PYRESQUE_LOG_ARGS"):
        out["log_args"] = env["PYRESQUE_LOG_ARGS"].strip().lower() not in _FALSE
    if "PYRESQUE_JOB_METRICS" in env:
        out["job_metrics"] = env["PYRESQUE_JOB_METRICS"].strip().lower() not in _FALSE
    if env.get("VVERBOSE"):
        out["verbose"] = 2
    elif env.get("VERBOSE"):
        out["verbose"] = 1
    if env.get("RESQUE_NAMESPACE"):
        out["namespace"] = env["RESQUE_NAMESPACE"]
    if env.get("REDIS_URL"):
        out["redis_url"] = env["REDIS_URL"]
    return out


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
    return settings
