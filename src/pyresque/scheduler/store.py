"""Typed Redis operations on resque-scheduler's keys; the only scheduler code that calls redis-py.

The layout is resque-scheduler 5.0's (see :mod:`pyresque.wire.keys`), so a Ruby resque-scheduler and
Ruby's ``Resque.enqueue_at`` share these keys with us. Queue pushes go through
:meth:`pyresque.store.operations.Store.push`'s shape: ``SADD queues``, ``RPUSH queue:<q>``, then a publish on
the wake-up channel so idle pyresque workers start at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis

from pyresque.scheduler import scripts
from pyresque.store.cycle import as_text
from pyresque.store.operations import Store
from pyresque.wire.keys import Keys


def member(timestamp: int) -> str:
    """What ``timestamps:<item>`` holds for one timestamp (without the namespace, as Ruby)."""
    return f"delayed:{timestamp}"


@dataclass(frozen=True)
class Move:
    """Where one delayed item goes: ``payload`` RPUSHed to ``target`` (a list key); ``queue`` is
    the queue name to SADD and wake, or "" when the target is not a queue (an unreadable item
    goes to the failed list)."""

    item: str
    target: str
    payload: str
    queue: str


class ScheduleStore:
    """resque-scheduler's keys under one namespace."""

    def __init__(self, client: redis.Redis, keys: Keys | None = None) -> None:
        self.redis = client
        self.keys = keys or Keys()
        self.queues = Store(client, self.keys)
        self._move = client.register_script(scripts.MOVE_BATCH)
        self._release = client.register_script(scripts.RELEASE_LOCK)
        self._delay = client.register_script(scripts.DELAY)
        self._fire = client.register_script(scripts.FIRE)

    # --- delayed items -------------------------------------------------------------------------

    def push_delayed(self, timestamp: int, item: str) -> None:
        """Ruby's ``delayed_push`` (RPUSH the item, SADD its timestamps set, ZADD the timestamp)
        in one script call, with a wake-up for a sleeping scheduler."""
        keys = [
            self.keys.delayed(timestamp),
            self.keys.timestamps(item),
            self.keys.delayed_schedule,
        ]
        self._delay(keys=keys, args=[item, str(timestamp), self.keys.scheduler_wakeup])

    def push_now(self, queue: str, payload: str) -> None:
        self.queues.push(queue, payload)

    def timestamps_of(self, item: str) -> list[int]:
        """The timestamps an item is delayed to (SMEMBERS order, as Ruby's ``scheduled_at``)."""
        found = self.redis.smembers(self.keys.timestamps(item))
        return [int(as_text(m).removeprefix("delayed:")) for m in found]

    def remove_item(self, item: str) -> int:
        """Ruby's ``remove_delayed``: LREM the item from each of its lists, SREM each timestamp;
        returns how many copies were removed (the emptied timestamps stay in the zset)."""
        pipe = self.redis.pipeline(transaction=False)
        for ts in self.timestamps_of(item):
            pipe.lrem(self.keys.delayed(ts), 0, item)
            pipe.srem(self.keys.timestamps(item), member(ts))
        return sum(int(n) for n in pipe.execute()[0::2])

    def remove_item_at(self, timestamp: int, item: str) -> int:
        """Remove an item from one timestamp only; the timestamp goes if it is left empty."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(self.keys.timestamps(item), member(timestamp))
        pipe.lrem(self.keys.delayed(timestamp), 0, item)
        removed = int(pipe.execute()[1])
        self._move(
            keys=[self.keys.delayed(timestamp), self.keys.delayed_schedule, self.keys.queues],
            args=[str(timestamp), self.keys.wakeup, "0"],
        )
        return removed

    def schedule_size(self) -> int:
        return int(self.redis.zcard(self.keys.delayed_schedule))

    def timestamp_size(self, timestamp: int) -> int:
        return int(self.redis.llen(self.keys.delayed(timestamp)))

    def count_items(self) -> int:
        """Items in every delayed list (one LLEN per timestamp, pipelined)."""
        pipe = self.redis.pipeline(transaction=False)
        for ts in self.timestamps():
            pipe.llen(self.keys.delayed(ts))
        return sum(int(n) for n in pipe.execute())

    def timestamps(self, start: int = 0, count: int = -1) -> list[int]:
        """Delayed timestamps, soonest first (``count`` -1: all)."""
        stop = -1 if count < 0 else start + count - 1
        return [int(as_text(t)) for t in self.redis.zrange(self.keys.delayed_schedule, start, stop)]

    def items_at(self, timestamp: int, start: int = 0, count: int = -1) -> list[str]:
        stop = -1 if count < 0 else start + count - 1
        return [as_text(i) for i in self.redis.lrange(self.keys.delayed(timestamp), start, stop)]

    def items_by_timestamp(self, timestamps: Sequence[int]) -> list[list[str]]:
        pipe = self.redis.pipeline(transaction=False)
        for ts in timestamps:
            pipe.lrange(self.keys.delayed(ts), 0, -1)
        return [[as_text(i) for i in items] for items in pipe.execute()]

    def next_timestamp(self, at_or_before: float | None = None) -> int | None:
        """The soonest timestamp (only one at or before ``at_or_before`` when given)."""
        high = "+inf" if at_or_before is None else str(int(at_or_before))
        found = self.redis.zrangebyscore(self.keys.delayed_schedule, "-inf", high, start=0, num=1)
        return int(as_text(found[0])) if found else None

    def move(self, timestamp: int, moves: Sequence[Move]) -> int:
        """Move ``moves`` (the head of ``delayed:<timestamp>``) in one script call; -1 if the list
        no longer starts with those items (read again)."""
        keys = [self.keys.delayed(timestamp), self.keys.delayed_schedule, self.keys.queues]
        keys += [m.target for m in moves]
        keys += [self.keys.timestamps(m.item) for m in moves]
        args = [str(timestamp), self.keys.wakeup, str(len(moves))]
        for m in moves:
            args += [m.item, m.payload, m.queue]
        return int(self._move(keys=keys, args=args))

    def reset(self) -> None:
        """Ruby's ``reset_delayed_queue``: every delayed list, timestamps set and the zset."""
        for ts in self.timestamps():
            items = self.items_at(ts)
            self.redis.delete(self.keys.delayed(ts), *{self.keys.timestamps(i) for i in items})
        self.redis.delete(self.keys.delayed_schedule)

    def subscribe_wakeups(self) -> redis.client.PubSub:
        """A subscription on the channel that ``push_delayed`` publishes to."""
        pubsub: redis.client.PubSub = self.redis.pubsub(  # type: ignore[no-untyped-call, unused-ignore]
            ignore_subscribe_messages=True
        )
        pubsub.subscribe(self.keys.scheduler_wakeup)
        return pubsub

    # --- master lock ---------------------------------------------------------------------------

    def lock_script(self, text: str) -> redis.commands.core.Script:
        return self.redis.register_script(text)

    def run_lock_script(self, script: redis.commands.core.Script, key: str, value: str) -> bool:
        return int(script(keys=[key], args=[value])) == 1

    def release_lock(self, key: str, value: str) -> bool:
        return int(self._release(keys=[key], args=[value])) == 1

    def lock_holder(self, key: str) -> str | None:
        value = self.redis.get(key)
        return None if value is None else as_text(value)

    # --- recurring schedules -------------------------------------------------------------------

    def push_recurring(self, name: str, queue: str | None, payload: str, enqueued_at: str) -> None:
        """A recurring job's fire: the push (none without a queue), then Ruby's
        ``last_enqueued_at`` record, written even when nothing could be pushed."""
        keys = [self.keys.queues, self.keys.queue(queue or ""), self.keys.last_enqueued_at]
        args = [queue or "", payload, name, enqueued_at, self.keys.wakeup]
        self._fire(keys=keys, args=args)

    def last_enqueued(self) -> dict[str, str]:
        raw = self.redis.hgetall(self.keys.last_enqueued_at)
        return {as_text(k): as_text(v) for k, v in raw.items()}

    def publish_next_runs(self, next_at: Mapping[str, float], ttl: int) -> None:
        """Replace the published next fire of every recurring entry (the master's own times)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.schedule_next)
        if next_at:
            pipe.hset(self.keys.schedule_next, mapping={n: repr(t) for n, t in next_at.items()})
            pipe.expire(self.keys.schedule_next, ttl)
        pipe.execute()

    def keep_next_runs(self, ttl: int) -> None:
        """Keep the published next fires alive while this scheduler is master."""
        self.redis.expire(self.keys.schedule_next, ttl)

    def next_runs(self) -> dict[str, float]:
        """The published next fires; an entry that cannot be read is left out."""
        out = {}
        for name, value in self.redis.hgetall(self.keys.schedule_next).items():
            with contextlib.suppress(ValueError):
                out[as_text(name)] = float(as_text(value))
        return out

    def persistent_schedules(self) -> dict[str, str]:
        raw = self.redis.hgetall(self.keys.persistent_schedules)
        return {as_text(k): as_text(v) for k, v in raw.items()}

    def set_persistent_schedule(self, name: str, config_json: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.persistent_schedules, name, config_json)
        pipe.sadd(self.keys.schedules_changed, name)
        pipe.execute()

    def remove_persistent_schedule(self, name: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(self.keys.persistent_schedules, name)
        pipe.sadd(self.keys.schedules_changed, name)
        pipe.execute()

    def take_schedule_changes(self) -> list[str]:
        """Names in ``schedules_changed``, popped (SCARD first: one command when idle)."""
        if not int(self.redis.scard(self.keys.schedules_changed)):
            return []
        names = []
        while (name := self.redis.spop(self.keys.schedules_changed)) is not None:
            names.append(as_text(name))
        return names

    def clear_schedule_changes(self) -> None:
        self.redis.delete(self.keys.schedules_changed)
