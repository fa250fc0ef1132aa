"""``pyresque pool``, also ``resque-pool``: its options as declared, preload, logging, daemon, pidfile,
lock, and the master."""

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
from pyresque.pool.clients import PoolClients
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
from pyresque.settings import WorkerSettings, worker_settings
from pyresque.settings.options import add_flags, add_setting_flags, checked, setting_overrides
from pyresque.settings.pool import POOL_OPTIONS
from pyresque.store.connection import redact

log = logging.getLogger("pyresque.pool")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The pool's own options, then the workers' settings it takes (the connection's included)."""
    add_flags(parser, POOL_OPTIONS)
    add_setting_flags(parser, "pool")


def main(argv: Sequence[str] | None = None, prog: str = "resque-pool") -> int:
    """``resque-pool``: the ``pool`` command as a program of its own."""
    from pyresque.cli.main import run_program

    return run_program("pool", argv, prog)


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


def make_governor(
    args: argparse.Namespace, options: PoolOptions, clients: PoolClients
) -> MemoryGovernor:
    limit, headroom = memory_room(args)
    policy = sizing_policy(args, limit, headroom)
    log.info(
        "memory limit %s (%s), headroom %s",
        format_mb(limit.bytes),
        limit.source,
        format_mb(headroom),
    )
    store = clients.queue_reads

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


def run(args: argparse.Namespace) -> int:
    """Check everything that can be checked, then become the master (or print advice)."""
    if os.getcwd() not in sys.path:  # the app and a config loader live in the working directory
        sys.path.insert(0, os.getcwd())
    checked(args, POOL_OPTIONS)
    settings = pool_worker_settings(args)
    options = pool_options(args, settings)
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
    clients = PoolClients(options.redis_url, options.namespace)
    with shared_lock(args.lock), pidfile(args.pidfile):
        governor = make_governor(args, options, clients)
        poller = LoaderPoller(throttle=args.config_loader_throttle) if args.config_loader else None
        master = Master(
            options, load, hooks, settings, poller=poller, governor=governor, clients=clients
        )
        master.companions += companions(args, options, master)
        return master.run()


def companions(args: argparse.Namespace, options: PoolOptions, master: Master) -> list[Companion]:
    """The scheduler (unless ``--no-scheduler``, on a client of its own) and the state publisher
    (with ``/metrics`` on ``--metrics-port``)."""
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
    publisher = PoolPublisher(master.clients.queue_reads, metrics_port=args.metrics_port)
    out.append(PublisherCompanion(publisher, master.view))
    return out


def pool_options(args: argparse.Namespace, settings: WorkerSettings) -> PoolOptions:
    """The master's options, from its command line and the workers' settings."""
    connection = args.connection
    return PoolOptions(
        app_name=args.appname or Path.cwd().name,
        redis_url=connection.redis_url,
        redis_label=redact(connection.redis_url),
        namespace=connection.namespace,
        shutdown_timeout=args.shutdown_timeout,
        kill_timeout=args.kill_timeout,
        spawn_delay=args.spawn_delay / 1000.0,
        single_process_group=args.single_process_group,
        term_mode=term_mode(args),
        handle_winch=args.handle_winch or args.daemon,
        preload=not args.no_preload,
        apps=tuple(app_modules(args.app)),
        gc_freeze=settings.gc_freeze,
        stdout_path=args.stdout if args.daemon else None,
        stderr_path=(args.stderr or args.stdout) if args.daemon else None,
    )


def pool_worker_settings(args: argparse.Namespace) -> WorkerSettings:
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
            **setting_overrides(args, "pool"),
            "namespace": args.connection.namespace,
            "redis_url": args.connection.redis_url,
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
