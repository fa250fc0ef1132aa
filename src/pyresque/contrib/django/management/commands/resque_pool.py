"""``manage.py resque_pool [pool options]``: the pool, with the project loaded in the master."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError

import pyresque.pool
from pyresque.cli import pool as cli
from pyresque.contrib.django import db
from pyresque.contrib.django.conf import current, pool_argv, worker_environment
from pyresque.contrib.django.discovery import autodiscover_jobs
from pyresque.errors import ConfigError


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type information
    help = "Run a pre-forking pool of pyresque workers (every resque-pool option is accepted)."

    def run_from_argv(self, argv: list[str]) -> None:
        """Hand everything after the command's name to the pool's own parser, so its options and
        ``--help`` work unchanged (manage.py has already read ``--settings``)."""
        raise SystemExit(run(argv[2:], prog=f"{argv[0]} {argv[1]}"))

    def handle(self, *args: str, **options: Any) -> None:  # call_command("resque_pool", ...)
        code = run(list(args))
        if code:
            raise CommandError(f"resque_pool exited with status {code}", returncode=code)


def run(given: Sequence[str], prog: str = "resque_pool") -> int:
    try:
        settings = current()
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    # the master's environment is its workers' settings' layer below the command line
    worker_environment(settings, os.environ)
    autodiscover_jobs(settings.jobs_module)
    # the app's own setup hooks (registered by its jobs modules) ran after ours: close again last,
    # so the workers fork from a master that holds no connection at all
    pyresque.pool.setup(db.close_all_connections)
    return cli.main(pool_argv(settings, given), prog=prog)
