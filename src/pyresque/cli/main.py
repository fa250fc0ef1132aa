"""The ``pyresque`` command: one entry point, every command registered once in :data:`COMMANDS`.

A command is a module with ``add_arguments(parser)`` and ``run(args) -> int``, imported only when
it is chosen. A worker runs for days and, in fork mode, forks a child per job: the modules only
other commands need (the scheduler with croniter and YAML, the dashboard, failures) would be pages
it carries and copies in every fork, so ``pyresque work`` does not import them, and ``pyresque
--help`` imports no command at all.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import redis

from pyresque import __version__
from pyresque.errors import ConfigError, PyresqueError
from pyresque.settings import resolve_connection
from pyresque.store.connection import redact, refusal
from pyresque.wire.redaction import scrub_argv


@dataclass(frozen=True)
class Command:
    """A command: its name, its one line of help, and the module that implements it.

    ``program`` names a command that is also a program of its own (``resque-pool``): the same
    parser, help and exit codes, and its errors carry its own name.
    """

    name: str
    help: str
    module: str
    program: str | None = None


COMMANDS: tuple[Command, ...] = (
    Command("work", "run a worker", "pyresque.cli.work"),
    Command("pool", "run a pre-forking worker pool", "pyresque.cli.pool", program="resque-pool"),
    Command("enqueue", "push a job (or delay it with --at/--in)", "pyresque.cli.enqueue"),
    Command("status", "queues, workers and stats", "pyresque.cli.status"),
    Command("failures", "list, retry, remove or clear failure records", "pyresque.cli.failures"),
    Command("web", "serve the dashboard (needs the 'web' extra)", "pyresque.web.server"),
    Command("scheduler", "move delayed jobs, enqueue recurring ones", "pyresque.cli.scheduler"),
    Command("schedule", "show recurring schedules and delayed jobs", "pyresque.cli.schedule"),
)
_BY_NAME = {c.name: c for c in COMMANDS}


# Modules of an extra that a command may need, and the extra that brings them: an app that only
# enqueues installs pyresque without the worker's C extensions.
_EXTRA_OF = {"psutil": "worker", "setproctitle": "worker"}


def _missing_extra(command: Command, exc: ModuleNotFoundError) -> str | None:
    """What to install when ``exc`` is a module of an extra the command needs (else None)."""
    extra = _EXTRA_OF.get((exc.name or "").partition(".")[0])
    if extra is None:
        return None
    return f"{command.name} needs {exc.name}: pip install 'pyresque[{extra}]'"


def _implementation(command: Command, prog: str | None = None) -> ModuleType:
    """The command's module; a command whose extra is not installed ends here, with one line
    naming what to install (exit status 2), said as ``prog`` (default: as ``pyresque`` says it)."""
    try:
        return importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        message = _missing_extra(command, exc)
        if message is None:
            raise
        raise SystemExit(_error(prog or _prog_of(command), message, 2)) from None


class _LazyCommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands whose options are added when one is chosen, so that a command imports only
    its own module (argparse still does the choosing: no look at argv before it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        command = _BY_NAME.get(values[0])
        if command is not None and command.name not in self._loaded:
            _implementation(command).add_arguments(self._name_parser_map[command.name])
            self._loaded.add(command.name)
        super().__call__(parser, namespace, values, option_string)
        unknown = vars(namespace).pop(argparse._UNRECOGNIZED_ARGS_ATTR, None)
        if unknown:  # said by the command's parser, with its usage, as its program would
            self._name_parser_map[values[0]].error(f"unrecognized arguments: {' '.join(unknown)}")


def build_parser() -> argparse.ArgumentParser:
    """The ``pyresque`` parser: every command by name and help; each command's options are added
    once it is chosen."""
    parser = argparse.ArgumentParser(prog="pyresque", description="Resque-compatible jobs")
    parser.add_argument("--version", action="version", version=f"pyresque {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, action=_LazyCommands)
    for command in COMMANDS:
        sub.add_parser(command.name, help=command.help, description=command.help)
    return parser


def program_parser(name: str, prog: str) -> argparse.ArgumentParser:
    """The parser of one command run as a program of its own (``resque-pool``)."""
    command = _BY_NAME[name]
    parser = argparse.ArgumentParser(prog=prog, description=command.help)
    _implementation(command, prog).add_arguments(parser)
    parser.set_defaults(command=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    scrub_argv()  # first: a password in the command line is readable by every user of the host
    args = build_parser().parse_args(argv)
    return run_command(args, _prog_of(_BY_NAME[args.command]))


def _prog_of(command: Command) -> str:
    """How ``pyresque`` names itself in a command's errors (a program command by its full name)."""
    return f"pyresque {command.name}" if command.program else "pyresque"


def pool_main(argv: Sequence[str] | None = None) -> int:
    """``resque-pool``, the Procfile's ``worker: resque-pool``: ``pyresque pool`` by another name."""
    return run_program("pool", argv, "resque-pool")


def run_program(name: str, argv: Sequence[str] | None, prog: str) -> int:
    """A command as a program of its own: the same parser and exit codes as ``pyresque NAME``."""
    scrub_argv()
    return run_command(program_parser(name, prog).parse_args(argv), prog)


def run_command(args: argparse.Namespace, prog: str) -> int:
    """Run the chosen command with the connection resolved once, and turn what it raises into
    one line and an exit status: 2 for usage, configuration and refused Redis, 1 for an outage or
    another error of ours, 130 for ^C. Anything else is a bug, and keeps its traceback."""
    url = ""
    command = _BY_NAME[args.command]
    try:
        if hasattr(args, "redis_url"):
            url = args.redis_url or ""
            args.connection = resolve_connection(args.redis_url, args.namespace)
            url = args.connection.redis_url
        return int(_implementation(command).run(args))
    except ModuleNotFoundError as exc:  # a module the command imports as it runs
        missing = _missing_extra(command, exc)
        if missing is None:
            raise
        return _error(prog, missing, 2)
    except ConfigError as exc:
        return _error(prog, str(exc), 2)
    except PyresqueError as exc:
        return _error(prog, str(exc), 1)
    except OSError as exc:
        if exc.filename is not None:  # a file the command needs (a pidfile, a lock, a log)
            return _error(prog, str(exc), 1)
        return _redis_error(prog, exc, url)
    except redis.RedisError as exc:
        return _redis_error(prog, exc, url)
    except KeyboardInterrupt:
        return 130


def _error(prog: str, message: str, code: int) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def _redis_error(prog: str, exc: BaseException, url: str) -> int:
    """A refusal (password, ACL, database number) says so and is exit status 2, as a worker's
    is; anything else is an outage (exit status 1)."""
    refused = refusal(exc)
    if refused is not None:
        return _error(prog, f"Redis at {redact(url)}: {refused}", 2)
    return _error(prog, f"Redis unreachable at {redact(url)}: {exc}", 1)
