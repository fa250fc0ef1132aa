"""Command-line options made from the declarations in :mod:`pyresque.settings`.

A command asks for the flags it takes (:func:`add_setting_flags`, :func:`add_flags`) and reads the
worker settings they set back (:func:`setting_overrides`); nothing here names a setting.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from pyresque.settings.declare import Flag
from pyresque.settings.worker import worker_declarations

# resolved once per command from --redis and --namespace (see pyresque.cli.main)
CONNECTION = ("redis_url", "namespace")


def setting_flags(command: str) -> list[Flag]:
    """The flags of the worker settings that ``command`` takes, in declaration order."""
    return [f for d in worker_declarations() for f in d.flags if f.takes(command)]


def add_setting_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """The worker settings' flags of ``command`` (the connection's included)."""
    add_flags(parser, setting_flags(command))


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """``--redis`` and ``--namespace`` (for commands that take no other worker setting)."""
    add_flags(parser, [f for f in setting_flags("*") if f.dest in CONNECTION])


def add_flags(parser: argparse.ArgumentParser, flags: Iterable[Flag]) -> None:
    groups: dict[str, Any] = {}
    for flag in flags:
        target: Any = parser
        if flag.exclusive:
            if flag.exclusive not in groups:
                groups[flag.exclusive] = parser.add_mutually_exclusive_group()
            target = groups[flag.exclusive]
        target.add_argument(*flag.names, **_argparse_options(flag))


def _argparse_options(flag: Flag) -> dict[str, Any]:
    """What argparse needs for ``flag``; a value not given stays ``flag.default`` (None for a
    worker setting, so that the layers below it show through)."""
    options: dict[str, Any] = {
        "dest": flag.dest,
        "default": flag.default,
        "help": flag.help.replace("%", "%%"),
    }
    if flag.const is not None:
        return {**options, "action": "store_const", "const": flag.const}
    if flag.count:
        return {**options, "action": "count"}
    options["metavar"] = flag.metavar
    if flag.repeat:
        return {**options, "action": "append"}
    return {**options, "type": flag.kind.from_flag}


def checked(args: argparse.Namespace, flags: Iterable[Flag]) -> None:
    """Every value given to ``flags`` held to its kind's rules (a timeout that is ``nan`` or
    negative is refused here, as the worker settings' are by ``worker_settings``)."""
    for flag in flags:
        value = getattr(args, flag.dest, None)
        if value is not None and flag.const is None and not flag.repeat and not flag.count:
            flag.kind.check(flag.names[0], value)


def setting_overrides(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The worker settings ``command``'s flags set (None: not given), the connection aside."""
    return {
        f.dest: getattr(args, f.dest) for f in setting_flags(command) if f.dest not in CONNECTION
    }
