"""The standing run's faults where a pool could stay stuck or prune by mistake (issue 24).

- **fill redis**: the jobs' master at ``maxmemory`` (``noeviction``: its used memory as the limit)
  for 2 to 5 s; the workers must go on taking and finishing jobs (jobs done while full).
- **term in freeze**: the jobs' master frozen (SIGSTOP) for 6 s and one host's pool master sent
  TERM 2 s into it, its workers mostly idle (nothing can be reserved); it must exit by its
  ``--shutdown-timeout`` (25 s, the default): the seconds from TERM to exit. The pool restarts.
- **gil job**: a job stuck in C code holding the GIL past its limit of 1 s; it must fail as
  ``pyresque.JobTimeout``, never hold its slot.
- **foreign worker**: a worker registered on one host the way node-resque registers one (no
  Resque heartbeat, a live process that is not a Resque process, a job in its busy record); no
  pool may prune it or write a ``DirtyExit`` record for its job.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from pyresque.store.connection import connect

NAMES = ("fill redis", "term in freeze", "gil job", "foreign worker")
GIL_JOB = json.dumps({"class": "Ledger::HoldsTheGil", "args": [10**11]})
SHUTDOWN_TIMEOUT = 25.0  # the pools' --shutdown-timeout (the default)


@dataclass
class StuckFigures:
    full_seconds: float = 0.0
    done_while_full: int = 0
    term_exits: list[float] = field(default_factory=list)  # seconds from TERM to exit
    term_stuck: int = 0  # masters still running SHUTDOWN_TIMEOUT + 5 s after TERM
    gil_jobs: int = 0
    gil_timeouts: int = 0
    foreign: list[str] = field(default_factory=list)
    foreign_pruned: int = 0  # a pool's log says it pruned one
    foreign_dirty_exits: int = 0
    foreign_gone: int = 0  # not registered at the end (a prune, or a write a failover undid)

    def lines(self) -> list[str]:
        exits = sorted(self.term_exits)
        slowest = f"{exits[-1]:.1f}" if exits else "-"
        return [
            f"  full redis  {self.full_seconds:.1f} s full, {self.done_while_full} jobs done "
            "meanwhile",
            f"  TERM/freeze {len(exits)} exits, slowest {slowest} s after TERM "
            f"(deadline {SHUTDOWN_TIMEOUT:.0f} s), {self.term_stuck} past it",
            f"  GIL jobs    {self.gil_jobs} enqueued, {self.gil_timeouts} failed as JobTimeout",
            f"  foreign     {len(self.foreign)} workers, {self.foreign_pruned} pruned, "
            f"{self.foreign_dirty_exits} DirtyExit records, {self.foreign_gone} not registered "
            "at the end",
        ]

    def problems(self) -> list[str]:
        out = []
        if self.term_stuck or any(s > SHUTDOWN_TIMEOUT for s in self.term_exits):
            out.append("a TERM past its deadline")
        if self.foreign_pruned or self.foreign_dirty_exits:
            out.append("foreign workers pruned")
        if self.gil_timeouts < self.gil_jobs:
            out.append(f"{self.gil_jobs - self.gil_timeouts} GIL jobs not failed")
        return out


class StuckFaults:
    """Acts the four faults on a standing run (bench/standing.py's ``Run``) and keeps figures."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.figures = StuckFigures()
        self.writer = connect(run.url)  # durable with --durable: a failover keeps what it wrote
        self._full: tuple[int, float, float, int] | None = None  # port, until, since, done
        self._frozen: tuple[Any, float] | None = None  # the server process, thaw at
        self._terms: list[tuple[Any, Any, float]] = []  # host, master process, TERM sent at
        self._term_at: list[tuple[float, Any]] = []  # when to TERM, which host's master

    def busy(self) -> bool:
        return self._full is not None or self._frozen is not None

    def act(self, name: str, host: Any, now: float) -> bool:
        try:
            return self._act(name, host, now)
        except (redis.RedisError, OSError) as exc:  # Redis is down, frozen or failing over
            print(f"# fault {name} failed: {exc}", flush=True)
            return False

    def _act(self, name: str, host: Any, now: float) -> bool:
        if name == "gil job":
            self.writer.rpush("resque:queue:fleet", GIL_JOB)
            self.figures.gil_jobs += 1
            return True
        if name == "foreign worker":
            return self._foreign(host)
        if self.busy() or self._terms or self._term_at:
            return False  # one at a time
        if name == "fill redis":
            return self._fill(now)
        return self._term_in_freeze(host, now)

    def _fill(self, now: float) -> bool:
        cluster = self.run.cluster
        port = cluster.master_port()
        server = cluster.server(port)
        used = int(server.info("memory")["used_memory"])
        server.config_set("maxmemory-policy", "noeviction")
        server.config_set("maxmemory", str(used))
        until = now + self.run.rng.uniform(2, 5)
        self._full = (port, until, now, self.run.ledger.llen("ledger:done"))
        self.run.detail = f"{until - now:.1f} s at maxmemory {used} B"
        return True

    def _term_in_freeze(self, host: Any, now: float) -> bool:
        master = self.run.pools.masters.get(host.name)
        if master is None or master.poll() is not None:
            return False
        server = self.run.cluster.servers[self.run.cluster.master_port()]
        server.send_signal(signal.SIGSTOP)
        self._frozen = (server, now + 6.0)
        self._term_at.append((now + 2.0, host))
        self.run.detail = f"{host.name}: TERM 2 s into a 6 s freeze"
        return True

    def _foreign(self, host: Any) -> bool:
        """node-resque's worker registration (lib/core/worker.ts), for a live process of this
        machine that is not a Resque process (this bench), on ``host``'s hostname."""
        admin, n = self.writer, len(self.figures.foreign)
        name = f"{host.name}:{os.getpid()}"
        worker_id = f"{name}:foreign-{n}"
        admin.sadd("resque:workers", worker_id)
        admin.set(f"resque:worker:{worker_id}:started", int(time.time()))
        admin.set(
            f"resque:worker:ping:{name}",
            json.dumps({"time": int(time.time()), "name": name, "queues": f"foreign-{n}"}),
        )
        busy = {"run_at": time.ctime(), "queue": f"foreign-{n}", "worker": name}
        busy["payload"] = {"class": "sendEmail", "queue": f"foreign-{n}", "args": [n]}
        admin.set(f"resque:worker:{worker_id}", json.dumps(busy))
        self.figures.foreign.append(worker_id)
        return True

    def due(self, now: float, everything: bool = False) -> None:
        """Thaw, empty, TERM and restart what is due (``everything``: the chaos is over)."""
        if self._full is not None and (everything or now >= self._full[1]):
            port, _until, since, done = self._full
            self._full = None
            try:
                self.run.cluster.server(port).config_set("maxmemory", "0")
            except (redis.RedisError, OSError) as exc:  # frozen or restarted: again soon
                print(f"# emptying redis {port} failed: {exc}", flush=True)
                self._full = (port, now + 0.5, since, done)
                return
            self.figures.full_seconds += now - since
            self.figures.done_while_full += self.run.ledger.llen("ledger:done") - done
        if self._frozen is not None and (everything or now >= self._frozen[1]):
            self._frozen[0].send_signal(signal.SIGCONT)
            self._frozen = None
        for item in [i for i in self._term_at if everything or i[0] <= now]:
            self._term_at.remove(item)
            master = self.run.pools.masters.get(item[1].name)
            if master is not None and master.poll() is None:
                master.send_signal(signal.SIGTERM)
                self._terms.append((item[1], master, time.monotonic()))
        for term in list(self._terms):
            host, master, sent = term
            if master.poll() is not None:
                if master.returncode == 0:  # else another fault killed it meanwhile
                    self.figures.term_exits.append(time.monotonic() - sent)
            elif time.monotonic() - sent > SHUTDOWN_TIMEOUT + 5:
                self.figures.term_stuck += 1
                master.kill()
                master.wait(10)
            else:
                continue
            self._terms.remove(term)
            restarting = any(a == "start" and h is host for _w, a, h in self.run.later)
            if self.run.pools.masters.get(host.name) is master and not restarting:
                self.run.pools.start(host)

    def finish(self, jobs: redis.Redis, logs: str) -> None:
        """The figures that Redis and the pools' logs hold once the run is over (a GIL job put
        back by a kill is waited for: up to a minute); the foreign workers removed."""
        while self._terms or self._term_at or self.busy():
            self.due(time.monotonic(), everything=True)
            time.sleep(0.1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _gil_jobs_held(jobs):
            time.sleep(0.5)
        registered = {w.decode() for w in jobs.smembers("resque:workers")}
        self.figures.foreign_gone = sum(1 for w in self.figures.foreign if w not in registered)
        self.figures.foreign_pruned = sum(
            logs.count(f"Pruning dead worker: {w} ") for w in self.figures.foreign
        )
        for raw in jobs.lrange("resque:failed", 0, -1):
            try:
                record = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                continue
            exception, worker = str(record.get("exception")), str(record.get("worker"))
            if worker in self.figures.foreign:
                self.figures.foreign_dirty_exits += 1
            payload = record.get("payload")
            if exception == "pyresque.JobTimeout" and isinstance(payload, dict):
                self.figures.gil_timeouts += payload.get("class") == "Ledger::HoldsTheGil"
        for worker_id in self.figures.foreign:
            jobs.srem("resque:workers", worker_id)
            jobs.delete(f"resque:worker:{worker_id}", f"resque:worker:{worker_id}:started")


def _gil_jobs_held(jobs: redis.Redis) -> bool:
    """Whether a GIL job is still queued or in flight."""
    if GIL_JOB.encode() in jobs.lrange("resque:queue:fleet", 0, -1):
        return True
    return any(
        GIL_JOB.encode() in jobs.hvals(key)
        for key in jobs.scan_iter("resque:inflight:*")
        if jobs.type(key) == b"hash"
    )
