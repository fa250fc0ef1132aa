"""How an idle worker learns, within milliseconds, that one of its queues has a job.

A worker of one literal queue blocks in ``BLMOVE`` on it (:class:`BlockingWait`), so a job pushed
by any client is taken at once. Others wait on the wake-up channel that pyresque's enqueuers
publish queue names on (:class:`WakeupListener`); clients that do not publish (Ruby's, redis-cli)
are covered by the worker's idle poll, so correctness never depends on a wake-up arriving. Both
waits end at once when a signal arrives (the worker passes its inbox's ``interruptible``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import NoScriptError

from pyresque.store.blocking import LandingMove, WakeupSubscription
from pyresque.store.connection import CONNECTION_ERRORS
from pyresque.store.operations import Store
from pyresque.worker.queues import QueueSelector
from pyresque.worker.signals import WaitInterrupted

log = logging.getLogger(__name__)

Interruptible = Callable[[], AbstractContextManager[bool]]


class WakeupListener:
    def __init__(self, store: Store, selector: QueueSelector) -> None:
        self.store = store
        self.selector = selector
        self._sub: WakeupSubscription | None = None

    def wait(self, timeout: float, interruptible: Interruptible) -> bool:
        """Wait up to ``timeout`` for a wake-up naming one of our queues; True if one came (or
        the channel broke, when a poll is the safe answer). False also when a signal came."""
        try:
            if self._sub is None:
                self._sub = self.store.wakeup_subscription()
            with interruptible() as may_block:
                names = self._sub.wait(timeout if may_block else 0.0)
        except WaitInterrupted:
            self.close()  # it may have stopped mid-reply; the idle poll covers the gap
            return False
        except CONNECTION_ERRORS as exc:
            log.warning("wake-up subscription lost (%s); polling", exc)
            self.close()
            return True
        return any(self.selector.matches(q) for q in names)

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None


_WAIT_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, redis.ResponseError)


NOT_READ = object()  # no reply: no call was sent behind the move, or its reply was lost


@dataclass(frozen=True)
class BlockingOutcome:
    """How a blocking wait ended.

    ``ran``: the wait ran (a job may have moved, or a signal ended it); False on Redis trouble,
    when the caller should wait another way. ``reply``: the reply of the call sent behind the
    move, or :data:`NOT_READ`. ``unsure``: that call was sent and its reply never read, so it may
    have reserved a job for the worker without the worker knowing (see
    :meth:`pyresque.worker.loop.Worker.reconcile_after_outage`).
    """

    ran: bool
    reply: Any = NOT_READ
    unsure: bool = False


class BlockingWait:
    """The idle wait of a worker with one literal queue: a blocking move into its landing list,
    which a ``CYCLE`` call sent right behind it (or the next one) adopts."""

    def __init__(self, store: Store, worker_id: str, queue: str) -> None:
        self.store = store
        self.worker_id = worker_id
        self.queue = queue
        self._move: LandingMove | None = None
        self._marked = False
        self.unsupported = False  # Redis before 6.2 has no BLMOVE: the worker waits another way

    def wait(
        self, timeout: float, interruptible: Interruptible, then: bytes | None = None
    ) -> BlockingOutcome:
        """Block up to ``timeout`` for a job, then run ``then`` (a reserving call as RESP, see
        :meth:`pyresque.store.operations.Store.cycle_ahead`) at once on the server."""
        sent = False
        try:
            if not self._marked:  # a recoverer must look for this worker's landing list
                self.store.mark_inflight_owner(self.worker_id)
                self._marked = True
            if self._move is None:
                self._move = self.store.landing_move(self.worker_id, self.queue)
            with interruptible() as may_block:
                if may_block:
                    sent = then is not None
                    reply = self._move.wait(timeout, then)
                    return BlockingOutcome(True, reply if sent else NOT_READ)
            return BlockingOutcome(True)
        except WaitInterrupted:
            self.close()  # the command is abandoned with its connection
            return BlockingOutcome(True, unsure=sent)
        except NoScriptError:  # scripts flushed: the move ran, the call did not
            self.close()
            return BlockingOutcome(True)
        except _WAIT_ERRORS as exc:
            if isinstance(exc, redis.ResponseError) and "unknown command" in str(exc).lower():
                log.warning("this Redis has no BLMOVE (%s); waiting for wake-ups instead", exc)
                self.unsupported = True
            else:
                log.warning("blocking wait failed (%s); polling instead", exc)
            self.close()
            return BlockingOutcome(False, unsure=sent)

    def close(self) -> None:
        if self._move is not None:
            self._move.close()
            self._move = None
