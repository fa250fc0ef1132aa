"""``resque-pool`` / ``pyresque pool``: options, preload, logging, daemon, pidfile, lock."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pyresque.errors import ConfigError
from pyresque.jobs.apps import app_constants, app_modules, import_apps, warn_if_nothing_to_run
from pyresque.jobs.registry import default_registry
from pyresque.logs import setup_pool_logging
from pyresque.pool.companions import Companion, PublisherCompanion, SchedulerCompanion
from pyresque.pool.config import LoaderPoller
from pyresque.pool.daemon import daemonize, pidfile, shared_lock
from pyresque.pool.governor import MemoryGovernor
from pyresque.pool.hooks import PoolHooks, default_pool_hooks
from pyresque.pool.master import Master
from pyresque.pool.memory import MemoryLimit, detect_limit, format_mb, parse_size
from pyresque.pool.options import PoolOptions, TermMode
from pyresque.pool.sizing import SizingPolicy, default_headroom
from pyresque.pool.source import config_source
from pyresque.settings import WorkerSettings, connection_settings, worker_settings
from pyresque.store.connection import connect, redact, validate_url
from pyresque.store.operations import Store
from pyresque.wire.keys import DEFAULT_NAMESPACE, Keys
from pyresque.wire.redaction import scrub_argv

log = logging.getLogger("pyresque.pool")

QUEUE_DEPTH_TIMEOUT = 2.0


def build_parser(prog: str = "resque-pool") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Pre-forking Resque worker pool")
    _add_config_options(p)
    _add_process_options(p)
    _add_shutdown_options(p)
    _add_worker_options(p)
    _add_memory_options(p.add_argument_group("memory"))
    p.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    p.add_argument(
        "--advise",
        action="store_true",
        help="load the app, measure a worker, print how many fit the memory limit",
    )
    p.add_argument("--advise-job", default="", metavar="CLASS", help="with --advise: a sample job")
    p.add_argument("--advise-args", default="[]", metavar="JSON", help="its arguments (a list)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--redis", metavar="URL", help="Redis URL (default $REDIS_URL)")
    p.add_argument(
        "--namespace", help=f"key namespace (default $RESQUE_NAMESPACE or {DEFAULT_NAMESPACE})"
    )
    return p


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """Where the config and the app come from."""
    p.add_argument(
        "-c",
        "--config",
        help="config file (default: $RESQUE_POOL_CONFIG, resque-pool.yml, config/resque-pool.yml)",
    )
    p.add_argument("-a", "--appname", default=None, help="app name in titles and log lines")
    p.add_argument("-E", "--environment", default=None, help="config section to use")
    p.add_argument(
        "--app",
        action="append",
        metavar="MODULE",
        help="module to preload in the master (repeatable; or $PYRESQUE_APP)",
    )
    p.add_argument(
        "--allow-module",
        action="append",
        metavar="PREFIX",
        help="let payloads name jobs by import path under PREFIX",
    )
    p.add_argument(
        "--config-loader",
        metavar="MODULE:CALLABLE",
        help="callable(environment) -> {queues: count}, polled about once a second",
    )
    p.add_argument(
        "--config-loader-throttle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="call the config loader at most this often",
    )


def _add_process_options(p: argparse.ArgumentParser) -> None:
    """The master as a process: pidfile, lock, daemon, spawning."""
    p.add_argument("-p", "--pidfile")
    p.add_argument("--lock", metavar="FILE", help="hold a shared lock on FILE while running")
    p.add_argument("-d", "--daemon", action="store_true", help="run in the background")
    p.add_argument("-o", "--stdout", help="with --daemon: log file for stdout")
    p.add_argument("-e", "--stderr", help="with --daemon: log file for stderr")
    p.add_argument(
        "-s",
        "--spawn-delay",
        type=float,
        default=0.0,
        metavar="MS",
        help="milliseconds between spawning missing workers",
    )
    p.add_argument(
        "--single-process-group",
        action="store_true",
        help="keep workers in the master's process group",
    )


def _add_shutdown_options(p: argparse.ArgumentParser) -> None:
    """What TERM means and how long a shutdown may take."""
    term = p.add_mutually_exclusive_group()
    term.add_argument(
        "--term-graceful-wait",
        action="store_true",
        help="TERM acts as QUIT: wait for every job to finish",
    )
    term.add_argument(
        "--term-graceful", action="store_true", help="TERM: QUIT the workers and exit at once"
    )
    term.add_argument(
        "--term-immediate", action="store_true", help="TERM: TERM the workers and exit at once"
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=25.0,
        metavar="SECONDS",
        help="TERM/INT: everything is gone before this (default 25, under the platforms' 30)",
    )
    p.add_argument(
        "--kill-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="kill a stopping worker after this long (default 60)",
    )


def _add_worker_options(p: argparse.ArgumentParser) -> None:
    """How workers are made and replaced."""
    p.add_argument(
        "--handle-winch",
        action="store_true",
        help="WINCH stops every worker until HUP (implied by --daemon)",
    )
    p.add_argument(
        "--no-preload",
        action="store_true",
        help="import the app in each worker instead of once in the master",
    )
    p.add_argument(
        "--no-scheduler",
        action="store_true",
        help="do not run the scheduler (delayed jobs, retries, recurring schedules) in this pool",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus /metrics on this port (needs the web extra)",
    )
    p.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="do not gc.freeze() before forking (for comparison)",
    )
    p.add_argument(
        "--warm-child",
        action="store_true",
        help="workers fork each job's child ahead, while the previous job runs (PYRESQUE_WARM_CHILD)",
    )
    p.add_argument(
        "--max-jobs-per-worker",
        type=int,
        default=None,
        metavar="N",
        help="replace a worker after N jobs",
    )


def _add_memory_options(p: argparse._ArgumentGroup) -> None:
    """The memory limit, auto sizing and retirements."""
    p.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="the pool's memory limit, e.g. 512M (default: $RESQUE_POOL_MEMORY_LIMIT, "
        "the cgroup's limit, else physical memory)",
    )
    p.add_argument(
        "--memory-headroom",
        metavar="SIZE",
        help="memory kept free under the limit (default 10%% of it, at least 32M)",
    )
    p.add_argument("--min-workers", type=int, default=1, help="least workers per auto group")
    p.add_argument(
        "--max-workers",
        type=int,
        default=None,
        help="most workers per auto group (default 8 per core)",
    )
    p.add_argument(
        "--max-worker-memory",
        metavar="SIZE",
        help="retire a worker (after its job) whose USS, job included, exceeds this",
    )
    p.add_argument(
        "--memory-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how often to measure USS/PSS of every process (default 5; a cheap RSS check runs every second and measures at once near the limit)",
    )
    p.add_argument(
        "--metrics-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often to log the sample# metrics line (0: never; default 60)",
    )


def term_mode(args: argparse.Namespace) -> TermMode:
    if args.term_graceful_wait:
        return TermMode.GRACEFUL_WAIT
    if args.term_graceful:
        return TermMode.GRACEFUL
    if args.term_immediate:
        return TermMode.IMMEDIATE
    return TermMode.DEADLINE


def memory_room(args: argparse.Namespace) -> tuple[MemoryLimit, int]:
    """The memory limit (option, environment, cgroup, else physical) and the headroom under it."""
    limit = detect_limit(args.memory_limit)
    if args.memory_headroom:
        return limit, parse_size(args.memory_headroom, "--memory-headroom")
    return limit, default_headroom(limit.bytes)


def sizing_policy(args: argparse.Namespace, limit: MemoryLimit, headroom: int) -> SizingPolicy:
    """How ``auto`` and ``--advise`` size the pool: the room, and the bounds on a group."""
    if args.min_workers < 0 or (
        args.max_workers is not None and args.max_workers < args.min_workers
    ):
        raise ConfigError("--min-workers must be ≥ 0 and --max-workers ≥ --min-workers")
    # physical memory alone would allow absurd counts on a big machine: cap auto by cores too
    max_workers = args.max_workers or 8 * (os.cpu_count() or 1)
    return SizingPolicy(limit.bytes, headroom, args.min_workers, max_workers)


def make_governor(args: argparse.Namespace, options: PoolOptions) -> MemoryGovernor:
    limit, headroom = memory_room(args)
    policy = sizing_policy(args, limit, headroom)
    log.info(
        "memory limit %s (%s), headroom %s",
        format_mb(limit.bytes),
        limit.source,
        format_mb(headroom),
    )
    # bounded: a Redis that does not answer must not hold up the master's loop for the metrics
    store = Store(connect(options.redis_url), Keys(options.namespace)).bounded(QUEUE_DEPTH_TIMEOUT)

    def queue_depths() -> dict[str, int]:
        return store.queue_sizes(store.queue_names())

    return MemoryGovernor(
        limit,
        policy,
        interval=args.memory_interval,
        metrics_interval=args.metrics_interval,
        max_worker_memory=(
            parse_size(args.max_worker_memory, "--max-worker-memory")
            if args.max_worker_memory
            else None
        ),
        app_name=options.app_name,
        queue_depths=queue_depths,
    )


def main(argv: Sequence[str] | None = None, prog: str = "resque-pool") -> int:
    scrub_argv()  # first: a password in the command line is readable by every user of the host
    args = build_parser(prog).parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Check everything that can be checked, then become the master (or print advice)."""
    if os.getcwd() not in sys.path:  # the app and a config loader live in the working directory
        sys.path.insert(0, os.getcwd())
    options = pool_options(args)
    settings = pool_worker_settings(args, options)
    constants = app_constants(options.apps) if options.preload else None
    load = config_source(args.config, args.environment, args.config_loader, constants=constants)
    load()  # a broken config fails here, before anything is forked
    if args.daemon:
        daemonize(args.stdout, args.stderr)
    setup_pool_logging(options.app_name, args.log_json, args.verbose)
    hooks = prepare_master(args, options)
    warn_if_nothing_to_run(options.apps, args.allow_module)
    if args.advise:
        print(advice(args, hooks))
        return 0
    warn_about_timeouts(settings, options)
    with shared_lock(args.lock), pidfile(args.pidfile):
        governor = make_governor(args, options)
        poller = LoaderPoller(throttle=args.config_loader_throttle) if args.config_loader else None
        master = Master(options, load, hooks, settings, poller=poller, governor=governor)
        master.companions += companions(args, options, master)
        return master.run()


def companions(args: argparse.Namespace, options: PoolOptions, master: Master) -> list[Companion]:
    """The scheduler (unless ``--no-scheduler``) and the state publisher (with ``/metrics`` on
    ``--metrics-port``), each on a connection of its own."""
    from pyresque.pool.publisher import PoolPublisher
    from pyresque.scheduler.service import scheduler_for

    out: list[Companion] = []
    if not args.no_scheduler:
        scheduler = scheduler_for(
            options.redis_url,
            options.namespace,
            environment=args.environment,
            registry=default_registry(),
        )
        out.append(SchedulerCompanion(scheduler))
    store = Store(connect(options.redis_url), Keys(options.namespace)).bounded(QUEUE_DEPTH_TIMEOUT)
    publisher = PoolPublisher(store, metrics_port=args.metrics_port)
    out.append(PublisherCompanion(publisher, master.view))
    return out


def pool_options(args: argparse.Namespace) -> PoolOptions:
    """The master's options, from the command line and the environment."""
    connection = connection_settings(args.redis, args.namespace)
    redis_url, namespace = connection.redis_url, connection.namespace
    validate_url(redis_url, "--redis" if args.redis else "REDIS_URL")
    return PoolOptions(
        app_name=args.appname or Path.cwd().name,
        redis_url=redis_url,
        redis_label=redact(redis_url),
        namespace=namespace,
        shutdown_timeout=args.shutdown_timeout,
        kill_timeout=args.kill_timeout,
        spawn_delay=args.spawn_delay / 1000.0,
        single_process_group=args.single_process_group,
        term_mode=term_mode(args),
        handle_winch=args.handle_winch or args.daemon,
        preload=not args.no_preload,
        apps=tuple(app_modules(args.app)),
        gc_freeze=not args.no_gc_freeze,
        stdout_path=args.stdout if args.daemon else None,
        stderr_path=(args.stderr or args.stdout) if args.daemon else None,
    )


def pool_worker_settings(args: argparse.Namespace, options: PoolOptions) -> WorkerSettings:
    """The workers' settings. Pool workers interrupt their job on TERM (TERM_CHILD) unless told
    otherwise, so that a shutdown fits in the platform's grace period with every job put back.
    They do not prune dead workers: the master's janitor prunes every heartbeat interval (and
    once at its start, before the first fork), and a worker's own prune cost it ~0.4 MB of private
    memory."""
    env = dict(os.environ)
    env.setdefault("TERM_CHILD", "1")
    return worker_settings(
        env,
        {
            "namespace": options.namespace,
            "redis_url": options.redis_url,
            "gc_freeze": options.gc_freeze,
            "max_jobs": args.max_jobs_per_worker,
            "warm_child": True if args.warm_child else None,
            "prunes": False,
        },
    )


def prepare_master(args: argparse.Namespace, options: PoolOptions) -> PoolHooks:
    """Allow job modules, preload the app, run the ``setup`` hooks; returns the pool's hooks."""
    default_registry().allow_modules(args.allow_module or ())
    if options.preload:
        import_apps(options.apps)
    hooks = default_pool_hooks()
    hooks.run_logged("setup")
    return hooks


def advice(args: argparse.Namespace, hooks: PoolHooks) -> str:
    """``--advise``: measure a worker and say how many fit."""
    from pyresque.pool.advise import advise

    limit, headroom = memory_room(args)
    return advise(
        limit,
        headroom,
        hooks,
        default_registry(),
        sizing_policy(args, limit, headroom),
        job=args.advise_job,
        job_args=args.advise_args,
    ).report()


def warn_about_timeouts(settings: WorkerSettings, options: PoolOptions) -> None:
    if settings.pre_shutdown_timeout + settings.term_timeout >= options.shutdown_timeout:
        log.warning(
            "RESQUE_PRE_SHUTDOWN_TIMEOUT + RESQUE_TERM_TIMEOUT (%.1fs) is not below "
            "--shutdown-timeout (%.1fs): jobs may be killed instead of interrupted",
            settings.pre_shutdown_timeout + settings.term_timeout,
            options.shutdown_timeout,
        )
