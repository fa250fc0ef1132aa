"""A pool app with hooks; FAIL_AFTER_PREFORK=1 makes every worker fail to boot."""

from __future__ import annotations

import os
from typing import Any

import jobapp  # noqa: F401 - registers the jobs

import pyresque.pool


@pyresque.pool.after_prefork
def reconnect(worker: Any) -> None:
    if os.environ.get("FAIL_AFTER_PREFORK"):
        raise RuntimeError("database unreachable")
