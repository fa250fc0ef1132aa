"""What several commands share: a store on the resolved connection, and job arguments as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pyresque.store.connection import connect
from pyresque.store.operations import Store
from pyresque.wire.keys import Keys


def store_for(args: argparse.Namespace) -> Store:
    """A store on the connection the command resolved (``args.connection``)."""
    return Store(connect(args.connection.redis_url), Keys(args.connection.namespace))


def json_arg(text: str) -> Any:
    """A job argument from the command line: JSON when it is JSON, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text
