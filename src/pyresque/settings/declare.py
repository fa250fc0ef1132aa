"""How a setting is declared: once, beside its typed field, with everything derived from it.

A setting is a field of a frozen dataclass whose default is :func:`setting`: its one line of docs,
its kind (how a value is read and checked), its environment variables in the order they win, its
command-line flags and the commands that take them, and its key in ``settings.PYRESQUE``. The
command lines' options, the environment reader, the Django settings and the tables in
docs/configuration.md are all made from these declarations (gunicorn's ``Setting`` classes had the
idea; here the fields stay typed, with no ``__getattr__`` in front of them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyresque.errors import ConfigError

T = TypeVar("T")
_KEY = "pyresque.setting"
# a flag of every command (the connection's --redis and --namespace)
EVERY_COMMAND = "*"


def _seconds(origin: str, value: object) -> None:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number < 0:
        raise ConfigError(f"{origin} {value!r}: expected a number of seconds (0 or more)")


def _number(origin: str, value: object) -> None:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number < 0:
        raise ConfigError(f"{origin} {value!r}: expected a number (0 or more)")


def _count(origin: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{origin} {value!r}: expected a whole number (0 or more)")


def _text(origin: str, value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{origin} {value!r}: expected a string")


def _switch(origin: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{origin} {value!r}: expected True or False")


@dataclass(frozen=True)
class Kind:
    """What a setting's values are: how the docs name them, how a flag's text becomes one, and
    the check every value passes whichever layer set it (a number of seconds that is ``nan`` or
    negative would reach ``select`` as a timeout)."""

    label: str
    check: Callable[[str, object], None]
    from_flag: Callable[[str], Any] | None = None


SECONDS = Kind("seconds", _seconds, float)
NUMBER = Kind("number", _number, float)
COUNT = Kind("whole number", _count, int)
TEXT = Kind("text", _text, str)
SWITCH = Kind("on/off", _switch)


@dataclass(frozen=True)
class Env:
    """One environment variable of a setting: its name, how its text is read (``read(name,
    text)``), and whether an empty value counts as unset."""

    name: str
    read: Callable[[str, str], Any]
    non_empty: bool = False
    # set at all means on, and off can only be said by leaving it unset (TERM_CHILD)
    presence: bool = False

    def text_for(self, value: object) -> str | None:
        """The text that reads back as ``value`` (None: leave the variable unset)."""
        if isinstance(value, bool):
            if self.presence:
                return "1" if value else None
            return "true" if value else "false"
        return str(value)


@dataclass(frozen=True)
class Flag:
    """One command-line option: its names, its help, and the commands that take it.

    A flag either sets ``const`` (a switch such as ``--burst``), counts (``-vv``), collects
    (``repeat``: given several times) or takes a value read by ``kind``. ``dest`` is the setting or
    option it fills; ``env`` names, for the docs, the variables read where the value is used when
    the flag is not given; ``exclusive`` names a group of flags of which only one may be given.
    """

    names: tuple[str, ...]
    help: str
    commands: tuple[str, ...] = ("work", "pool")
    const: object = None
    count: bool = False
    repeat: bool = False
    kind: Kind = TEXT
    metavar: str | None = None
    default: object = None
    dest: str = ""
    env: tuple[str, ...] = ()
    exclusive: str = ""
    shown: str = ""  # the default as the docs show it

    def takes(self, command: str) -> bool:
        return command in self.commands or EVERY_COMMAND in self.commands


@dataclass(frozen=True)
class Setting:
    """A setting's declaration, kept in its field's metadata."""

    name: str
    doc: str
    kind: Kind
    env: tuple[Env, ...] = ()
    flags: tuple[Flag, ...] = ()
    django: str | None = None  # its key in settings.PYRESQUE
    shown: str = ""  # the default as the docs show it, when not the field's own


def setting(
    default: T,
    doc: str,
    kind: Kind,
    *,
    env: tuple[Env, ...] = (),
    flags: tuple[Flag, ...] = (),
    django: str | None = None,
    shown: str = "",
) -> T:
    """A dataclass field with ``default`` that carries its declaration (typed as the default, so
    the field keeps its own type)."""
    declared = Setting("", doc, kind, env, flags, django, shown)
    result: T = field(default=default, metadata={_KEY: declared})
    return result


def declarations(cls: type) -> Iterator[tuple[Setting, object]]:
    """Every declared field of the dataclass ``cls``, in order, with its default."""
    for f in dataclasses.fields(cls):
        declared = f.metadata.get(_KEY)
        if isinstance(declared, Setting):
            named = dataclasses.replace(
                declared,
                name=f.name,
                flags=tuple(dataclasses.replace(flag, dest=f.name) for flag in declared.flags),
            )
            yield named, f.default
