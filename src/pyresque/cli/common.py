"""What several commands share: a store on the resolved connection, and job arguments as JSON."""

from __future__ import annotations

import argparse
from typing import Any

from pyresque.errors import ConfigError
from pyresque.store.connection import connect
from pyresque.store.operations import Store
from pyresque.wire import protocol
from pyresque.wire.keys import Keys


def store_for(args: argparse.Namespace) -> Store:
    """A store on the connection the command resolved (``args.connection``)."""
    return Store(connect(args.connection.redis_url), Keys(args.connection.namespace))


def json_arg(text: str) -> Any:
    """A job argument from the command line: JSON when it is JSON, else the text itself; but
    text that starts like JSON (``{``, ``[``, ``"``) and does not parse is refused: ``'{bad'``
    was sent as a string."""
    try:
        return protocol.loads(text)
    except ValueError as exc:
        if text.lstrip()[:1] in ("{", "[", '"'):
            raise ConfigError(
                f"argument {text!r} starts like JSON but is not JSON ({exc}): fix it, or give "
                "a string as a JSON string"
            ) from None
        return text
