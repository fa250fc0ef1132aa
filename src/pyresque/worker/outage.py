"""Riding out a Redis outage: retry with backoff, then learn what the server did meanwhile.

Every Redis error is worth a retry (a restart, a failover's READONLY, an OOM or MISCONF refusal)
except a refused password or ACL, which no wait will fix: that ends the worker at once with a
clear message. A burst worker (a cron job) gives up after ``burst_timeout`` seconds instead of
waiting forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from pyresque.store.connection import RETRYABLE_ERRORS, is_auth_failure, is_full

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY = 0.1
MAX_DELAY = 10.0


class BootFailure(Exception):
    """The worker cannot work at all; ``exit_code`` says how it should exit."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class OutageHost(Protocol):
    """What the retry loop needs from the worker."""

    redis_label: str

    @property
    def stopping(self) -> bool: ...

    def wait(self, timeout: float, fds: list[int]) -> list[int]: ...

    def apply_signals(self) -> None: ...

    def reconcile_after_outage(self) -> None: ...


class RedisOutage:
    ERRORS = RETRYABLE_ERRORS

    def __init__(self, host: OutageHost, burst: bool, burst_timeout: float) -> None:
        self.host = host
        self.burst = burst
        self.burst_timeout = burst_timeout

    def retry(self, what: str, action: Callable[[], T]) -> T | None:
        """Run ``action``, retrying with backoff while Redis is unreachable.

        Returns None without running it if a stop signal arrives during an outage of ``start``
        or ``reserve``. Raises :class:`BootFailure` on a refused password, and in burst mode once
        Redis has been unreachable for ``burst_timeout`` seconds.
        """
        delay = FIRST_DELAY
        began: float | None = None
        while True:
            try:
                if began is not None:
                    self.host.reconcile_after_outage()
                result = action()
                if began is not None:
                    log.warning("%s reachable again; resuming", self.host.redis_label)
                return result
            except RETRYABLE_ERRORS as exc:
                if is_auth_failure(exc):
                    raise BootFailure(
                        f"authentication failed at {self.host.redis_label}: {exc}", 2
                    ) from exc
                now = time.monotonic()
                began = now if began is None else began
                if self.burst and now - began >= self.burst_timeout:
                    raise BootFailure(
                        f"{self.host.redis_label} unreachable for {now - began:.0f}s "
                        f"({type(exc).__name__}: {exc}); burst mode gives up",
                        1,
                    ) from exc
                if is_full(exc):  # not an outage: say what an operator must fix
                    log.error(
                        "%s: Redis is full at %s (maxmemory reached: %s); retrying in %.1fs",
                        what,
                        self.host.redis_label,
                        exc,
                        delay,
                    )
                else:
                    log.error(
                        "%s: %s unreachable or refusing (%s: %s); retrying in %.1fs",
                        what,
                        self.host.redis_label,
                        type(exc).__name__,
                        exc,
                        delay,
                    )
            self.host.wait(delay, [])
            self.host.apply_signals()
            if self.host.stopping and what in ("start", "reserve"):
                return None
            delay = min(delay * 2, MAX_DELAY)
