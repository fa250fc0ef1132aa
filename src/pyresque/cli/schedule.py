"""``pyresque schedule list|delayed``, and the options and set-up it shares with ``pyresque
scheduler`` (in :mod:`pyresque.cli.scheduler`)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pyresque.errors import PyresqueError
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
from pyresque.settings.options import add_connection_flags


def schedule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        metavar="FILE",
        help="recurring schedule (default: config/resque-schedule.yml if it exists)",
    )
    parser.add_argument("--environment", "-E", help="environment section (default: $RACK_ENV…)")
    parser.add_argument("--missed", choices=MISSED_POLICIES, default=None, help=_MISSED_HELP)


_MISSED_HELP = "ticks missed while no scheduler ran: run once now (default) or skip to the next"


def client_for(args: argparse.Namespace) -> Client:
    default_registry().allow_modules(getattr(args, "allow_module", None) or ())
    import_apps(app_modules(getattr(args, "app", None)))
    return configure(args.connection.redis_url, namespace=args.connection.namespace)


def service_for(args: argparse.Namespace, client: Client) -> SchedulerService:
    return scheduler_for(
        client.url,
        client.namespace,
        schedule=args.schedule,
        environment=args.environment,
        poll_interval=getattr(args, "interval", None),
        dynamic=False if getattr(args, "no_dynamic", False) else None,
        missed=args.missed,
    )


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
    published = store.next_runs()  # the running master's own times, when one runs
    rows = []
    for name, entry in schedule.entries.items():
        next_at = published.get(name, schedule.next_at[name])
        rows.append(
            {
                "name": name,
                "source": "dynamic" if name in dynamic else "file",
                "when": entry.when,
                "class": entry.class_name,
                "queue": entry.queue or _registered_queue(entry.class_name),
                "args": entry.args,
                "description": entry.description,
                "next_run": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(next_at)),
                "next_run_from": "scheduler" if name in published else "estimate",
                "last_enqueued_at": last_text.get(name),
            }
        )
    return rows


def _registered_queue(class_name: str) -> str | None:
    """The queue a job registered by the imported app names (None: not known here)."""
    try:
        return default_registry().resolve(class_name).queue
    except PyresqueError:
        return None


def cmd_schedule_list(args: argparse.Namespace) -> int:
    service = service_for(args, client_for(args))
    rows = schedule_rows(service.store, service.options, time.time())
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("no recurring schedules")
    for row in rows:
        print(
            f"{row['name']} ({row['source']}): {row['when']} -> {row['class']} "
            f"on {row['queue'] or '(the job queue: give --app to show it)'} "
            f"args={json.dumps(row['args'])} next {row['next_run']}"
            f"{'' if row['next_run_from'] == 'scheduler' else ' (no scheduler running: estimated)'}"
            f" last {row['last_enqueued_at'] or 'never'}"
        )
    return 0


def cmd_schedule_delayed(args: argparse.Namespace) -> int:
    delayed = Delayed(client_for(args))
    jobs = delayed.jobs(0, args.limit)
    if args.json:
        print(json.dumps([j.__dict__ for j in jobs], ensure_ascii=False))
        return 0
    print(f"{delayed.count()} delayed job(s) at {delayed.timestamp_count()} timestamp(s)")
    for job in jobs:
        when = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(job.timestamp))
        print(f"{when} {job.queue} {job.class_name} {json.dumps(job.args, ensure_ascii=False)}")
    return 0


def add_arguments(schedule: argparse.ArgumentParser) -> None:
    actions = schedule.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="recurring schedules, next and last runs")
    schedule_options(listing)
    delayed = actions.add_parser("delayed", help="delayed jobs, soonest first")
    delayed.add_argument("--limit", type=int, default=50, help="timestamps to show")
    for action in (listing, delayed):
        add_connection_flags(action)
        action.add_argument("--app", "-a", action="append", help="module to import (repeatable)")
        action.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return cmd_schedule_list(args)
    return cmd_schedule_delayed(args)
