"""What one job costs redis-server's own code, counted in instructions under valgrind (callgrind).

    python bench/rediscost.py [--jobs 2000] [--before TREE] [--redis-server PATH]

Redis CPU per job (``pools.py``, ``throughput.py``) is time, and on a shared 2-core machine it
moves by ±25 % from one run to the next with how the scheduler batches requests. An instruction
count does not: for the same binary, inputs and environment it is the same on every run, whatever
else the machine is doing, so a change to the job scripts shows at once and exactly. It is not
the time: it leaves out the kernel (each request's read, write and epoll_wait, most of a bare
loop's cost) and cache misses, so compare it between trees and modes, not with CPU figures.

For each mode a redis-server runs under ``valgrind --tool=callgrind``, counting only inside
``processCommand`` (parsing a request's arguments aside, that is the command: for pyresque's
EVALSHA the Lua script with every command it calls). The queue is pre-filled with N no-op jobs,
the counters are zeroed, one burst worker drains the queue, and the count is divided by N.

| mode | what runs |
|---|---|
| ``bare`` | ``bareloop.py --block``: one BRPOP a job |
| ``pyresque`` | ``pyresque work --in-process --burst``: one CYCLE a job, per-job metrics on (written about once a second) |
| ``pyresque-nometrics`` | the same with ``PYRESQUE_JOB_METRICS=0`` |
| ``pyresque-before`` | the first with ``--before TREE``'s ``src`` |

Prints figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from common import (
    BENCH_DIR,
    NAMESPACE,
    PYRESQUE_QUEUE_KEY,
    QUEUE,
    SRC,
    free_port,
    pyresque_argv,
    worker_env,
)

from harness.redis_server import find_redis_server
from pyresque.wire import protocol

MODES = ("bare", "pyresque", "pyresque-nometrics", "pyresque-before")


def _callgrind_control(option: str, pid: int) -> None:
    """``-z``: zero the counters; ``-d``: dump them (to ``callgrind.out.<n>``)."""
    subprocess.run(
        ["callgrind_control", option, str(pid)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def count(mode: str, jobs: int, server: str, before: Path | None) -> float:
    """Instructions inside processCommand per job, for one burst drain of ``jobs`` jobs."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="rediscost-") as tmp:
        out = Path(tmp) / "callgrind.out"
        valgrind = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--toggle-collect=processCommand",
                server,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            pipe = client.pipeline(transaction=False)
            for i in range(jobs):
                pipe.rpush(PYRESQUE_QUEUE_KEY, protocol.encode_payload("Bench::Noop", [i, jobs]))
            pipe.sadd(f"{NAMESPACE}:queues", QUEUE)
            pipe.execute()
            _callgrind_control("-z", valgrind.pid)
            url = f"redis://127.0.0.1:{port}/0"
            if mode == "bare":
                argv = [
                    sys.executable,
                    str(BENCH_DIR / "bareloop.py"),
                    "--block",
                    PYRESQUE_QUEUE_KEY,
                ]
                env = worker_env(url)
            else:
                argv = pyresque_argv(in_process=True, burst=True)
                src = (before / "src") if mode == "pyresque-before" and before else SRC
                extra = {"PYTHONPATH": os.pathsep.join((str(BENCH_DIR), str(src)))}
                if mode == "pyresque-nometrics":
                    extra["PYRESQUE_JOB_METRICS"] = "0"
                env = worker_env(url, **extra)
            subprocess.run(
                argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _callgrind_control("-d", valgrind.pid)
        finally:
            valgrind.terminate()
            valgrind.wait(60)
        dumps = sorted(glob.glob(f"{out}.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        if not dumps:
            raise RuntimeError(f"callgrind wrote no counts for {mode} (is {server} valgrind-able?)")
        annotated = subprocess.run(
            ["callgrind_annotate", dumps[-1]], check=True, capture_output=True, text=True
        ).stdout
    match = re.search(r"([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", annotated)
    if match is None:
        raise RuntimeError("callgrind_annotate printed no total")
    return int(match.group(1).replace(",", "")) / jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--modes", default="bare,pyresque,pyresque-nometrics")
    parser.add_argument("--before", type=Path, help="another checkout, run as pyresque-before")
    parser.add_argument(
        "--redis-server", help="default: the other benches' (harness/redis_server.py)"
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if args.before is not None and "pyresque-before" not in modes:
        modes.append("pyresque-before")
    unknown = set(modes) - set(MODES)
    if unknown or not shutil.which("valgrind"):
        parser.error(
            f"unknown modes {sorted(unknown)}"
            if unknown
            else "valgrind is not installed (apt-get install valgrind)"
        )
    if "pyresque-before" in modes and args.before is None:
        parser.error("the pyresque-before mode needs --before TREE")
    server = args.redis_server or find_redis_server()
    version = subprocess.run(
        [server, "--version"], check=False, capture_output=True, text=True
    ).stdout.split()
    print(f"{server} ({' '.join(version[2:3])}); {args.jobs} no-op jobs a mode, one burst worker")
    figures = {mode: count(mode, args.jobs, server, args.before) for mode in modes}
    bare = figures.get("bare")
    for mode, per_job in figures.items():
        ratio = f"  {per_job / bare:5.1f}x bare" if bare else ""
        print(f"  {mode:22} {per_job:9,.0f} instructions a job in processCommand{ratio}")
    if "pyresque" in figures and "pyresque-before" in figures:
        print(f"  pyresque now / before: {figures['pyresque'] / figures['pyresque-before']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
