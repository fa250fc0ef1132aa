"""``pyresque scheduler``: the scheduler on its own (a pool runs one unless ``--no-scheduler``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pyresque.cli.schedule import client_for, schedule_options, service_for
from pyresque.logs import setup_role_logging
from pyresque.settings.options import add_connection_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_flags(parser)
    schedule_options(parser)
    parser.add_argument("--app", "-a", action="append", help="module to import (repeatable)")
    parser.add_argument("--allow-module", action="append", metavar="PREFIX")
    parser.add_argument("--interval", type=float, help="poll period, seconds (default 1)")
    parser.add_argument("--no-dynamic", action="store_true", help="ignore persistent_schedules")
    parser.add_argument("--verbose", "-v", action="count", default=0)


def run(args: argparse.Namespace) -> int:
    setup_role_logging("pyresque-scheduler", Path.cwd().name, as_json=False, verbose=args.verbose)
    return service_for(args, client_for(args)).run()
