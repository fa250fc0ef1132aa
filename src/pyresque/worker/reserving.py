"""Getting a worker its next job: the ``CYCLE`` calls, the wait for work, and reconciling after a
lost reply, driven by one :class:`~pyresque.worker.progress.Progress` value.

:class:`Reservations` asks the progress what to do (:meth:`Progress.step`), does it against Redis,
and applies the transition the outcome names; it keeps no other state about the job in hand. The
worker's loop sees only replies: a :class:`Reservation`, :data:`PAUSED`, :data:`HELD`, or None.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from pyresque.store.cycle import Ack, Reply, read_reply
from pyresque.store.operations import Store
from pyresque.worker.heartbeat import Heartbeat
from pyresque.worker.progress import Progress, Step
from pyresque.worker.queues import QueueSelector
from pyresque.worker.wakeup import NOT_READ, BlockingWait, Interruptible, WakeupListener

log = logging.getLogger("pyresque.worker.loop")

QUEUE_REFRESH = 1.0  # how long a resolved '*' or glob list is reused while busy


class Reservations:
    """One worker's reservations: what it holds, what it still has to acknowledge."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        selector: QueueSelector,
        heartbeat: Heartbeat,
        is_registered: Callable[[], bool],
    ) -> None:
        self.store = store
        self.id = worker_id
        self.selector = selector
        self._heartbeat = heartbeat
        self._is_registered = is_registered
        self.progress = Progress()
        self._dynamic = selector.is_dynamic  # asked once per job: computed once
        self._static_queues = [] if self._dynamic else selector.resolve()
        self._queues_cache: tuple[float, list[str]] = (-1e9, [])
        self._wakeups = WakeupListener(store, selector)
        self._blocking = (
            BlockingWait(store, worker_id, selector.patterns[0])
            if selector.blocks_on_one_queue
            else None
        )
        self._nonce = os.urandom(4).hex()  # reservation tokens: <nonce>.<counter>
        self._tokens = 0

    def queues(self) -> list[str]:
        """The concrete queues, in priority order: fixed for a list of names, re-read from Redis
        at most once a second for ``*`` and globs."""
        if not self._dynamic:
            return self._static_queues
        stamp, cached = self._queues_cache
        now = time.monotonic()
        if now - stamp > QUEUE_REFRESH:
            cached = self.selector.resolve(self.store.queue_names())
            self._queues_cache = (now, cached)
        return cached

    def _next_token(self) -> str:
        self._tokens += 1
        return f"{self._nonce}.{self._tokens}"

    # --- the steps -----------------------------------------------------------------------------

    def reserve(self) -> Reply:
        """Acknowledge the finished job and reserve the next, as the progress says: reconcile
        first when a reply may have been lost; the early reply when there is one; else a call.
        A Redis error leaves the progress as it was (the retried call carries the same
        acknowledgement; tokens make it apply once)."""
        step = self.progress.step(False)
        if step is Step.RECONCILE:
            self.reconcile()
            step = self.progress.step(False)
        if step is Step.TAKE_EARLY:
            self.progress, reply = self.progress.took_early()
            return reply
        now = time.monotonic()
        call = self.progress.call(now)
        ack, landing = call
        reply = self.store.cycle(
            self.id,
            time.time(),
            ack=ack,
            queues=self.queues(),
            token=self._next_token(),
            landing=landing,
        )
        self.progress = self.progress.replied(call, reply, now)
        return reply

    def finished(self, ack: Ack | None) -> None:
        """A job ended; ``ack`` goes with the next call (None: it was put back)."""
        self.progress = self.progress.finished(ack)

    def acknowledge(self) -> None:
        """Acknowledge the finished job without reserving (pausing, leaving)."""
        ack = self.progress.ack
        if ack is not None:
            self.store.cycle(self.id, time.time(), ack=ack)
            self.progress = self.progress.acknowledged()

    def pause(self) -> bool:
        """Whether the worker idles paused now (not while it holds a job reserved behind its
        blocking wait before the pause); if so, an early reply is dropped."""
        if self.progress.step(True) is not Step.IDLE_PAUSED:
            return False
        self.progress = self.progress.paused()
        return True

    def reconcile_if_unsure(self) -> None:
        if self.progress.unsure:
            self.reconcile()

    def reconcile(self) -> None:
        """After a lost reply, learn from the in-flight hash what the server actually did.

        The hash carries the token of the reservation it holds. If that is still the token of the
        job being acknowledged, the acknowledgement was not applied (the next call applies it).
        Otherwise it was, and whatever the hash holds now was reserved for us by a call whose
        reply never came: put it back at the front of its queue.
        """
        if self._is_registered() and not self.store.is_registered(self.id):
            log.warning(
                "Worker %s: registration lost (Redis restarted?); registering again", self.id
            )
            self.store.register_worker(self.id, time.time())
        token, held = self.store.held(self.id)
        ack = self.progress.ack
        if ack is not None and ack.reservation.token and token == ack.reservation.token:
            self.progress = self.progress.reconciled(ack_pending=True)
            return
        for queue, payload in held.items():
            self.store.requeue(self.id, queue, payload, count_delivery=False)
        if token is not None and not held:  # a token alone would make every reservation refuse
            self.store.forget_token(self.id, token)
        self.progress = self.progress.reconciled(ack_pending=False)

    # --- waiting for work ----------------------------------------------------------------------

    def wait_for_work(self, timeout: float, interruptible: Interruptible) -> None:
        """Sleep until a job may be there, a signal arrives, or ``timeout`` passes."""
        blocking = self._blocking
        if blocking is not None:
            # the server's timeout ends the command before our own deadline (its + 1 s): only a
            # signal abandons it
            block = min(timeout, max(self._heartbeat.seconds_left(), 0.01))
            # the reservation goes out behind the move (this worker has nothing to acknowledge:
            # the call that found its queue empty did it), so a job is picked up in one round trip
            token = self._next_token()
            ahead = self.store.cycle_ahead(self.id, self._static_queues, token)
            self.progress = self.progress.moving()
            waited = blocking.wait(block, interruptible, ahead)
            read = waited.reply is not NOT_READ
            reply = read_reply(waited.reply, token) if read else None
            self.progress = self.progress.waited(
                reply, read=read, unsure=waited.unsure, now=time.monotonic()
            )
            self._heartbeat.beat_if_due()
            if waited.ran:
                return
            if blocking.unsupported:
                self._blocking = None
        self._wakeups.wait(min(timeout, self._heartbeat.seconds_left()), interruptible)
        self._heartbeat.beat_if_due()

    def return_landed(self) -> None:
        """Put back what the blocking move took and no call reserved (pausing)."""
        if self._blocking is not None:
            self.store.return_landed(self.id, self._blocking.queue)

    def close(self) -> None:
        """Close the wait's connections."""
        self._wakeups.close()
        if self._blocking is not None:
            self._blocking.close()

    def leave(self) -> None:
        """Leaving: stop waiting, and put back what the blocking move landed (a script is
        refused under maxmemory, so only when there is something)."""
        if self._blocking is not None:
            self._blocking.close()
            if self.store.landed(self.id):
                self.store.return_landed(self.id, self._blocking.queue)
