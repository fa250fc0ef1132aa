"""``manage.py resque_work [work options]``: one worker, with the project loaded.

It becomes ``python -m pyresque work --app pyresque.contrib.django.boot`` with the settings'
options (the same process: ``exec``), so every option of ``pyresque work`` works unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError

from pyresque.contrib.django.conf import (
    PyresqueSettings,
    connection_argv,
    current,
    worker_environment,
)
from pyresque.errors import ConfigError

BOOT = "pyresque.contrib.django.boot"


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type information
    help = "Run one pyresque worker (every option of `pyresque work` is accepted)."

    def run_from_argv(self, argv: list[str]) -> None:
        exec_worker(argv[2:])

    def handle(self, *args: str, **options: Any) -> None:
        exec_worker(list(args))


def _settings() -> PyresqueSettings:
    try:
        return current()
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc


def work_argv(settings: PyresqueSettings, given: Sequence[str]) -> list[str]:
    return ["work", *connection_argv(settings), "--app", BOOT, *given]


def exec_worker(given: Sequence[str]) -> NoReturn:
    """Replace this process with the worker, ``settings.PYRESQUE``'s worker settings in its
    environment (:func:`worker_environment`); the project stays importable (manage.py's directory
    and ``--pythonpath`` are on ``sys.path``, not necessarily on ``PYTHONPATH``) and
    ``DJANGO_SETTINGS_MODULE`` stays set (manage.py set it in the environment)."""
    settings = _settings()
    ours = [p for p in sys.path if p and not p.startswith((sys.prefix, sys.base_prefix))]
    env = dict(os.environ)
    worker_environment(settings, env)
    env["PYTHONPATH"] = os.pathsep.join([*ours, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "pyresque", *work_argv(settings, given)], env)
