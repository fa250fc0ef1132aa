"""``pyresque work``: one worker, its settings from the environment and its flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import redis

from pyresque.jobs.apps import app_modules, import_apps, warn_if_nothing_to_run
from pyresque.jobs.client import configure
from pyresque.jobs.registry import default_registry
from pyresque.logs import setup_worker_logging
from pyresque.settings import worker_settings
from pyresque.settings.options import add_setting_flags, setting_overrides
from pyresque.store.connection import redact, refusal
from pyresque.store.operations import Store
from pyresque.wire.keys import Keys
from pyresque.worker.queues import QueueSelector


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, "work")
    parser.add_argument("--app", "-a", action="append", help="module to import (repeatable)")
    parser.add_argument(
        "--allow-module",
        action="append",
        metavar="PREFIX",
        help="let payloads name jobs by import path under PREFIX (repeatable)",
    )
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    parser.add_argument(
        "--appname", default=None, help="app name in log lines (default: the directory's name)"
    )


def run(args: argparse.Namespace) -> int:
    from pyresque.worker.loop import Worker

    connection = args.connection
    settings = worker_settings(
        overrides={
            **setting_overrides(args, "work"),
            "redis_url": connection.redis_url,
            "namespace": connection.namespace,
        }
    )
    setup_worker_logging(args.appname or Path.cwd().name, args.log_json, settings.verbose)
    default_registry().allow_modules(args.allow_module or ())
    apps = app_modules(args.app)
    import_apps(apps)
    warn_if_nothing_to_run(apps, args.allow_module)
    selector = QueueSelector.parse(settings.queues)
    # one client, for the worker's store and for the jobs' pyresque.enqueue
    client = configure(connection.redis_url, namespace=connection.namespace)
    store = Store(client.redis, Keys(connection.namespace))
    _stop_if_refused(store)
    worker = Worker(store, selector, settings, redis_label=redact(connection.redis_url))
    return worker.work()


def _stop_if_refused(store: Store) -> None:
    """One round trip before the worker's loop: a refusal (password, database number) ends the command
    now, while an outage is left to the worker, which waits for Redis to come back."""
    try:
        store.server_time()
    except (redis.RedisError, OSError) as exc:
        if refusal(exc) is not None:
            raise
