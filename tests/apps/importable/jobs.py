"""Not registered anywhere: reachable only by import path when the operator allows ``importable``."""

from __future__ import annotations

import json
from typing import Any

import pyresque


def record(*args: Any) -> None:
    pyresque.default_client().redis.rpush("test:done", json.dumps(list(args)))
