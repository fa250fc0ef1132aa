"""``manage.py resque_work [work options]``: one worker, with the project loaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pyresque import cli
from pyresque.contrib.django.conf import connection_argv, current
from pyresque.contrib.django.discovery import autodiscover_jobs
from pyresque.errors import ConfigError


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type information
    help = "Run one pyresque worker (every option of `pyresque work` is accepted)."

    def run_from_argv(self, argv: list[str]) -> None:
        raise SystemExit(run(argv[2:]))

    def handle(self, *args: str, **options: Any) -> None:
        code = run(list(args))
        if code:
            raise CommandError(f"resque_work exited with status {code}", returncode=code)


def run(given: Sequence[str]) -> int:
    try:
        settings = current()
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc
    autodiscover_jobs(settings.jobs_module)
    return cli.main(["work", *connection_argv(settings), *given])
