"""Jobs that write nothing to Redis and no hooks: for a Redis that refuses writes (maxmemory)."""

from __future__ import annotations

from typing import Any

import pyresque


@pyresque.job(queue="oracle", name="Quiet")
def quiet(*args: Any) -> None:
    """Does nothing."""
