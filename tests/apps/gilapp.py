"""A job stuck in C code that holds the GIL past its time limit (no signal handler or thread of
its process runs meanwhile), and one that records that it ran."""

from __future__ import annotations

from typing import Any

import pyresque


@pyresque.job(queue="oracle", name="HoldsTheGil", timeout=1)
def holds_the_gil(n: int) -> None:
    sum(range(n))  # one C call: minutes for the n the tests give


@pyresque.job(queue="oracle", name="Mark")
def mark(value: Any) -> None:
    pyresque.default_client().redis.rpush("test:done", str(value))
