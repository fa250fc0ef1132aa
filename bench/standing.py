"""The standing chaos run: a fleet of pools, one Redis behind Sentinel, every fault at once.

Hosts (network + UTS namespaces where allowed, else this machine alone) each run a pool on the
queue ``fleet``; the jobs' Redis is a master, a replica and three sentinels (AOF, fsync always),
reached through a ``redis+sentinel://`` URL; a feeder enqueues numbered jobs, and every job counts
its start and end in a separate ledger Redis that no fault touches. For ``--duration`` seconds,
every ~0.2 s one fault, chosen at random with the weights in :data:`FAULTS`: SIGKILL of a worker, a
job child, a pool master (restarted) or a whole host (restarted a few seconds later), a Redis
crash and restart, a frozen Redis (SIGSTOP/SIGCONT), all client connections cut (CLIENT KILL), a
host partitioned from Redis (healed later), a hostile payload (bench/standing_faults.py); and one Sentinel
failover in the middle. Then the faults stop, the fleet drains, every master gets TERM, and the run
prints:

  enqueued    jobs whose enqueue call returned
  done        distinct ids performed to the end (ledger)
  lost        enqueued ids never started and not in Redis (queued, in flight or failed)
  duplicated  performs beyond the first (at-least-once delivery)
  stuck       jobs still queued or in flight after the drain
  zombies     processes left in Z state for more than 1 s
  orphans     pool processes whose parent died and that lived on past the grace

    python bench/chaos.py --standing [--duration 180] [--hosts 3] [--workers 2] [--seed N]
        [--durable] [--no-namespaces]

Its parts: standing_faults.py (the hosts, their pools, the hostile payloads), stuckfaults.py (the
faults where a pool could stay stuck or prune by mistake) and standing_report.py (the accounting
and the report).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from common import install_sigterm_handler
from standing_faults import HEARTBEAT, HOSTILE_KINDS, PRUNE, HostPools, LocalHost, hostile_payload
from standing_report import StandingReport, account, log_facts
from stuckfaults import NAMES as STUCK_FAULTS
from stuckfaults import StuckFaults

from harness import proctable
from harness.fleet import Fleet, namespaces_unavailable
from harness.ledger import Feeder, wait_drained
from harness.redis_server import start_redis_server
from harness.sentinels import SentinelCluster, start_sentinel_cluster
from pyresque.store.connection import connect

FAULTS = {
    "kill worker": 30,
    "kill job child": 30,
    "kill master": 4,
    "kill host": 2,
    "restart redis": 1,
    "freeze redis": 2,
    "cut connections": 5,
    "partition host": 2,
    "hostile payload": 6,
    # bench/stuckfaults.py: where a pool could stay stuck or prune by mistake
    "fill redis": 1,
    "term in freeze": 1,
    "gil job": 1,
    "foreign worker": 1,
}
ZOMBIE_GRACE, ORPHAN_GRACE = 1.0, 15.0  # a busy worker whose master died finishes its job first


class Watch:
    """Samples each host's processes for zombies and orphans that outlive their grace."""

    def __init__(self) -> None:
        self.first_seen: dict[tuple[str, int, str], float] = {}
        self.zombies: dict[int, str] = {}
        self.orphans: dict[int, str] = {}

    def sample(self, hosts: list[Any]) -> None:
        now, me = time.monotonic(), os.getpid()
        table = proctable.snapshot()
        seen = set()
        for host in hosts:
            host.reap()
            pids = set(host.pids())
            for pid in pids:
                st = table.get(pid)
                if st is None:
                    continue
                kind = "Z" if st.state == "Z" else "O" if st.ppid not in pids | {me} else ""
                if not kind:
                    continue
                key = (host.name, pid, kind)
                seen.add(key)
                age = now - self.first_seen.setdefault(key, now)
                found = self.zombies if kind == "Z" else self.orphans
                if age > (ZOMBIE_GRACE if kind == "Z" else ORPHAN_GRACE) and pid not in found:
                    found[pid] = (
                        f"{host.name} pid {pid} ({proctable.title(pid)[:60]!r}) {age:.0f} s"
                    )
        for key in set(self.first_seen) - seen:
            del self.first_seen[key]


class Run:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        reason = None if args.no_namespaces else namespaces_unavailable()
        self.fleet = Fleet(args.hosts) if not args.no_namespaces and reason is None else None
        self.hosts: list[Any] = self.fleet.hosts if self.fleet else [LocalHost()]
        self.where = "namespaces" if self.fleet else f"this machine only: {reason or 'asked'}"
        address = self.fleet.server_addr if self.fleet else "127.0.0.1"
        self.cluster: SentinelCluster = start_sentinel_cluster(address=address, aof=True)
        self.url = self.cluster.url + ("?wait=1&wait_timeout=300" if args.durable else "")
        self.ledger_server = start_redis_server()
        self.ledger = self.ledger_server.client()
        env = {
            "REDIS_URL": self.url,
            "LEDGER_URL": self.ledger_server.url,
            "RESQUE_HEARTBEAT_INTERVAL": str(HEARTBEAT),
            "RESQUE_PRUNE_INTERVAL": str(PRUNE),
        }
        self.pools = HostPools(self.hosts, args.workers, tmp, env)
        self.faults: collections.Counter[str] = collections.Counter()
        self.hostile: collections.Counter[str] = collections.Counter()
        self.later: list[tuple[float, str, Any]] = []  # (when, action, host)
        self.watch = Watch()
        self.admin = connect(self.cluster.url)
        self.began = time.monotonic()
        self.timeline: list[str] = []
        self.detail = ""
        self.stuck = StuckFaults(self)

    def close(self) -> None:
        if self.args.keep_logs:
            os.makedirs(self.args.keep_logs, exist_ok=True)
            for log in Path(self.cluster.directory).glob("*.log"):
                with contextlib.suppress(OSError):
                    (Path(self.args.keep_logs) / log.name).write_bytes(log.read_bytes())
        for host in self.hosts:
            with contextlib.suppress(Exception):
                host.kill()
        self.cluster.stop()
        self.ledger_server.stop()
        if self.fleet is not None:
            self.fleet.close()

    def fault(self, now: float) -> None:
        names = [n for n in FAULTS if n != "hostile payload" or not self.args.no_hostile]
        if self.fleet is None or len(self.hosts) < 2:
            names.remove("partition host")
        name = self.rng.choices(names, [FAULTS[n] for n in names])[0]
        if self.act(name, now):
            self.faults[name] += 1
            if name not in ("kill worker", "kill job child", "hostile payload"):
                self.timeline.append(f"{now - self.began:6.1f} s {name} {self.detail}")

    def act(self, name: str, now: float) -> bool:
        host = self.rng.choice(self.hosts)
        self.detail = host.name
        table = proctable.snapshot()
        workers, kids = self.pools.tree(host, table)
        if name in STUCK_FAULTS:
            return self.stuck.act(name, host, now)
        if name in ("kill worker", "kill job child"):
            victims = workers if name == "kill worker" else kids
            if not victims:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.rng.choice(victims), 9)
            return True
        if name == "kill master":
            if self.pools.kill_master(host):
                self.pools.start(host)
                return True
            return False
        if name == "kill host":
            if any(a == "start" and h is host for _w, a, h in self.later):
                return False
            host.kill()
            self.later.append((now + self.rng.uniform(PRUNE, PRUNE + 5), "start", host))
            return True
        if name == "partition host":
            if any(a == "heal" for _w, a, _h in self.later):
                return False  # one at a time: never cut every host off
            host.partition()
            self.later.append((now + self.rng.uniform(1, 2 * PRUNE), "heal", host))
            return True
        return self.redis_fault(name)

    def redis_fault(self, name: str) -> bool:
        try:
            if name == "restart redis":
                self.cluster.restart_master()
            elif name == "freeze redis":
                seconds = self.rng.uniform(0.2, 2.5)
                self.detail = f"{seconds:.1f} s (sentinel down-after 1 s)"
                self.cluster.freeze_master(seconds)
            elif name == "cut connections":
                master = self.cluster.server(self.cluster.master_port())
                master.client_kill_filter(_type="normal")
            elif name == "hostile payload":
                kinds = [k for k in HOSTILE_KINDS if k != "20 MB" or self.hostile[k] < 3]
                kind = self.rng.choice(kinds)
                self.admin.rpush(
                    "resque:queue:fleet", hostile_payload(kind, sum(self.hostile.values()))
                )
                self.hostile[kind] += 1
        except (redis.RedisError, OSError, RuntimeError) as exc:
            print(f"# fault {name} failed: {exc}", flush=True)
            return False
        return True

    def due(self, now: float, everything: bool = False) -> None:
        for item in sorted(self.later, key=lambda i: i[0]):
            when, action, host = item
            if everything or when <= now:
                self.later.remove(item)
                if action == "heal":
                    host.heal()
                else:
                    self.pools.start(host)


def chaos_phase(run: Run, report: StandingReport, say: Any) -> None:
    began = run.began = time.monotonic()
    failover_at: float | None = began + run.args.duration / 2
    while (now := time.monotonic()) < began + run.args.duration:
        run.watch.sample(run.hosts)
        run.stuck.due(now)
        run.due(now)
        if failover_at is not None and now >= failover_at:
            try:
                old, new = run.cluster.failover()
                run.faults["sentinel failover"] += 1
                say(f"{now - began:.0f} s: sentinel failover {old} -> {new}")
                failover_at = None
            except (redis.RedisError, RuntimeError) as exc:  # one in progress, no good replica
                say(f"{now - began:.0f} s: sentinel failover refused ({exc}); again in 10 s")
                failover_at = time.monotonic() + 10
        else:
            run.fault(now)
        time.sleep(run.rng.uniform(0.1, 0.3))
    run.stuck.due(time.monotonic(), everything=True)
    run.due(time.monotonic(), everything=True)


def run_standing(args: argparse.Namespace, say: Any) -> StandingReport:
    with tempfile.TemporaryDirectory(prefix="pyresque-standing-") as d:
        run = Run(args, Path(d))
        report = StandingReport(
            args.duration, len(run.hosts), args.workers, args.seed, run.where, args.durable
        )
        feeder = Feeder(run.url, seconds=0.02, depth=4 * args.workers * len(run.hosts))
        try:
            for host in run.hosts:
                run.pools.start(host)
            feeder.start()
            say(f"{len(run.hosts)} hosts ({run.where}); chaos for {args.duration:.0f} s")
            chaos_phase(run, report, say)
            feeder.finish()
            say(f"faults over ({sum(run.faults.values())}); draining")
            t0 = time.monotonic()
            for _ in range(int(args.drain_timeout)):
                run.watch.sample(run.hosts)
                if wait_drained(lambda: connect(run.cluster.url), 1.0):
                    report.drained = True
                    break
            report.drain_seconds = time.monotonic() - t0
            run.stuck.finish(connect(run.cluster.url), run.pools.log_text())
            report.stuck_faults = run.stuck.figures
            run.pools.wait_booted(30)  # a pool restarted at the end has its workers up
            report.exits = run.pools.term_all(30)
            deadline = time.monotonic() + ORPHAN_GRACE + 2
            while time.monotonic() < deadline and any(h.pids() for h in run.hosts):
                run.watch.sample(run.hosts)
                time.sleep(0.2)
            run.watch.sample(run.hosts)
            for line in run.timeline:
                say(line)
            for host in run.hosts:
                for pid in host.pids():
                    run.watch.orphans.setdefault(pid, f"{host.name} pid {pid} left after TERM")
            report.faults = dict(run.faults)
            report.zombies = list(run.watch.zombies.values())
            report.orphans = list(run.watch.orphans.values())
            report.log_facts = log_facts(run.pools.log_text())
            account(run, feeder, report)
            if args.keep_logs:
                os.makedirs(args.keep_logs, exist_ok=True)
                for host in run.hosts:
                    src = Path(d) / f"pool-{host.name}.log"
                    with contextlib.suppress(OSError):
                        (Path(args.keep_logs) / src.name).write_bytes(src.read_bytes())
        finally:
            feeder.stop.set()
            run.close()
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--standing", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=180.0, help="seconds of faults (180)")
    p.add_argument("--hosts", type=int, default=3, help="simulated hosts (3)")
    p.add_argument("--workers", type=int, default=2, help="workers per host (2)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--durable", action="store_true", help="?wait=1: WAIT for the replica")
    p.add_argument("--no-namespaces", action="store_true", help="one host: this machine")
    p.add_argument("--no-hostile", action="store_true", help="no hostile payloads")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to drain (120)")
    p.add_argument("--keep-logs", metavar="DIR", help="copy the pools' logs to DIR")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.seed = random.randrange(1 << 30) if args.seed is None else args.seed
    install_sigterm_handler()
    print(
        "# reproduce: python bench/chaos.py --standing "
        + " ".join(a for a in (sys.argv[1:] if argv is None else argv) if a != "--standing")
        + f" --seed {args.seed}"
    )
    report = run_standing(args, lambda msg: print(f"# {msg}", flush=True))
    print(report.format())
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
