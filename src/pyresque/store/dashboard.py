"""The store's typed reads and writes for the dashboard, its metrics and the pool publisher.

``Store.dashboard`` of :class:`pyresque.store.operations.Store`, kept apart so that the worker's
store stays small: the web layer reads through these, never through redis-py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoPermissionError, OutOfMemoryError, ReadOnlyError
from redis.typing import EncodableT, FieldT

from pyresque.store.cycle import as_text
from pyresque.wire.keys import NAMESPACE_MARKERS, Keys, namespace_of

# the server refused a write for good (an ACL rule, a read-only replica, maxmemory)
WRITE_REFUSED = (NoPermissionError, ReadOnlyError, OutOfMemoryError)


class DashboardStore:
    """Reads and writes of the dashboard, on the store's client and namespace."""

    def __init__(self, client: Any, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def queue_page(self, queue: str, start: int, count: int) -> tuple[int, list[str]]:
        """(length, ``count`` payloads from ``start``) of one queue in one round trip (no full read)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(self.keys.queue(queue))
        pipe.lrange(self.keys.queue(queue), start, start + count - 1)
        total, items = pipe.execute()
        return int(total), [as_text(p) for p in items]

    def failure_page(self, start: int, count: int) -> tuple[int, list[str]]:
        """(number of failure records, ``count`` records from ``start``) in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(self.keys.failed)
        pipe.lrange(self.keys.failed, start, start + count - 1)
        total, items = pipe.execute()
        return int(total), [as_text(r) for r in items]

    def failure_at(self, index: int) -> str | None:
        raw = self.redis.lindex(self.keys.failed, index)
        return None if raw is None else as_text(raw)

    def worker_rows(
        self, worker_ids: Sequence[str]
    ) -> list[tuple[str | None, str | None, int, int]]:
        """For each worker: busy record (or None), started time, processed and failed counts."""
        pipe = self.redis.pipeline(transaction=False)
        for wid in worker_ids:
            pipe.get(self.keys.worker(wid))
            pipe.get(self.keys.worker_started(wid))
            pipe.get(self.keys.worker_processed(wid))
            pipe.get(self.keys.worker_failed_count(wid))
        raw = pipe.execute()
        out = []
        for i in range(len(worker_ids)):
            job, started, processed, failed = raw[4 * i : 4 * i + 4]
            out.append(
                (
                    None if job is None else as_text(job),
                    None if started is None else as_text(started),
                    int(processed or 0),
                    int(failed or 0),
                )
            )
        return out

    def busy_records(self, worker_ids: Sequence[str]) -> list[str | None]:
        if not worker_ids:
            return []
        values = self.redis.mget([self.keys.worker(w) for w in worker_ids])
        return [None if v is None else as_text(v) for v in values]

    def redis_info(self) -> dict[str, str]:
        """Redis INFO as text; values that could carry a secret are left to the caller to filter."""
        return {str(k): str(v) for k, v in self.redis.info().items()}

    def _every_key(self) -> str:
        """The SCAN pattern of every key of the namespace (its glob characters escaped)."""
        return re.sub(r"([*?\[\]\\])", r"\\\1", self.keys.prefix) + "*"

    def namespace_is_empty(self) -> bool:
        """True when no key of this namespace exists (SCAN until the first one)."""
        return next(iter(self.redis.scan_iter(match=self._every_key(), count=1000)), None) is None

    def resque_namespaces(self, limit: int = 20) -> list[str]:
        """Namespaces that hold Resque keys (a ``queues``, ``workers`` or ``stat:processed``
        key), sorted; ``""`` is Resque without a namespace. A SCAN of the whole database, for the
        error path of a command given an empty namespace."""
        found: set[str] = set()
        for marker, kind in NAMESPACE_MARKERS.items():
            for raw in self.redis.scan_iter(match=f"*{marker}", count=1000, _type=kind):
                namespace = namespace_of(as_text(raw))
                if namespace is not None:
                    found.add(namespace)
                if len(found) >= limit:
                    return sorted(found)
        return sorted(found)

    def namespace_keys(self, limit: int) -> list[tuple[str, str, int]]:
        """Up to ``limit`` keys of the namespace (SCAN, never KEYS) with their type and size."""
        names: list[str] = []
        for raw in self.redis.scan_iter(match=self._every_key(), count=1000):
            names.append(as_text(raw))
            if len(names) >= limit:
                break
        names.sort()
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.type(name)
        types = [as_text(t) for t in pipe.execute()]
        sizers = {
            "list": "llen",
            "set": "scard",
            "zset": "zcard",
            "hash": "hlen",
            "string": "strlen",
        }
        pipe = self.redis.pipeline(transaction=False)
        for name, kind in zip(names, types, strict=True):
            getattr(pipe, sizers.get(kind, "exists"))(name)
        sizes = pipe.execute()
        return [(n, t, int(s)) for n, t, s in zip(names, types, sizes, strict=True)]

    def job_metrics(self, minutes: Sequence[int]) -> list[dict[str, int]]:
        """The per-job metrics hash of each minute (empty where none was recorded)."""
        pipe = self.redis.pipeline(transaction=False)
        for minute in minutes:
            pipe.hgetall(self.keys.metrics_jobs(minute))
        return [{as_text(k): int(v) for k, v in h.items()} for h in pipe.execute()]

    def record_samples(
        self, minute: int, depths: dict[str, int], busy: int, idle: int, ttl: int
    ) -> bool:
        """Store this minute's queue depths and busy/idle counts (the last write in a minute wins).

        False when the server refuses the write (a user allowed only to read, a read-only replica,
        a full Redis): the samples are the charts' history, never a reason to fail a read.
        """
        pipe = self.redis.pipeline(transaction=False)
        if depths:
            mapping: dict[FieldT, EncodableT] = dict(depths.items())
            pipe.hset(self.keys.metrics_queues(minute), mapping=mapping)
            pipe.expire(self.keys.metrics_queues(minute), ttl)
        pipe.hset(self.keys.metrics_workers(minute), mapping={"busy": busy, "idle": idle})
        pipe.expire(self.keys.metrics_workers(minute), ttl)
        try:
            pipe.execute()
        except WRITE_REFUSED:
            return False
        return True

    def samples(self, minutes: Sequence[int]) -> list[tuple[dict[str, int], dict[str, int]]]:
        """(queue depths, worker counts) sampled in each minute (empty where none)."""
        pipe = self.redis.pipeline(transaction=False)
        for minute in minutes:
            pipe.hgetall(self.keys.metrics_queues(minute))
            pipe.hgetall(self.keys.metrics_workers(minute))
        raw = pipe.execute()
        return [
            (
                {as_text(k): int(v) for k, v in raw[2 * i].items()},
                {as_text(k): int(v) for k, v in raw[2 * i + 1].items()},
            )
            for i in range(len(minutes))
        ]

    def publish_pool(self, pool_id: str, state: str, ttl: int, now: float) -> None:
        """SET the pool's state with an expiry (gone when the master dies) and index it."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.pool(pool_id), state, ex=ttl)
        pipe.zadd(self.keys.pools, {pool_id: now})
        pipe.zremrangebyscore(self.keys.pools, "-inf", now - 3600)  # long dead, never read since
        pipe.execute()

    def unpublish_pool(self, pool_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self.keys.pool(pool_id))
        pipe.zrem(self.keys.pools, pool_id)
        pipe.execute()

    def pool_states(self) -> dict[str, str]:
        """pool id -> state JSON of every live pool; ids whose state expired leave the index."""
        ids = [as_text(p) for p in self.redis.zrange(self.keys.pools, 0, -1)]
        if not ids:
            return {}
        values = self.redis.mget([self.keys.pool(p) for p in ids])
        gone = [p for p, v in zip(ids, values, strict=True) if v is None]
        if gone:
            self.redis.zrem(self.keys.pools, *gone)
        return {p: as_text(v) for p, v in zip(ids, values, strict=True) if v is not None}
