"""The pool master's window to the world: its state in Redis for the dashboard, per-minute samples
of queue depths and busy/idle workers for the charts, and an optional Prometheus endpoint.

The master calls :meth:`PoolPublisher.tick` from its loop with a read-only :class:`MasterView`;
the publisher decides when to write (every ``period`` seconds). The state key is SET with an expiry
of a few periods, so a master that dies (even by SIGKILL) vanishes from the dashboard by itself.

The metrics endpoint is served from the master's own loop, never from a thread: the master forks,
and a thread holding a lock at fork time leaves that lock held in the child. A request is answered
from the last published state, without touching Redis.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pyresque.errors import ConfigError
from pyresque.store.connection import RETRYABLE_ERRORS
from pyresque.store.operations import Store
from pyresque.wire.keys import SAMPLES_TTL

if TYPE_CHECKING:
    from http.server import HTTPServer

log = logging.getLogger(__name__)

PERIOD = 5.0
EXPIRY_PERIODS = 3
MAX_REQUESTS_PER_TICK = 8


@dataclass(frozen=True)
class WorkerState:
    """One worker process as the master sees it."""

    pid: int
    group: str
    state: str  # "starting", "running" or "stopping"
    uss: int = 0  # bytes, with its job child
    pss: int = 0
    started_at: float | None = None


@dataclass(frozen=True)
class GroupState:
    """A queue group: how many workers it should have, has, and its respawn backoff."""

    name: str
    desired: int
    running: int
    backoff: float = 0.0  # seconds until the group may respawn again; 0 when not backing off


@dataclass(frozen=True)
class MasterView:
    """What the publisher needs to know about the master, built by the master each tick."""

    host: str
    pid: int
    app: str
    config_source: str
    started_at: float
    groups: Sequence[GroupState] = ()
    workers: Sequence[WorkerState] = ()
    memory_limit: int | None = None
    restarts: int = 0
    shutting_down: bool = False

    @property
    def pool_id(self) -> str:
        return f"{self.host}:{self.pid}"


def state_json(view: MasterView, now: float) -> str:
    """The published document (the dashboard's pools page and metrics read it)."""
    data: dict[str, Any] = {
        "id": view.pool_id,
        "host": view.host,
        "pid": view.pid,
        "app": view.app,
        "config_source": view.config_source,
        "started_at": view.started_at,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(view.started_at)),
        "published_at": now,
        "memory_limit": view.memory_limit,
        "restarts": view.restarts,
        "shutting_down": view.shutting_down,
        "groups": [asdict(g) for g in view.groups],
        "workers": [asdict(w) for w in view.workers],
    }
    return json.dumps(data, separators=(",", ":"))


@dataclass
class _Last:
    """What the metrics endpoint answers with: the state and samples of the last publish."""

    state: dict[str, Any] = field(default_factory=dict)
    depths: dict[str, int] = field(default_factory=dict)
    busy: int = 0
    idle: int = 0


class PoolPublisher:
    """Publishes one master's state and samples; optionally serves ``/metrics``."""

    def __init__(
        self,
        store: Store,
        period: float = PERIOD,
        metrics_port: int | None = None,
        metrics_host: str = "",
    ) -> None:
        self.store = store
        self.period = period
        self._next_at = 0.0
        self.last = _Last()
        self._pool_id: str | None = None
        self._server: HTTPServer | None = None
        if metrics_port is not None:
            try:
                import prometheus_client  # noqa: F401 - needed by every scrape
            except ImportError as exc:
                raise ConfigError(
                    "--metrics-port needs prometheus_client: pip install 'pyresque[web]'"
                ) from exc
            self._server = _metrics_server(metrics_host, metrics_port, self._exposition)
            log.info("metrics: serving Prometheus metrics on port %d", self.metrics_port)

    @property
    def metrics_port(self) -> int | None:
        return None if self._server is None else int(self._server.server_address[1])

    def next_at(self) -> float:
        return self._next_at

    def wait_fds(self) -> list[int]:
        """File descriptors the master may add to its wait, to answer scrapes without delay."""
        return [] if self._server is None else [self._server.fileno()]

    def tick(self, now: float, view: MasterView) -> None:
        """Answer pending scrapes; publish when a period has passed. Never raises for Redis.

        ``now`` is wall-clock time (``time.time()``, not the master's monotonic clock): samples are
        filed under epoch minutes that every host and dashboard agree on.
        """
        self.serve_pending()
        if now < self._next_at:
            return
        self._next_at = now + self.period
        self._pool_id = view.pool_id
        try:
            self.publish(now, view)
        except RETRYABLE_ERRORS as exc:
            log.warning("publish: pool state not written: %s", exc)

    def publish(self, now: float, view: MasterView) -> None:
        text = state_json(view, now)
        ttl = max(int(self.period * EXPIRY_PERIODS), 2)
        self.store.dashboard.publish_pool(view.pool_id, text, ttl, now)
        names = self.store.queue_names()
        depths = self.store.queue_sizes(names)
        ids = self.store.worker_ids()
        busy = sum(1 for record in self.store.dashboard.busy_records(ids) if record is not None)
        self.store.dashboard.record_samples(
            int(now) // 60, depths, busy, len(ids) - busy, SAMPLES_TTL
        )
        self.last = _Last(json.loads(text), depths, busy, len(ids) - busy)

    def serve_pending(self) -> None:
        """Answer the scrapes already waiting, without blocking the loop."""
        server = self._server
        for _ in range(MAX_REQUESTS_PER_TICK):
            if server is None or not select.select([server], [], [], 0)[0]:
                return
            server.handle_request()

    def close(self) -> None:
        """On shutdown: remove this pool from the dashboard at once and stop serving."""
        if self._pool_id is not None:
            try:
                self.store.dashboard.unpublish_pool(self._pool_id)
            except RETRYABLE_ERRORS as exc:
                log.warning("publish: pool state not removed (it expires): %s", exc)
        self.close_in_child()

    def close_in_child(self) -> None:
        """In a forked worker: let go of the listening socket (no Redis, no logging)."""
        if self._server is not None:
            self._server.socket.close()
            self._server = None

    def _exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_LastCollector(self.last))
        return bytes(generate_latest(registry))


class _LastCollector:
    def __init__(self, last: _Last) -> None:
        self.last = last

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily("pyresque_queue_length", "Jobs waiting", labels=["queue"])
        for name, size in self.last.depths.items():
            depth.add_metric([name], size)
        workers = GaugeMetricFamily("pyresque_workers", "Registered workers", labels=["state"])
        workers.add_metric(["busy"], self.last.busy)
        workers.add_metric(["idle"], self.last.idle)
        yield depth
        yield workers
        if self.last.state:
            yield from pool_families({str(self.last.state["id"]): self.last.state})


def _metrics_server(host: str, port: int, body: Callable[[], bytes]) -> HTTPServer:
    # imported here: http.server (with email and html) is needed only with --metrics-port
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        timeout = 1.0  # a slow client cannot hold the master's loop for long

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            payload = body()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = HTTPServer((host, port), Handler, bind_and_activate=False)
    server.allow_reuse_address = True
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.server_bind()
    server.server_activate()
    server.timeout = 0
    return server


def pool_families(states: Mapping[str, Mapping[str, Any]]) -> Iterator[Any]:
    """Prometheus metrics of published pool states (the master's endpoint and the dashboard's)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    up = GaugeMetricFamily("pyresque_pool_up", "A live pool master", labels=["pool", "app"])
    workers = GaugeMetricFamily(
        "pyresque_pool_workers", "Workers per group", labels=["pool", "group", "state"]
    )
    backoff = GaugeMetricFamily(
        "pyresque_pool_backoff_seconds",
        "Respawn delay of a group in backoff (0 when none)",
        labels=["pool", "group"],
    )
    restarts = CounterMetricFamily(
        "pyresque_pool_worker_restarts", "Workers respawned after dying", labels=["pool"]
    )
    limit = GaugeMetricFamily(
        "pyresque_pool_memory_limit_bytes", "The pool's memory limit", labels=["pool"]
    )
    used = GaugeMetricFamily(
        "pyresque_pool_memory_used_bytes", "Sum of the workers' PSS", labels=["pool"]
    )
    uss = GaugeMetricFamily(
        "pyresque_pool_worker_uss_bytes",
        "A worker's unique memory",
        labels=["pool", "pid", "group"],
    )
    for pool_id, state in states.items():
        up.add_metric([pool_id, str(state.get("app", ""))], 1)
        for g in state.get("groups", []):
            name = str(g.get("name", ""))
            workers.add_metric([pool_id, name, "desired"], float(g.get("desired", 0)))
            workers.add_metric([pool_id, name, "running"], float(g.get("running", 0)))
            backoff.add_metric([pool_id, name], float(g.get("backoff", 0) or 0))
        restarts.add_metric([pool_id], float(state.get("restarts", 0)))
        if state.get("memory_limit"):
            limit.add_metric([pool_id], float(state["memory_limit"]))
        pool_workers = [w for w in state.get("workers", []) if isinstance(w, dict)]
        used.add_metric([pool_id], float(sum(int(w.get("pss", 0)) for w in pool_workers)))
        for w in pool_workers:
            uss.add_metric(
                [pool_id, str(w.get("pid")), str(w.get("group"))], float(w.get("uss", 0))
            )
    yield from (up, workers, backoff, restarts, limit, used, uss)
