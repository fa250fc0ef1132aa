"""The smallest preforking tree CPython and redis-py allow: the floor under any pool's memory.

    python bench/baretree.py [--workers 4] [--app MODULE] [--rounds 3]

A master imports redis-py (and ``--app``, as a pool preloads it), calls ``gc.freeze()`` and forks
``--workers`` children; each child builds a client and loops on ``BRPOP`` of an empty queue, as an
idle worker would, and does nothing else: no registration, no heartbeat, no signal handling, no
logging. redis-py is told its own version (as pyresque tells it), so that no connection reads
the installed packages' metadata. When every child has waited through a few ``BRPOP`` timeouts,
the script prints the tree's total PSS (``/proc/<pid>/smaps_rollup``), the master's and each
child's, over ``--rounds`` trees (median).

A pool that does more than this costs more; a target below this figure cannot be met by any pool
of forked CPython workers using redis-py. Compare with ``memory.py --idle`` (the same shape,
pyresque's pool on the trivial app) and ``memory.py --systems pyresque,rq`` (``--app memapp
--workers 8``). Prints figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
from common import BENCH_DIR, environment_summary, median, private_redis

SETTLE = 3.5  # seconds the children wait (three BRPOP timeouts) before the tree is measured

# The tree itself, run as ``python -c TREE URL WORKERS APP``: nothing imported but redis-py and
# the app, so the master is what a pool's master would be with nothing of its own.
TREE = """
import gc, importlib, os, sys, time
import redis
from redis.driver_info import DriverInfo
url, workers, app = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if app:
    importlib.import_module(app)
gc.freeze()
for _ in range(workers):
    if os.fork() == 0:
        client = redis.Redis.from_url(url, driver_info=DriverInfo(lib_version=redis.__version__))
        while True:
            client.brpop(["baretree:none"], 1)
print("ready", flush=True)
time.sleep(3600)
"""


def pss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def one_tree(url: str, workers: int, app: str) -> tuple[float, float, list[float]]:
    """(tree PSS, master PSS, each child's PSS), MB."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join((str(BENCH_DIR), os.environ.get("PYTHONPATH", ""))),
    }
    master = subprocess.Popen(
        [sys.executable, "-c", TREE, url, str(workers), app],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert master.stdout is not None
        if master.stdout.readline().strip() != "ready":  # every child is forked
            raise SystemExit(f"baretree: the tree did not start (exit {master.wait()}); see above")
        time.sleep(SETTLE)
        children = psutil.Process(master.pid).children()
        each = [pss_mb(child.pid) for child in children]
        own = pss_mb(master.pid)
        return own + sum(each), own, each
    finally:
        with contextlib.suppress(ProcessLookupError):  # a tree that failed to start is gone
            os.killpg(master.pid, signal.SIGKILL)
        master.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--app", default="", help="a module the master imports first (memapp)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with private_redis("tcp") as server:
        print(f"baretree: {args.workers} forked children, app {args.app or '(none)'}")
        print(environment_summary())
        trees = []
        for n in range(args.rounds):
            total, master, each = one_tree(server.url, args.workers, args.app)
            trees.append(total)
            shown = ", ".join(f"{v:.1f}" for v in each)
            print(f"  round {n + 1}: tree {total:.1f} MB (master {master:.1f}; children {shown})")
        print(f"total PSS, median of {args.rounds}: {median(trees):.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
