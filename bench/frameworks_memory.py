"""Memory of an 8-worker pool preloading a real Django project: pyresque vs Celery prefork vs RQ.

The project is ``bench/djangosite``: what ``startproject`` makes (admin, auth, contenttypes,
sessions, messages, staticfiles) plus a ``catalog`` app, on PostgreSQL with psycopg 3. Every system
runs the same job (``catalog.jobs.read_products``: 200 products through the ORM and an aggregate
query, then an INCR that counts it done) and preloads the project in its master before forking:

- ``pyresque``: ``python manage.py resque_pool`` (``pyresque.contrib.django``), a job child per job;
- ``pyresque-inprocess``: the same with ``FORK_PER_JOB=false``: workers run the jobs themselves;
- ``celery``: ``celery -A site_config.celery_app worker --pool=prefork --concurrency=8`` (its
  Django fixup closes connections around tasks, as ours does);
- ``rq``: ``rq worker-pool -c site_config.rq_settings`` (the settings module sets Django up in the
  pool's master; RQ forks a work horse per job).

Each pool is measured idle and again after the jobs, once every job child has gone: PSS of the
master and all its descendants (``/proc/<pid>/smaps_rollup``), with bench/memory.py's
measuring and running code (``memory_measure.py``). The schema ``pyresque_bench_<random>`` is
created on the server (libpq's ``PGHOST``/``PGPORT``/``PGUSER``/``PGDATABASE``, default
127.0.0.1:5432 test postgres), migrated, filled with 2,000 products, and dropped at the end.

Run from the repository root with the virtualenv active (``pip install -e '.[bench,test]'``)::

    python bench/frameworks_memory.py                    # 8 workers, 500 jobs, all four systems
    python bench/frameworks_memory.py --systems pyresque,celery --jobs 200 --details
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from common import (
    BENCH_DIR,
    NAMESPACE,
    environment_summary,
    install_sigterm_handler,
    private_redis,
    worker_env,
)
from memory_measure import Result, run_system
from memory_report import print_details, print_table
from memory_systems import QUEUE, Context, System, celery_ready, pyresque_ready, rq_ready

SITE = BENCH_DIR / "djangosite"
JOB = "catalog.read_products"
PRODUCTS = 2000


def pyresque_argv(ctx: Context) -> list[str]:
    return [
        sys.executable,
        str(SITE / "manage.py"),
        "resque_pool",
        "--config",
        ctx.config_path,
        "--appname",
        "djangobench",
    ]


def celery_argv(ctx: Context) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "site_config.celery_app",
        "-b",
        ctx.url,
        "worker",
        "--pool=prefork",
        f"--concurrency={ctx.workers}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def rq_argv(ctx: Context) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rq.cli",
        "worker-pool",
        "--num-workers",
        str(ctx.workers),
        "--url",
        ctx.url,
        "--path",
        str(SITE),
        "--config",
        "site_config.rq_settings",
        QUEUE,
    ]


def pyresque_enqueue(url: str, jobs: int) -> None:
    from pyresque.jobs.client import Client

    client = Client(url=url, namespace=NAMESPACE)
    for i in range(jobs):
        client.enqueue_to(QUEUE, JOB, i)


def rq_enqueue(url: str, jobs: int) -> None:
    from rq import Queue

    queue = Queue(QUEUE, connection=redis.Redis.from_url(url))
    for i in range(jobs):
        queue.enqueue("catalog.jobs.read_products", i)


def celery_enqueue(url: str, jobs: int) -> None:
    from celery import Celery

    app = Celery("frameworks-bench-client", broker=url)
    app.conf.broker_connection_retry_on_startup = True
    try:
        for i in range(jobs):
            app.send_task(JOB, args=[i], ignore_result=True)
    finally:
        app.close()


# (system, environment it adds): the pyresque app stays out of INSTALLED_APPS for the others
SYSTEMS: dict[str, tuple[System, dict[str, str]]] = {
    "pyresque": (
        System(
            "pyresque",
            "pyresque manage.py resque_pool",
            pyresque_argv,
            pyresque_ready,
            pyresque_enqueue,
            signal.SIGQUIT,
        ),
        {},
    ),
    "pyresque-inprocess": (
        System(
            "pyresque-inprocess",
            "pyresque resque_pool FORK_PER_JOB=false",
            pyresque_argv,
            pyresque_ready,
            pyresque_enqueue,
            signal.SIGQUIT,
        ),
        {"FORK_PER_JOB": "false"},
    ),
    "celery": (
        System(
            "celery",
            "celery prefork (Django fixup)",
            celery_argv,
            celery_ready,
            celery_enqueue,
            signal.SIGTERM,
        ),
        {"BENCH_PYRESQUE_APP": "0"},
    ),
    "rq": (
        System(
            "rq", "rq worker-pool (-c rq_settings)", rq_argv, rq_ready, rq_enqueue, signal.SIGTERM
        ),
        {"BENCH_PYRESQUE_APP": "0"},
    ),
}


@contextmanager
def bench_schema(env: dict[str, str]) -> Iterator[str]:
    """A schema of our own, migrated and filled; dropped at the end, whatever happens."""
    import psycopg

    schema = f"pyresque_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        raise SystemExit(f"frameworks_memory: no PostgreSQL answers (PGHOST...): {exc}") from exc
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            run_env = {**env, "BENCH_SCHEMA": schema}
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "-v", "0"],
                cwd=SITE,
                env=run_env,
                check=True,
                timeout=300,
            )
            admin.execute(
                f"INSERT INTO {schema}.catalog_product (name, price, description) "
                "SELECT 'product ' || g, g %% 997, repeat('x', 200) FROM generate_series(1, %s) g",
                (PRODUCTS,),
            )
            yield schema
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, from {', '.join(SYSTEMS)}"
    )
    parser.add_argument("--details", action="store_true", help="print every process")
    args = parser.parse_args()
    args.keys = [k.strip() for k in args.systems.split(",") if k.strip()]
    unknown = [k for k in args.keys if k not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    return args


def main() -> int:
    args = parse_args()
    install_sigterm_handler()
    for var, default in (
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", "5432"),
        ("PGUSER", "postgres"),
        ("PGDATABASE", "test"),
    ):
        os.environ.setdefault(var, default)

    command = shlex.join(["python", "bench/frameworks_memory.py", *sys.argv[1:]])
    print(f"reproduce (repository root): . .venv/bin/activate && {command}")
    print(environment_summary())
    print(
        f"{args.workers} workers per pool, {args.jobs} jobs of {JOB} per system; "
        f"PostgreSQL at {os.environ['PGHOST']}:{os.environ['PGPORT']}"
    )

    with private_redis("tcp") as server, tempfile.TemporaryDirectory(prefix="fwbench-") as tmp:
        config_path = os.path.join(tmp, "resque-pool.yml")
        Path(config_path).write_text(f"{QUEUE}: {args.workers}\n")
        base = worker_env(
            server.url, MEMAPP_REDIS_URL=server.url, DJANGO_SETTINGS_MODULE="site_config.settings"
        )
        base["PYTHONPATH"] = os.pathsep.join([str(SITE), base["PYTHONPATH"]])
        base.pop("PYRESQUE_APP", None)
        with bench_schema(base) as schema:
            base["BENCH_SCHEMA"] = schema
            ctx = Context(server.url, args.workers, config_path)
            results: list[Result] = []
            for key in args.keys:
                system, extra = SYSTEMS[key]
                result = run_system(system, ctx, args.jobs, {**base, **extra})
                results.append(result)
                print(
                    f"{system.label}: ready and steady in {result.startup:.1f} s, {args.jobs} "
                    f"jobs in {result.batch:.1f} s; total PSS idle {result.idle.total_pss:.1f} "
                    f"MB, after {result.after.total_pss:.1f} MB",
                    flush=True,
                )

    print()
    print(f"== idle ({args.workers} workers started and settled, no job run yet) ==")
    print_table(results, "idle")
    print()
    print(f"== after {args.jobs} jobs that read the database, idle again ==")
    print_table(results, "after")
    print()
    print("== where it goes (MB; peak = largest total PSS sampled while the batch ran) ==")
    print_details(results, args.details)
    return 0


if __name__ == "__main__":
    sys.exit(main())
