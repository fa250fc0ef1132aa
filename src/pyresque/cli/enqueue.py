"""``pyresque enqueue``: push a job now, or delay it with ``--at``/``--in``."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from datetime import datetime

from pyresque.cli.common import json_arg, store_for
from pyresque.errors import ConfigError, UnknownJobClass
from pyresque.jobs.apps import app_modules, import_apps
from pyresque.jobs.client import check_queue_name
from pyresque.jobs.registry import default_registry
from pyresque.settings.options import add_connection_flags
from pyresque.wire import protocol


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_flags(parser)
    parser.add_argument(
        "--queue", "-q", help="the queue (default: the one the job names, with --app)"
    )
    parser.add_argument(
        "--app", "-a", action="append", help="module that registers the job (repeatable)"
    )
    parser.add_argument("job_class", metavar="CLASS")
    parser.add_argument(
        "args", nargs="*", metavar="JSON_ARG", help="arguments, parsed as JSON when they are JSON"
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--at", type=parse_time, metavar="TIME", help="run at TIME (epoch or ISO)")
    when.add_argument(
        "--in", dest="in_seconds", type=parse_seconds_ahead, metavar="SECONDS", help="run later"
    )


def parse_time(text: str) -> float:
    """``--at``: epoch seconds, or an ISO 8601 time (local time when it has no offset)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither epoch seconds nor an ISO 8601 time"
        ) from None


def parse_seconds_ahead(text: str) -> float:
    """``--in``: seconds from now, 0 or more (``--in -5`` said "delayed" and queued at once)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give seconds from now, 0 or more (--at TIME for a time)"
        )
    return seconds


def run(args: argparse.Namespace) -> int:
    queue = args.queue or _queue_of(args.job_class, app_modules(args.app))
    check_queue_name(queue)
    job_args = [json_arg(a) for a in args.args]
    if args.app:
        _check_arguments(args.job_class, args.app, job_args)
    if args.at is not None or args.in_seconds is not None:
        return _enqueue_later(args, queue, job_args)
    payload = protocol.encode_payload(args.job_class, job_args)
    store_for(args).push(queue, payload)
    print(f"enqueued to {queue}: {payload}")
    return 0


def _enqueue_later(args: argparse.Namespace, queue: str, job_args: list[object]) -> int:
    """Into the delayed queue, for the scheduler to move when the time comes."""
    from pyresque.jobs.client import Client
    from pyresque.scheduler.delayed import Delayed, timestamp_of

    connection = args.connection
    delayed = Delayed(Client(url=connection.redis_url, namespace=connection.namespace))
    now = delayed.clock()
    when = args.at if args.at is not None else now + args.in_seconds
    delayed.enqueue_at_with_queue(queue, when, args.job_class, *job_args)
    what = f"{args.job_class} {json.dumps(job_args, ensure_ascii=False)}"
    if when <= now:  # as Ruby does: a time that has come is queued at once; say so
        shown = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(when))
        print(f"enqueued to {queue} now ({shown} is not in the future): {what}")
        return 0
    second = timestamp_of(when)
    shown = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(second))
    print(f"delayed to {queue} until {shown} (epoch {second}): {what}")
    return 0


def _check_arguments(job_class: str, apps: list[str], job_args: list[object]) -> None:
    """ConfigError when the job ``--app`` registers cannot take ``job_args`` (its signature); a
    job the app does not register (a Ruby class) is not checked."""
    import_apps(apps)
    with contextlib.suppress(UnknownJobClass):
        problem = default_registry().resolve(job_class).arguments_problem(job_args)
        if problem is not None:
            raise ConfigError(f"enqueue: {problem}")


def _queue_of(job_class: str, apps: list[str]) -> str:
    """The queue a registered job names in its decorator, with the app imported to find it."""
    if not apps:
        raise ConfigError(
            f"enqueue {job_class}: give --queue, or --app MODULE (or $PYRESQUE_APP) to take the "
            "queue the job's decorator names"
        )
    import_apps(apps)
    try:
        spec = default_registry().resolve(job_class)
    except UnknownJobClass as exc:
        known = ", ".join(default_registry().names()) or "none"
        raise ConfigError(
            f"enqueue {job_class}: --queue not given and {exc} by --app {','.join(apps)} "
            f"(registered: {known})"
        ) from None
    if not spec.queue:
        raise ConfigError(f"enqueue {job_class}: the job names no queue of its own: give --queue")
    return spec.queue
