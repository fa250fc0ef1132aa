"""``pyresque scheduler`` (run the scheduler on its own) and ``pyresque schedule list|delayed``."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pyresque.jobs.apps import app_modules, import_apps
from pyresque.jobs.client import Client, configure
from pyresque.jobs.registry import default_registry
from pyresque.scheduler.delayed import Delayed
from pyresque.scheduler.recurring import MISSED_POLICIES, parse_enqueued_at
from pyresque.scheduler.schedule import (
    Schedule,
    load_schedule_file,
    parse_dynamic,
)
from pyresque.scheduler.service import SchedulerOptions, SchedulerService, scheduler_for
from pyresque.scheduler.store import ScheduleStore

AddOptions = Callable[[argparse.ArgumentParser], None]


def _schedule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        metavar="FILE",
        help="recurring schedule (default: config/resque-schedule.yml if it exists)",
    )
    parser.add_argument("--environment", "-E", help="environment section (default: $RACK_ENV…)")
    parser.add_argument("--missed", choices=MISSED_POLICIES, default=None, help=_MISSED_HELP)


_MISSED_HELP = "ticks missed while no scheduler ran: run once now (default) or skip to the next"


def _client(args: argparse.Namespace) -> Client:
    default_registry().allow_modules(getattr(args, "allow_module", None) or ())
    import_apps(app_modules(getattr(args, "app", None)))
    return configure(args.redis, namespace=args.namespace)


def _service(args: argparse.Namespace, client: Client) -> SchedulerService:
    return scheduler_for(
        client.url,
        client.namespace,
        schedule=args.schedule,
        environment=args.environment,
        poll_interval=getattr(args, "interval", None),
        dynamic=False if getattr(args, "no_dynamic", False) else None,
        missed=args.missed,
    )


def cmd_scheduler(args: argparse.Namespace) -> int:
    args.setup_logging(args.verbose)
    return _service(args, _client(args)).run()


def schedule_rows(store: ScheduleStore, options: SchedulerOptions, now: float) -> list[Any]:
    """Each recurring entry with its source, timing, next run and last enqueue."""
    file_entries = (
        load_schedule_file(options.schedule_file, options.env_name, options.missed)
        if options.schedule_file
        else {}
    )
    dynamic = parse_dynamic(store.persistent_schedules(), options.missed)
    last_text = store.last_enqueued()
    last = {n: parse_enqueued_at(t) for n, t in last_text.items()}
    schedule = Schedule()
    schedule.load({**file_entries, **dynamic}, now, last)
    rows = []
    for name, entry in schedule.entries.items():
        rows.append(
            {
                "name": name,
                "source": "dynamic" if name in dynamic else "file",
                "when": entry.when,
                "class": entry.class_name,
                "queue": entry.queue,
                "args": entry.args,
                "description": entry.description,
                "next_run": time.strftime(
                    "%Y-%m-%d %H:%M:%S %z", time.localtime(schedule.next_at[name])
                ),
                "last_enqueued_at": last_text.get(name),
            }
        )
    return rows


def cmd_schedule_list(args: argparse.Namespace) -> int:
    service = _service(args, _client(args))
    rows = schedule_rows(service.store, service.options, time.time())
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("no recurring schedules")
    for row in rows:
        print(
            f"{row['name']} ({row['source']}): {row['when']} -> {row['class']} "
            f"on {row['queue'] or '(job queue)'} args={json.dumps(row['args'])} "
            f"next {row['next_run']} last {row['last_enqueued_at'] or 'never'}"
        )
    return 0


def cmd_schedule_delayed(args: argparse.Namespace) -> int:
    delayed = Delayed(_client(args))
    jobs = delayed.jobs(0, args.limit)
    if args.json:
        print(json.dumps([j.__dict__ for j in jobs], ensure_ascii=False))
        return 0
    print(f"{delayed.count()} delayed job(s) at {delayed.timestamp_count()} timestamp(s)")
    for job in jobs:
        when = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(job.timestamp))
        print(f"{when} {job.queue} {job.class_name} {json.dumps(job.args, ensure_ascii=False)}")
    return 0


def add_commands(
    subparsers: Any, add_connection_options: AddOptions, setup_logging: Callable[[int], None]
) -> None:
    """Register ``scheduler`` and ``schedule`` on the ``pyresque`` command's subparsers, with the
    main command's ``--redis``/``--namespace`` options and logging set-up (passed in: nothing
    imports ``pyresque.cli.main``)."""
    run = subparsers.add_parser("scheduler", help="move delayed jobs, enqueue recurring ones")
    add_connection_options(run)
    _schedule_options(run)
    run.add_argument("--app", "-a", action="append", help="module to import (repeatable)")
    run.add_argument("--allow-module", action="append", metavar="PREFIX")
    run.add_argument("--interval", type=float, help="poll period, seconds (default 1)")
    run.add_argument("--no-dynamic", action="store_true", help="ignore persistent_schedules")
    run.add_argument("--verbose", "-v", action="count", default=0)
    run.set_defaults(func=cmd_scheduler, setup_logging=setup_logging)

    schedule = subparsers.add_parser("schedule", help="show recurring schedules and delayed jobs")
    actions = schedule.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="recurring schedules, next and last runs")
    _schedule_options(listing)
    listing.set_defaults(func=cmd_schedule_list)
    delayed = actions.add_parser("delayed", help="delayed jobs, soonest first")
    delayed.add_argument("--limit", type=int, default=50, help="timestamps to show")
    delayed.set_defaults(func=cmd_schedule_delayed)
    for action in (listing, delayed):
        add_connection_options(action)
        action.add_argument("--app", "-a", action="append", help="module to import (repeatable)")
        action.add_argument("--json", action="store_true")


# --- pyresque enqueue --at/--in ----------------------------------------------------------------


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


def cmd_enqueue_later(args: argparse.Namespace) -> int:
    delayed = Delayed(Client(url=args.redis, namespace=args.namespace))
    when = args.at if args.at is not None else delayed.clock() + args.in_seconds
    job_args = [args.json_arg(a) for a in args.args]
    delayed.enqueue_at_with_queue(args.queue, when, args.job_class, *job_args)
    print(f"delayed to {args.queue} at {int(when)}: {args.job_class} {json.dumps(job_args)}")
    return 0


def add_delay_options(enqueue: argparse.ArgumentParser, json_arg: Callable[[str], Any]) -> None:
    """``--at TIME`` / ``--in SECONDS`` on ``pyresque enqueue``: delay the job instead
    (``json_arg`` parses an argument as ``enqueue`` does)."""
    when = enqueue.add_mutually_exclusive_group()
    when.add_argument("--at", type=parse_time, metavar="TIME", help="run at TIME (epoch or ISO)")
    when.add_argument("--in", dest="in_seconds", type=float, metavar="SECONDS", help="run later")
    enqueue_now: Callable[[argparse.Namespace], int] = enqueue.get_default("func")

    def cmd_enqueue(args: argparse.Namespace) -> int:
        if args.at is None and args.in_seconds is None:
            return enqueue_now(args)
        return cmd_enqueue_later(args)

    enqueue.set_defaults(func=cmd_enqueue, json_arg=json_arg)
