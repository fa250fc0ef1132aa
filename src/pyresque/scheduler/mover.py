"""Moving due delayed jobs to their queues, one atomic script call per batch.

resque-scheduler moves a batch with WATCH/MULTI from its client; we decide in Python what each
item becomes (its queue payload, as ``Resque.enqueue`` writes it: ``{"class":…,"args":[…]}``) and
let one Lua call check that the list still starts with those items and move them all. A scheduler
killed anywhere leaves each item either delayed or queued, never both and never neither.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from pyresque.errors import PayloadError
from pyresque.jobs import tracing
from pyresque.scheduler.store import Move, ScheduleStore
from pyresque.wire import protocol
from pyresque.wire.keys import Keys

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100  # resque-scheduler's DELAYED_REQUEUE_BATCH_SIZE
MAX_BATCHES_PER_CALL = 1000  # then give the loop a turn; the next call goes on


def plan_move(keys: Keys, timestamp: int, item: str, now: float) -> Move:
    """Where one delayed item goes: its queue, with ``queue`` dropped from the item (other extra
    keys are kept); an item that is not a job (bad JSON, no class, no queue) becomes a failure
    record instead, so it neither blocks the schedule nor is lost."""
    try:
        payload = protocol.decode_payload(item)
        queue = payload.extra.pop("queue", None)
        if not isinstance(queue, str) or not queue:
            raise PayloadError("delayed item has no 'queue' string")
    except PayloadError as exc:
        log.error("delayed item at %d is not a job (%s); recorded as a failure", timestamp, exc)
        failure = protocol.Failure(type(exc).__name__, str(exc))
        worker = f"{socket.gethostname()}:scheduler"
        record = protocol.failure_record(item, failure, worker, "", now)
        return Move(item, keys.failed, record, "")
    return Move(item, keys.queue(queue), payload.encode(), queue)


def move_due(
    store: ScheduleStore,
    now: float,
    batch_size: int = DEFAULT_BATCH_SIZE,
    clock: Callable[[], float] = time.time,
) -> int:
    """Move every item due at ``now`` (timestamp <= int(now)); returns how many moved."""
    moved = 0
    for _ in range(MAX_BATCHES_PER_CALL):
        ts = store.next_timestamp(now)
        if ts is None:
            return moved
        items = store.items_at(ts, 0, batch_size)
        started = clock()
        moves = [plan_move(store.keys, ts, item, clock()) for item in items]
        result = store.move(ts, moves)
        if result < 0:
            log.debug("delayed list %d changed while being moved; reading it again", ts)
            continue
        moved += result
        if tracing.tracers():
            _tell_tracers(moves, started)
    return moved


def _tell_tracers(moves: list[Move], started: float) -> None:
    """Each job moved to its queue, for the tracing integrations (a move's span)."""
    for move in moves:
        if move.queue:
            tracing.notify("moved", move.queue, protocol.decode_payload(move.payload), started)
