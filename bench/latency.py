"""Idle pickup latency: how long a job waits in the queue when a worker is idle and waiting.

    python bench/latency.py [--jobs N] [--transport tcp|unix] ...

For each mode one worker (not burst) is started and warmed up with a few jobs; then jobs are
enqueued one at a time. The enqueuer takes ``time.time()`` just before the push; the job takes
``time.time()`` first thing in perform and reports it through Redis (after the measured instant).
The next job is pushed 20-50 ms (uniform random jitter) after the previous one reported, so the
worker is idle again. Latency = perform start - enqueue instant, over N samples (default 200).

Modes: pyresque fork per job and --in-process (pushed with ``pyresque.Client.enqueue_to``, which
publishes a wake-up), RQ Worker and RQ SimpleWorker (``rq.Queue.enqueue``), and pyresque fork with
the job pushed by a plain SADD+RPUSH, as Ruby Resque or redis-cli push it (no wake-up: the
single-queue worker's blocking BLMOVE takes it).

Prints figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from benchjobs import LATENCY_KEY
from common import (
    NAMESPACE,
    PYRESQUE_QUEUE_KEY,
    QUEUE,
    CpuAccount,
    PrivateRedis,
    Proc,
    add_cpus_argument,
    add_transport_argument,
    environment_summary,
    install_sigterm_handler,
    median,
    percentile,
    placement,
    private_redis,
    pyresque_argv,
    rq_argv,
    say,
    worker_env,
)

from pyresque import Client
from pyresque.wire import protocol

STAMP = "Bench::Stamp"
PICKUP_TIMEOUT = 10.0  # seconds; a job not started by then counts as lost (reported)
WARMUP = 3


@dataclass(frozen=True)
class Mode:
    key: str
    label: str
    system: str  # "pyresque" or "rq"
    forks: bool
    push: str = "client"  # "client" (the library's enqueue) or "raw" (SADD + RPUSH, no wake-up)
    options: tuple[str, ...] = ()  # more options for the worker


WARM = ("--warm-child",)
MODES = {
    m.key: m
    for m in (
        Mode("pyresque-fork", "pyresque fork per job", "pyresque", True),
        Mode("pyresque-fork-warm", "pyresque fork, warm child", "pyresque", True, "client", WARM),
        Mode("pyresque-inproc", "pyresque --in-process", "pyresque", False),
        Mode("rq-fork", "RQ Worker (fork per job)", "rq", True),
        Mode("rq-simple", "RQ SimpleWorker", "rq", False),
        Mode("pyresque-fork-raw", "pyresque fork, raw RPUSH push", "pyresque", True, "raw"),
    )
}


@dataclass
class Result:
    mode: Mode
    latencies: list[float] = field(default_factory=list)  # seconds
    problems: list[str] = field(default_factory=list)
    pids: set[str] = field(default_factory=set)


def enqueuer(server: PrivateRedis, mode: Mode) -> Callable[[str], object]:
    """A function that pushes one Stamp job for ``sample`` the way this mode's clients would."""
    if mode.system == "rq":
        from rq import Queue

        queue = Queue(QUEUE, connection=server.client())
        return lambda sample: queue.enqueue("benchjobs.stamp", sample)
    if mode.push == "raw":
        raw = server.client()
        raw.sadd(f"{NAMESPACE}:queues", QUEUE)
        return lambda sample: raw.rpush(
            PYRESQUE_QUEUE_KEY, protocol.encode_payload(STAMP, [sample])
        )
    client = Client(url=server.url, namespace=NAMESPACE)
    return lambda sample: client.enqueue_to(QUEUE, STAMP, sample)


def wait_for(
    client: redis.Redis, sample: str, timeout: float, problems: list[str]
) -> tuple[float, str] | None:
    """The perform-start time (and pid) reported for ``sample``; None if none came in time."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        reply = client.blpop([LATENCY_KEY], timeout=max(left, 0.01))
        if reply is None:
            break
        got, started, pid = reply[1].decode().split()
        if got == sample:
            return float(started), pid
        problems.append(f"late report for sample {got} while waiting for {sample}")
    return None


def measure(server: PrivateRedis, mode: Mode, samples: int, gap: tuple[float, float]) -> Result:
    client = server.client()
    client.flushall()
    result = Result(mode)
    argv = (
        [*pyresque_argv(in_process=not mode.forks, burst=False), *mode.options]
        if mode.system == "pyresque"
        else rq_argv(server.url, simple=not mode.forks, burst=False)
    )
    proc = Proc(argv, worker_env(server.url), mode.key, server.worker_cpus)
    push = enqueuer(server, mode)
    try:
        for i in range(WARMUP):  # start-up, imports, first fork: not measured
            push(f"warm{i}")
            if wait_for(client, f"warm{i}", 60.0, result.problems) is None:
                result.problems.append(f"warm-up job {i} never started")
                return result
        time.sleep(0.3)  # idle: waiting on the queue, not finishing the warm-up
        for i in range(samples):
            time.sleep(random.uniform(*gap))
            sample = f"s{i}"
            enqueued = time.time()
            push(sample)
            got = wait_for(client, sample, PICKUP_TIMEOUT, result.problems)
            if got is None:
                result.problems.append(
                    f"sample {i}: not started within {PICKUP_TIMEOUT:.0f} s "
                    f"(worker {'alive' if proc.popen.poll() is None else 'exited'})"
                )
                continue
            started, pid = got
            result.latencies.append(started - enqueued)
            result.pids.add(pid)
        return result
    finally:
        proc.stop(grace=3.0)
        if result.problems:
            result.problems.append(f"worker log {proc.log_path}:\n{proc.log_tail()}")
        else:
            proc.discard_log()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=200, help="samples per mode (200)")
    p.add_argument(
        "--raw-jobs",
        type=int,
        default=50,
        help="samples for the raw-RPUSH (no wake-up) mode (50)",
    )
    add_transport_argument(p)
    add_cpus_argument(p)
    p.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}"
    )
    p.add_argument("--gap-ms", default="20,50", help="random idle gap between jobs, ms (20,50)")
    p.add_argument("--seed", type=int, default=None, help="seed for the jitter")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    lo, hi = (float(x) / 1000 for x in args.gap_ms.split(","))
    random.seed(args.seed)
    modes = [MODES[k] for k in MODES if k in args.modes.split(",")]

    with private_redis(args.transport, placement(args.cpus)) as server:
        say(f"latency: one idle worker, {server.describe()}")
        say(environment_summary())
        cpu = CpuAccount()
        say(f"gap between jobs {lo * 1000:.0f}-{hi * 1000:.0f} ms, after the previous job started")
        say()
        results = []
        for mode in modes:
            n = args.raw_jobs if mode.push == "raw" else args.jobs
            res = measure(server, mode, n, (lo, hi))
            results.append(res)
            lat = [x * 1000 for x in res.latencies]
            if lat:
                say(
                    f"  {mode.label:<30} {len(lat):4d} samples  median {median(lat):7.2f} ms  "
                    f"p99 {percentile(lat, 99):7.2f} ms  (min {min(lat):.2f}, max {max(lat):.2f})"
                )
            else:
                say(f"  {mode.label:<30} no samples")
            for problem in res.problems:
                say(f"    !! {problem}")
        say()
        say("SUMMARY: idle pickup latency, perform start - enqueue (ms)")
        say(f"  {'mode':<30} {'n':>4} {'median':>8} {'p90':>8} {'p99':>8} {'max':>8}")
        for res in results:
            lat = [x * 1000 for x in res.latencies]
            if not lat:
                say(f"  {res.mode.label:<30} {0:>4}")
                continue
            say(
                f"  {res.mode.label:<30} {len(lat):>4} {median(lat):>8.2f} "
                f"{percentile(lat, 90):>8.2f} {percentile(lat, 99):>8.2f} {max(lat):>8.2f}"
            )
        say()
        for res in results:
            if res.mode.system == "pyresque" and res.mode.push == "client" and res.latencies:
                m = median(res.latencies) * 1000
                verdict = "meets" if m < 5 else "ABOVE"
                say(f"  target: {res.mode.label} median < 5 ms: {m:.2f} ms ({verdict})")
                if "--warm-child" in res.mode.options:
                    verdict = "meets" if m <= 1.5 else "ABOVE"
                    say(f"  target: {res.mode.label} median <= 1.5 ms: {m:.2f} ms ({verdict})")
        say(cpu.report(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
