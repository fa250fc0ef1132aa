"""Memory of an 8-worker pool running one realistic app: pyresque vs ``rq worker-pool`` vs Celery.

Every system runs the same app (``memapp``: ~400 modules and a 300,000-object catalogue, about
60 MB over a bare interpreter) and the same job (``memapp.touch``: read a fifth of the catalogue, so
reference counting writes to the pages that hold it). For each system the pool is started in its
own session, measured idle, given a batch of jobs, and measured again once every job is done and
every job child has exited. Memory is read from ``/proc/<pid>/smaps_rollup`` for the master and
all its descendants:

- total PSS: shared pages split between the processes that share them, so the pool's sum is what
  it costs the machine (RSS would count the shared app once per process);
- worker USS: ``Private_Clean + Private_Dirty``, what a worker holds that no other process does,
  i.e. what each additional worker costs.

Systems: pyresque's pool as shipped (app preloaded in the master, ``gc.freeze()`` before forking),
the same without ``gc.freeze()``, and without preload; ``rq worker-pool`` with the app imported in
its master through a settings module (``-c memapp_rq``: RQ's pool has no preload option of its own)
and as it runs by default, where nothing imports the app until a work horse (the child RQ forks for
each job) resolves the job's function, so every job imports the whole app in a throw-away process;
Celery's prefork pool (``-A memapp_celery``, which imports the app in the main process before
forking its pool processes).

Its parts: memory_systems.py (the systems and how each starts), memory_measure.py (reading a
pool's memory, running one system), memory_report.py (the tables and the verdict) and
memory_idle.py (``--idle``: the trivial app's idle pool per process and per kind of mapping).

Run from the repository root with the virtualenv active::

    python bench/memory.py                      # 8 workers, 200 jobs, all six systems
    python bench/memory.py --systems pyresque,rq --jobs 400 --details
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from common import (
    environment_summary,
    install_sigterm_handler,
    private_redis,
    worker_env,
)
from memory_idle import idle_main
from memory_measure import Result, app_footprint, run_system
from memory_report import TARGET_LINE, print_details, print_table, verdict
from memory_systems import QUEUE, SYSTEMS, Context


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--records", type=int, default=100_000, help="catalogue size in memapp")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated, from {', '.join(SYSTEMS)}",
    )
    parser.add_argument("--details", action="store_true", help="print every process")
    args = parser.parse_args()
    args.keys = [k.strip() for k in args.systems.split(",") if k.strip()]
    unknown = [k for k in args.keys if k not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    return args


def main() -> int:
    if "--idle" in sys.argv[1:]:
        return idle_main(sys.argv[1:])
    args = parse_args()
    install_sigterm_handler()

    command = shlex.join(["python", "bench/memory.py", *sys.argv[1:]])
    print(f"reproduce (repository root): . .venv/bin/activate && {command}")
    print(environment_summary())
    print(f"{args.workers} workers per pool, {args.jobs} jobs of memapp.touch per system")
    results = measure(args)
    report(results, args)
    return 0


def measure(args: argparse.Namespace) -> list[Result]:
    """Each system in turn against one private Redis; its figures printed as it finishes."""
    with private_redis("tcp") as server, tempfile.TemporaryDirectory(prefix="membench-") as tmp:
        config_path = os.path.join(tmp, "resque-pool.yml")
        Path(config_path).write_text(f"{QUEUE}: {args.workers}\n")
        env = worker_env(server.url, MEMAPP_REDIS_URL=server.url, MEMAPP_RECORDS=str(args.records))
        env.pop("PYRESQUE_APP", None)
        print(f"redis: {server.describe()}")
        app = app_footprint(env)
        print(
            f"app footprint (memapp): {app['rss']:.1f} MB RSS ({app['anon']:.1f} MB anonymous) over "
            f"a bare interpreter of {app['bare']:.1f} MB; {app['modules']:.0f} modules imported, "
            f"{app['objects']:.0f} objects tracked by the collector"
        )
        print()
        ctx = Context(server.url, args.workers, config_path)
        results = []
        for key in args.keys:
            system = SYSTEMS[key]
            result = run_system(system, ctx, args.jobs, env)
            results.append(result)
            print(
                f"{system.label}: ready and steady in {result.startup:.1f} s, {args.jobs} jobs in "
                f"{result.batch:.1f} s; total PSS idle {result.idle.total_pss:.1f} MB, "
                f"peak while busy {result.peak.total_pss:.1f} MB, "
                f"after {result.after.total_pss:.1f} MB",
                flush=True,
            )
    return results


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(f"== idle ({args.workers} workers started and settled, no job run yet) ==")
    print_table(results, "idle")
    print()
    print(f"== after {args.jobs} jobs, idle again (steady state) ==")
    print_table(results, "after")
    print()
    print("== where it goes (MB; peak = largest total PSS sampled while the batch ran) ==")
    print_details(results, args.details)
    print()
    overall: bool | None = True
    for phase, name in (("idle", "idle"), ("after", "after jobs")):
        text, ok = verdict(results, phase)
        print(f"{TARGET_LINE} — {name}: {text}")
        overall = None if ok is None or overall is None else overall and ok
    text, _ = verdict(results, "peak")
    print(f"(for information, peak while busy: {text})")
    print(f"{TARGET_LINE}: {'n/a' if overall is None else 'PASS' if overall else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
