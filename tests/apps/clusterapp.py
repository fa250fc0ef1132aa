"""Jobs for the cluster test: they write through the cluster URL the test passes."""

from __future__ import annotations

import json
import os
from typing import Any

import pyresque
from pyresque.store.connection import connect


class BoomError(Exception):
    pass


@pyresque.job(queue="oracle", name="Echo")
def echo(*args: Any) -> None:
    connect(os.environ["TEST_REDIS_URL"]).rpush("{resque}:test:done", json.dumps(list(args)))


@pyresque.job(queue="oracle", name="Boom")
def boom(*args: Any) -> None:
    raise BoomError("boom")
