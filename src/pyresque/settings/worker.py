"""Worker settings: Resque's environment knobs, each declared once beside its typed field, and
:func:`worker_settings`, the one statement of their precedence."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from pyresque.errors import ConfigError
from pyresque.settings.declare import (
    COUNT,
    EVERY_COMMAND,
    SECONDS,
    SWITCH,
    TEXT,
    Env,
    Flag,
    Setting,
    declarations,
    setting,
)
from pyresque.store.connection import DEFAULT_URL
from pyresque.wire.keys import DEFAULT_NAMESPACE

_FALSE = {"false", "0", "no", "off"}


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


def _truncated(name: str, value: str) -> int:
    return int(_number(name, value))


def _text(_name: str, value: str) -> str:
    return value


def _on(_name: str, _value: str) -> bool:
    return True


def _switch(_name: str, value: str) -> bool:
    """On unless ``false``, ``0``, ``no`` or ``off`` (Ruby's FORK_PER_JOB rule: an empty or
    unknown value keeps it on)."""
    return value.strip().lower() not in _FALSE


def _level(level: int) -> Env:
    return Env("VVERBOSE" if level == 2 else "VERBOSE", lambda _n, _v: level, non_empty=True)


def _seconds_env(name: str) -> tuple[Env, ...]:
    return (Env(name, _number),)


_WORK = ("work",)
_POOL = ("pool",)


@dataclass(frozen=True)
class WorkerSettings:
    queues: str = setting(
        "",
        "queues to work, in priority order (`high,low`, `*`, globs, `!` exclusions)",
        TEXT,
        env=(Env("QUEUES", _text, non_empty=True), Env("QUEUE", _text, non_empty=True)),
        flags=(
            Flag(("--queues", "-q"), "queue list, e.g. high,low or '*' (default $QUEUES)", _WORK),
        ),
        shown="—",
    )
    interval: float = setting(
        5.0,
        "longest wait between polls while idle, for jobs pushed without a wake-up (Ruby's); "
        "0 means burst",
        SECONDS,
        env=_seconds_env("INTERVAL"),
        flags=(Flag(("--interval",), "longest idle poll (seconds)", _WORK, kind=SECONDS),),
        django="INTERVAL",
    )
    burst: bool = setting(
        False,
        "exit once the queues are empty",
        SWITCH,
        flags=(Flag(("--burst",), "exit once the queues are empty", _WORK, const=True),),
    )
    fork_per_job: bool = setting(
        True,
        "fork a child for each job; only `false`, `0`, `no` or `off` runs jobs in the worker",
        SWITCH,
        env=(Env("FORK_PER_JOB", _switch),),
        flags=(Flag(("--in-process",), "run jobs without forking", _WORK, const=False),),
        django="FORK_PER_JOB",
    )
    term_child: bool = setting(
        False,
        "on TERM, interrupt the running job after the pre-shutdown timeout (set at all, even "
        "empty, means on; unset: kill it at once)",
        SWITCH,
        env=(Env("TERM_CHILD", _on, presence=True),),
        django="TERM_CHILD",
        shown="off (on in a pool)",
    )
    term_timeout: float = setting(
        4.0,
        "seconds from the interrupt to SIGKILL",
        SECONDS,
        env=_seconds_env("RESQUE_TERM_TIMEOUT"),
        django="TERM_TIMEOUT",
    )
    pre_shutdown_timeout: float = setting(
        0.0,
        "seconds a running job may go on after TERM before it is interrupted",
        SECONDS,
        env=_seconds_env("RESQUE_PRE_SHUTDOWN_TIMEOUT"),
        django="PRE_SHUTDOWN_TIMEOUT",
    )
    graceful_term: bool = setting(
        False,
        "TERM lets the running job finish, as QUIT does (any non-empty value)",
        SWITCH,
        env=(Env("GRACEFUL_TERM", _on, non_empty=True, presence=True),),
        django="GRACEFUL_TERM",
    )
    heartbeat_interval: float = setting(
        60.0,
        "seconds between a worker's heartbeats (at least 1), see [guarantees](guarantees.md)",
        SECONDS,
        env=_seconds_env("RESQUE_HEARTBEAT_INTERVAL"),
        django="HEARTBEAT_INTERVAL",
    )
    prune_interval: float = setting(
        300.0,
        "seconds without a heartbeat before a worker is taken for dead (above the heartbeat "
        "interval + 1)",
        SECONDS,
        env=_seconds_env("RESQUE_PRUNE_INTERVAL"),
        django="PRUNE_INTERVAL",
    )
    max_deliveries: int = setting(
        3,
        "deliveries before a job that kills its process becomes a failure (at least 1)",
        COUNT,
        env=(Env("RESQUE_MAX_DELIVERIES", _whole),),
        django="MAX_DELIVERIES",
    )
    verbose: int = setting(
        0,
        "log level: 1 verbose, 2 debug",
        COUNT,
        env=(_level(2), _level(1)),
        flags=(Flag(("--verbose", "-v"), "more log lines (-vv: debug)", _WORK, count=True),),
    )
    gc_freeze: bool = setting(
        True,
        "gc.freeze() before forking, so that collections do not copy the shared pages",
        SWITCH,
        flags=(
            Flag(
                ("--no-gc-freeze",),
                "do not gc.freeze() before forking (for comparison)",
                _POOL,
                const=False,
            ),
        ),
    )
    max_jobs: int = setting(
        0,
        "leave after this many jobs (0: never), so that a pool replaces a worker that leaks",
        COUNT,
        env=(Env("RESQUE_MAX_JOBS_PER_WORKER", _truncated),),
        flags=(
            Flag(
                ("--max-jobs-per-worker",),
                "replace a worker after N jobs",
                _POOL,
                kind=COUNT,
                metavar="N",
            ),
        ),
        django="MAX_JOBS_PER_WORKER",
    )
    namespace: str = setting(
        DEFAULT_NAMESPACE,
        "key namespace",
        TEXT,
        env=(Env("RESQUE_NAMESPACE", _text, non_empty=True),),
        flags=(
            Flag(
                ("--namespace",),
                f"key namespace (default: $RESQUE_NAMESPACE or {DEFAULT_NAMESPACE})",
                (EVERY_COMMAND,),
            ),
        ),
        django="NAMESPACE",
    )
    redis_url: str = setting(
        "",
        "`redis://`, `rediss://` (TLS), `unix://`, `redis+sentinel://`, `redis+cluster://`",
        TEXT,
        env=(Env("REDIS_URL", _text, non_empty=True),),
        flags=(
            Flag(
                ("--redis",),
                f"Redis URL (default: $REDIS_URL or {DEFAULT_URL})",
                (EVERY_COMMAND,),
                metavar="URL",
            ),
        ),
        django="REDIS_URL",
        shown=f"`{DEFAULT_URL}`",
    )
    job_metrics: bool = setting(
        True,
        "per-job metrics (count, failures, run time per class per minute), added up by each "
        "worker and written about once a second",
        SWITCH,
        env=(Env("PYRESQUE_JOB_METRICS", _switch),),
        django="JOB_METRICS",
    )
    log_args: bool = setting(
        False,
        "show job arguments (cut to 500 characters) in log lines instead of a digest",
        SWITCH,
        env=(Env("PYRESQUE_LOG_ARGS", _switch, non_empty=True),),
        django="LOG_ARGS",
    )
    job_timeout: float = setting(
        0.0,
        "a job's time limit in seconds when its own decorator sets none (0: none)",
        SECONDS,
        env=_seconds_env("RESQUE_JOB_TIMEOUT"),
        django="JOB_TIMEOUT",
    )
    burst_outage_timeout: float = setting(
        30.0,
        "a burst worker gives up (exit 1) after Redis has been unreachable this long",
        SECONDS,
        env=_seconds_env("RESQUE_BURST_REDIS_TIMEOUT"),
        django="BURST_REDIS_TIMEOUT",
    )
    retry_attempts: int = setting(
        0,
        "retries (through the delayed queue) of a failed job whose decorator sets no policy",
        COUNT,
        env=(Env("PYRESQUE_RETRY_ATTEMPTS", _truncated),),
        django="RETRY_ATTEMPTS",
    )
    warm_child: bool = setting(
        False,
        "fork each job's child ahead, while the previous job runs, and hand it its job over a "
        "pipe, see [design](design.md#the-warm-child---warm-child-pyresque_warm_child1)",
        SWITCH,
        env=(Env("PYRESQUE_WARM_CHILD", _switch, non_empty=True),),
        flags=(
            Flag(
                ("--warm-child",),
                "fork each job's child ahead, while the previous job runs (PYRESQUE_WARM_CHILD)",
                ("work", "pool"),
                const=True,
            ),
        ),
        django="WARM_CHILD",
    )
    prunes: bool = setting(
        True,
        "prune dead workers itself, at start and about every heartbeat interval (a pool's "
        "workers leave it to their master's janitor)",
        SWITCH,
    )


# the declarations, made once: they are read on every resolution of settings
_DECLARED: tuple[Setting, ...] = tuple(d for d, _default in declarations(WorkerSettings))
_BY_NAME = MappingProxyType({d.name: d for d in _DECLARED})


def worker_declarations() -> tuple[Setting, ...]:
    """The declarations of :class:`WorkerSettings`, in field order."""
    return _DECLARED


def read_env(declared: Setting, env: Mapping[str, str]) -> Any:
    """The value of the first of ``declared``'s variables that is set (None when none is)."""
    for variable in declared.env:
        value = env.get(variable.name)
        if value is not None and (value or not variable.non_empty):
            return variable.read(variable.name, value)
    return None


def declared(name: str) -> Setting:
    """The declaration of one worker setting."""
    return _BY_NAME[name]


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings that Resque's environment variables set (only those present). Where two
    variables set one setting, the first present wins (QUEUES over QUEUE, VVERBOSE over VERBOSE)."""
    out: dict[str, Any] = {}
    for declared in worker_declarations():
        value = read_env(declared, env)
        if value is not None:
            out[declared.name] = value
    if "interval" in out:
        out["burst"] = out["interval"] == 0
    return out


def worker_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> WorkerSettings:
    """Defaults < environment < ``overrides`` (the command line; None values are ignored).

    ``settings.PYRESQUE`` sits between the last two: the Django commands write it into the
    environment the worker reads (:func:`pyresque.contrib.django.conf.worker_environment`). An
    override is held to the rules of its environment variable: a number of seconds is finite
    and not negative (``--interval -1`` would reach ``select``), a count is whole.
    """
    env = os.environ if env is None else env
    merged = from_env(env)
    for key in overrides or {}:
        if key not in _BY_NAME:
            raise ConfigError(f"unknown worker setting {key!r}")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key, value in given.items():
        _BY_NAME[key].kind.check(key, value)
    merged.update(given)
    if "burst" not in given and "interval" in merged:
        # INTERVAL=0 means burst, whichever layer set the interval (--interval 5 beats INTERVAL=0)
        merged["burst"] = merged["interval"] == 0
    return _checked(replace(WorkerSettings(), **merged))


def _checked(settings: WorkerSettings) -> WorkerSettings:
    """The rules between settings, whichever layers set them."""
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
