"""What one fork-per-job cycle costs the worker and its job child: jobs/s, CPU and minor page
faults per job (getrusage), for one or more source trees, interleaved.

After a fork every page the worker writes is a copy-on-write fault, so the number of distinct pages
the worker touches per job is part of fork mode's cost; this shows it beside the throughput.

    python bench/forkcost.py [--jobs 800] [--rounds 3] [--sleep-ms MS] [TREE[:SETTING=VALUE,...] ...]

A TREE is a checkout of pyresque (``git worktree add /tmp/old <commit>`` for a before/after);
each round runs a burst worker in a fresh interpreter with that tree's ``src`` first on the path.
Settings after a colon are the worker's (``WorkerSettings`` fields, JSON values):
``.:warm_child=true`` runs this checkout with a warm child.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

ONE_RUN = r"""
import json, resource, sys, time
root, n, extra, sleep = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4])
sys.path[:0] = [root + "/src", sys.argv[5]]  # the tree's pyresque, this checkout's harness
import logging
logging.basicConfig(level=logging.WARNING)
from harness.redis_server import start_redis_server
from pyresque.wire import protocol
from pyresque.store.connection import connect
from pyresque.worker.hooks import WorkerHooks
from pyresque.wire.keys import Keys
from pyresque.worker.queues import QueueSelector
from pyresque.jobs.registry import Registry
from pyresque.settings import WorkerSettings
from pyresque.store.operations import Store
from pyresque.worker.loop import Worker
server = start_redis_server()
try:
    client = connect(server.url)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.rpush("resque:queue:q", protocol.encode_payload("Noop", [i, n]))
    pipe.execute()
    registry = Registry()
    registry.register("Noop", (lambda *a: time.sleep(sleep)) if sleep else (lambda *a: None))
    settings = WorkerSettings(queues="q", burst=True, fork_per_job=True, interval=0, **extra)
    worker = Worker(Store(client, Keys("resque")), QueueSelector.parse("q"), settings,
                    registry=registry, hooks=WorkerHooks())
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    worker.work()
    seconds = time.perf_counter() - began
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "jobs_per_s": n / seconds,
        "worker_cpu_ms": 1000 * (me.ru_utime + me.ru_stime - me0.ru_utime - me0.ru_stime) / n,
        "worker_faults": (me.ru_minflt - me0.ru_minflt) / n,
        "child_cpu_ms": 1000 * (kids.ru_utime + kids.ru_stime) / n,
        "child_faults": kids.ru_minflt / n,
    }))
finally:
    server.stop()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("trees", nargs="*", default=[str(HERE)])
    parser.add_argument("--jobs", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sleep-ms", type=float, default=0.0, help="each job sleeps this long (default: no-op)"
    )
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {t: [] for t in args.trees}
    for _ in range(args.rounds):
        for spec in args.trees:
            tree, _, settings = spec.partition(":")
            extra = {
                name: json.loads(value)
                for name, _, value in (item.partition("=") for item in settings.split(",") if item)
            }
            out = subprocess.run(
                [
                    sys.executable, "-c", ONE_RUN, tree, str(args.jobs), json.dumps(extra),
                    str(args.sleep_ms / 1000), str(HERE),
                ],
                capture_output=True, text=True, check=True, cwd=tree,
            )  # fmt: skip
            results[spec].append(json.loads(out.stdout.strip().splitlines()[-1]))
    kind = f"{args.sleep_ms:g} ms sleeping" if args.sleep_ms else "no-op"
    print(f"fork per job, {args.jobs} {kind} jobs, medians of {args.rounds} interleaved rounds")
    for tree, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"  {tree}: {med['jobs_per_s']:.0f} jobs/s; worker {med['worker_cpu_ms']:.2f} ms CPU, "
            f"{med['worker_faults']:.0f} faults; child {med['child_cpu_ms']:.2f} ms CPU, "
            f"{med['child_faults']:.0f} faults (per job)"
        )


if __name__ == "__main__":
    main()
