"""What each dashboard page shows, read through :class:`~pyresque.store.operations.Store` and shaped into
plain rows; no HTML here and no Redis command either.

Records may come from Ruby Resque as well as from pyresque, and may be malformed: every field is
read defensively, so a bad record shows as such instead of breaking the page.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from pyresque.store.operations import Store
from pyresque.web import jobstats
from pyresque.wire import protocol
from pyresque.wire.jobmetrics import SETTLED_AFTER
from pyresque.worker.recovery import WorkerId

INFO_SECRETS = ("pass", "auth", "requirepass", "masterauth", "tls", "user")


def digest(raw: str) -> str:
    """A short fingerprint of a record, sent back with an action so it hits the record shown."""
    return hashlib.sha1(raw.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _obj(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def show_args(payload: Any) -> str:
    """A payload's args as compact JSON text (escaped later by the template)."""
    if not isinstance(payload, dict):
        return json.dumps(payload, ensure_ascii=False)
    return json.dumps(payload.get("args"), ensure_ascii=False)


@dataclass
class Job:
    queue: str
    raw: str
    klass: str
    args: str

    @classmethod
    def parse(cls, queue: str, raw: str) -> Job:
        payload = _obj(raw)
        if not payload:
            return cls(queue, raw, "(unreadable payload)", raw)
        return cls(queue, raw, str(payload.get("class")), show_args(payload))


@dataclass
class WorkerRow:
    id: str
    host: str
    pid: int | None
    queues: list[str]
    started: str | None
    processed: int
    failed: int
    heartbeat_age: float | None
    job: Job | None = None
    run_at: str | None = None

    @property
    def state(self) -> str:
        return "working" if self.job else "idle"


def worker_rows(store: Store) -> list[WorkerRow]:
    ids = store.worker_ids()
    beats = store.heartbeats()
    now = store.server_time()
    out = []
    for wid, (busy, started, processed, failed) in zip(
        ids, store.dashboard.worker_rows(ids), strict=True
    ):
        parsed = WorkerId.parse(wid)
        beat = protocol.parse_heartbeat(beats[wid]) if wid in beats else None
        row = WorkerRow(
            id=wid,
            host=parsed.host if parsed else wid,
            pid=parsed.pid if parsed else None,
            queues=parsed.queues.split(",") if parsed else [],
            started=protocol.shown_time(started),
            processed=processed,
            failed=failed,
            heartbeat_age=None if beat is None else max(now - beat, 0.0),
        )
        record = _obj(busy)
        if busy is not None:
            payload = record.get("payload")
            row.job = Job(
                str(record.get("queue", "")),
                busy,
                str(payload.get("class")) if isinstance(payload, dict) else "(unreadable)",
                show_args(payload),
            )
            row.run_at = str(record.get("run_at", ""))
        out.append(row)
    return out


@dataclass
class Overview:
    queues: list[tuple[str, int]]
    working: list[WorkerRow]
    workers: int
    processed: int
    failed: int
    failures: int
    paused: bool
    pools: int


def overview(store: Store) -> Overview:
    names = store.queue_names()
    sizes = store.queue_sizes(names)
    ids = store.worker_ids()
    working = [w for w in worker_rows(store) if w.job] if ids else []
    processed, failed = store.stats()
    return Overview(
        queues=[(q, sizes[q]) for q in names],
        working=working,
        workers=len(ids),
        processed=processed,
        failed=failed,
        failures=store.failure_count(),
        paused=store.paused_all(),
        pools=len(store.dashboard.pool_states()),
    )


@dataclass
class Page:
    """One page of a long list: where it starts, how many there are, what is on it."""

    start: int
    per_page: int
    total: int
    items: list[Any] = field(default_factory=list)

    @property
    def prev_start(self) -> int | None:
        return max(self.start - self.per_page, 0) if self.start > 0 else None

    @property
    def next_start(self) -> int | None:
        nxt = self.start + self.per_page
        return nxt if nxt < self.total else None


def queue_page(store: Store, queue: str, start: int, per_page: int) -> Page:
    total, raws = store.dashboard.queue_page(queue, start, per_page)
    return Page(start, per_page, total, [Job.parse(queue, r) for r in raws])


@dataclass
class FailureRow:
    index: int
    digest: str
    failed_at: str
    queue: str
    klass: str
    args: str
    exception: str
    error: str
    backtrace: list[str]
    worker: str
    retried_at: str | None
    raw: str


def failure_row(index: int, raw: str) -> FailureRow:
    rec = _obj(raw)
    payload = rec.get("payload")
    backtrace = rec.get("backtrace")
    return FailureRow(
        index=index,
        digest=digest(raw),
        failed_at=str(rec.get("failed_at", "")),
        queue=str(rec.get("queue", "")),
        klass=str(payload.get("class")) if isinstance(payload, dict) else "(unreadable)",
        args=show_args(payload),
        exception=str(rec.get("exception", "(unreadable record)" if not rec else "")),
        error=str(rec.get("error", "")),
        backtrace=[str(b) for b in backtrace] if isinstance(backtrace, list) else [],
        worker=str(rec.get("worker", "")),
        retried_at=str(rec["retried_at"]) if rec.get("retried_at") else None,
        raw=raw,
    )


FILTER_CHUNK = 1000


def _matches(raw: str, queue: str, klass: str) -> bool:
    rec = _obj(raw)
    payload = rec.get("payload")
    name = str(payload.get("class")) if isinstance(payload, dict) else "(unreadable)"
    return (not queue or str(rec.get("queue", "")) == queue) and (not klass or name == klass)


def failure_page(store: Store, start: int, per_page: int, queue: str = "", klass: str = "") -> Page:
    """A page of failure records, optionally only those of one queue and/or job class.

    Unfiltered: one LRANGE of the page. Filtered: the list is read in chunks (never all at once)
    and the matches counted, since Redis cannot filter a list by a field of its JSON items.
    """
    if not queue and not klass:
        total, raws = store.dashboard.failure_page(start, per_page)
        return Page(start, per_page, total, [failure_row(start + i, r) for i, r in enumerate(raws)])
    page = Page(start, per_page, 0)
    offset = 0
    # a cheap necessary condition first: the name appears in the record's text as it is
    hints = [t for t in (queue, klass) if t and json.dumps(t)[1:-1] == t]
    while True:
        _, raws = store.dashboard.failure_page(offset, FILTER_CHUNK)
        for i, raw in enumerate(raws):
            if not all(h in raw for h in hints) or not _matches(raw, queue, klass):
                continue
            if start <= page.total < start + per_page:
                page.items.append(failure_row(offset + i, raw))
            page.total += 1
        if len(raws) < FILTER_CHUNK:
            return page
        offset += FILTER_CHUNK


def redis_info(store: Store) -> list[tuple[str, str]]:
    """Redis INFO without anything that could name a credential."""
    info = store.dashboard.redis_info()
    return sorted((k, v) for k, v in info.items() if not any(s in k.lower() for s in INFO_SECRETS))


@dataclass
class PoolWorker:
    pid: int
    group: str
    state: str
    uss: int
    pss: int


@dataclass
class PoolRow:
    id: str
    data: dict[str, Any]
    workers: list[PoolWorker]


def pools(store: Store) -> list[PoolRow]:
    out = []
    for pool_id, text in sorted(store.dashboard.pool_states().items()):
        data = _obj(text)
        workers = [
            PoolWorker(
                int(w.get("pid", 0)),
                str(w.get("group", "")),
                str(w.get("state", "")),
                int(w.get("uss", 0)),
                int(w.get("pss", 0)),
            )
            for w in data.get("workers", [])
            if isinstance(w, dict)
        ]
        out.append(PoolRow(pool_id, data, workers))
    return out


def minutes_back(now: float, count: int) -> list[int]:
    """The last ``count`` minute numbers, oldest first, ending with the current one."""
    current = int(now) // 60
    return list(range(current - count + 1, current + 1))


class MinuteCache:
    """Per-job metrics of completed minutes, kept in memory: only the workers' current minute
    changes, so an 8-hour page reads the whole window from Redis once, then one minute a time."""

    def __init__(self) -> None:
        self._done: dict[int, dict[str, int]] = {}
        self._lock = threading.Lock()

    def hashes(self, store: Store, minutes: list[int], now: float) -> list[dict[str, int]]:
        with self._lock:  # pages are served from a thread pool
            return self._hashes(store, minutes, now)

    def _hashes(self, store: Store, minutes: list[int], now: float) -> list[dict[str, int]]:
        # a minute is final once the workers have written its figures, a few seconds after it ends
        current = int(now - SETTLED_AFTER) // 60
        missing = [m for m in minutes if m not in self._done]
        fetched = (
            dict(zip(missing, store.dashboard.job_metrics(missing), strict=True)) if missing else {}
        )
        for minute, fields in fetched.items():
            if minute < current:
                self._done[minute] = fields
        for minute in [m for m in self._done if m < minutes[0] - 60]:
            self._done.pop(minute, None)
        return [self._done[m] if m in self._done else fetched[m] for m in minutes]


def job_metrics(
    store: Store, now: float, hours: int, cache: MinuteCache
) -> list[jobstats.JobTotals]:
    minutes = minutes_back(now, hours * 60)
    return jobstats.summarize(cache.hashes(store, minutes, now))


def job_series(
    store: Store, now: float, hours: int, name: str | None, cache: MinuteCache
) -> dict[str, Any]:
    minutes = minutes_back(now, hours * 60)
    return jobstats.per_minute(minutes, cache.hashes(store, minutes, now), name)


def sample_series(store: Store, now: float, minutes: int = 60) -> dict[str, Any]:
    """Queue depths and busy/idle workers per minute over the last hour, for the charts."""
    mins = minutes_back(now, minutes)
    samples = store.dashboard.samples(mins)
    queues = sorted({q for depths, _ in samples for q in depths})
    return {
        "minute": [m * 60 for m in mins],
        "queues": {q: [d.get(q) for d, _ in samples] for q in queues},
        "busy": [w.get("busy") for _, w in samples],
        "idle": [w.get("idle") for _, w in samples],
    }
