"""The scheduler: due -> queued latency, and the CPU of an idle scheduler.

    python bench/scheduler.py [--jobs N] [--seconds S] [--idle 30] [--transport tcp|unix]

Latency. One ``pyresque scheduler`` process runs (default options: 1 s poll). Jobs are delayed to
S consecutive whole seconds (N/S per second), in three ways:

* ahead: ``Delayed.enqueue_at`` two or more seconds before the time (the usual case);
* short notice: ``enqueue_at`` less than a second before the time (it publishes the timestamp,
  which wakes the sleeping scheduler);
* short notice, Ruby-style: RPUSH/SADD/ZADD as Ruby's ``Resque.enqueue_at`` writes them, no
  wake-up, less than a second before the time: only the poll finds them, so they can be up to one
  poll late (reported, not part of the goal).

A job's time is its whole second (resque-scheduler's timestamps are integers); latency = when
BLPOP took it off its queue - that second. Goal: p99 < 100 ms (ahead and short notice).

Idle CPU. Nothing delayed, no recurring schedule: the scheduler's CPU seconds (from /proc) over
``--idle`` seconds, as a share of one core. Goal: < 0.5 %.

Prints figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import platform
import sys
import threading
import time

import redis
from common import (
    NAMESPACE,
    CpuAccount,
    PrivateRedis,
    Proc,
    add_transport_argument,
    install_sigterm_handler,
    median,
    percentile,
    pid_cpu,
    placement,
    private_redis,
    say,
    worker_env,
)

from pyresque import Client
from pyresque.scheduler.delayed import Delayed, encode_item
from pyresque.scheduler.store import ScheduleStore
from pyresque.wire.keys import Keys

QUEUE = "sched-bench"
LOCK = f"{NAMESPACE}:{NAMESPACE}:resque_scheduler_master_lock"


def start_scheduler(server: PrivateRedis) -> Proc:
    argv = [sys.executable, "-m", "pyresque", "scheduler"]
    proc = Proc(argv, worker_env(server.url), "scheduler", server.worker_cpus)
    client = server.client()
    deadline = time.monotonic() + 20
    while client.get(LOCK) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"scheduler did not take the lock:\n{proc.log_tail()}")
        time.sleep(0.05)
    return proc


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def delay_jobs(
    server: PrivateRedis, jobs: int, seconds: int, mode: str, *, due: dict[int, int], late: set[int]
) -> None:
    """Delay the jobs, recording job number -> its timestamp in ``due`` before each write, and
    in ``late`` the jobs whose write ended after their second had begun (a busy machine)."""
    client = server.client()
    delayed = Delayed(Client(client, namespace=NAMESPACE))
    raw = ScheduleStore(client, Keys(NAMESPACE))
    first = int(time.time()) + 3
    per_second = max(1, jobs // seconds)
    for s in range(seconds):
        ts = first + s
        if mode != "ahead":
            _sleep_until(ts - 0.6)  # short notice: 0.6 s before the time
        for k in range(per_second):
            n = s * per_second + k
            due[n] = ts
            if mode == "ruby":
                item = encode_item("Bench::Noop", [n], QUEUE)
                pipe = client.pipeline(transaction=False)
                pipe.rpush(raw.keys.delayed(ts), item)
                pipe.sadd(raw.keys.timestamps(item), f"delayed:{ts}")
                pipe.zadd(raw.keys.delayed_schedule, {str(ts): ts})
                pipe.execute()
            else:
                delayed.enqueue_at_with_queue(QUEUE, ts, "Bench::Noop", n)
            if time.time() >= ts:
                late.add(n)


def collect(client: redis.Redis, due: dict[int, int], timeout: float) -> list[float]:
    """Take jobs off the queue for up to ``timeout`` seconds; their latencies."""
    latencies: list[float] = []
    key = f"{NAMESPACE}:queue:{QUEUE}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = client.blpop([key], timeout=0.2)
        if got is None:
            continue
        taken = time.time()
        rest = client.lpop(key, 10_000) or []  # what arrived with it, taken at the same instant
        for payload in [got[1], *rest]:
            n = int(payload.decode().split("[")[1].rstrip("]}"))
            latencies.append(taken - due[n])
    return latencies


def measure_latency(server: PrivateRedis, jobs: int, seconds: int, mode: str) -> None:
    """Delay the jobs (in a thread, so short-notice writes go on beside the collecting) and take
    each off its queue as it arrives."""
    client = server.client()
    due: dict[int, int] = {}
    late: set[int] = set()
    writer = threading.Thread(
        target=delay_jobs, args=(server, jobs, seconds, mode), kwargs={"due": due, "late": late}
    )
    writer.start()
    if mode == "ahead":
        writer.join()
    lat: list[float] = []
    deadline = time.time() + seconds + 15
    while (writer.is_alive() or len(lat) < len(due)) and time.time() < deadline:
        lat += collect(client, due, 1.0)
    writer.join()
    ms = [x * 1000 for x in lat]
    lost = len(due) - len(ms)
    say(
        f"  {mode:<8} {len(ms):5d} jobs  median {median(ms):7.2f} ms  p99 "
        f"{percentile(ms, 99):7.2f} ms  max {max(ms, default=float('nan')):7.2f} ms"
        + (f"  ({lost} not seen)" if lost else "")
        + (f"  ({len(late)} written after their second began)" if late else "")
    )


def measure_idle(server: PrivateRedis, idle: float) -> None:
    proc = start_scheduler(server)
    time.sleep(2)  # past start-up (imports, the first lock calls)
    before, started = pid_cpu(proc.pid), time.monotonic()
    commands_before = int(server.client().info("stats")["total_commands_processed"])
    time.sleep(idle)
    used, wall = pid_cpu(proc.pid) - before, time.monotonic() - started
    commands = int(server.client().info("stats")["total_commands_processed"]) - commands_before
    proc.stop()
    say(
        f"  idle scheduler: {used:.3f} CPU s in {wall:.1f} s = {100 * used / wall:.3f} % of a core "
        f"(goal < 0.5 %); {commands / wall:.1f} Redis commands/s (incl. this probe's)"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=1000, help="jobs per mode (1000)")
    p.add_argument("--seconds", type=int, default=10, help="distinct due seconds per mode (10)")
    p.add_argument("--idle", type=float, default=30.0, help="idle measurement, seconds (30)")
    p.add_argument("--modes", default="ahead,short,ruby")
    add_transport_argument(p)
    args = p.parse_args(argv)
    install_sigterm_handler()
    with private_redis(args.transport, placement("split")) as server:
        say(f"scheduler: {server.describe()}")
        say(f"Python {platform.python_version()}, {platform.platform()}")
        cpu = CpuAccount()
        say("due -> queued latency (time taken off the queue - the job's whole second):")
        proc = start_scheduler(server)
        for mode in args.modes.split(","):
            measure_latency(server, args.jobs, args.seconds, mode)
        proc.stop()
        if args.idle > 0:
            measure_idle(server, args.idle)
        say(cpu.report(server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
