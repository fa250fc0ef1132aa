"""The systems bench/memory.py drives: how each pool starts, says it is ready, and takes jobs.

pyresque's pool (as shipped, without ``gc.freeze()``, without preload), ``rq worker-pool`` with
and without the app preloaded, and Celery's prefork pool, all on the app ``memapp`` and its job
``memapp.touch``, which counts itself in :data:`DONE_KEY` as its last step.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from common import BENCH_DIR, NAMESPACE, Proc

QUEUE = "mem"
DONE_KEY = "memapp:done"  # memapp.touch INCRs it as its last step


@dataclass(frozen=True)
class Context:
    url: str
    workers: int
    config_path: str


def pyresque_argv(*flags: str, app: str = "memapp") -> Callable[[Context], list[str]]:
    def argv(ctx: Context) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pyresque",
            "pool",
            "--config",
            ctx.config_path,
            "--app",
            app,
            "--allow-module",
            app,
            "--appname",
            "membench",
            *flags,
        ]

    return argv


def rq_argv(ctx: Context) -> list[str]:
    return [*rq_nopreload_argv(ctx)[:-1], "--config", "memapp_rq", QUEUE]


def rq_nopreload_argv(ctx: Context) -> list[str]:
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
        str(BENCH_DIR),
        QUEUE,
    ]


def celery_argv(ctx: Context) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "memapp_celery",
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


def pyresque_ready(client: redis.Redis, proc: Proc, workers: int) -> bool:
    return int(client.scard(f"{NAMESPACE}:workers")) >= workers


def rq_ready(client: redis.Redis, proc: Proc, workers: int) -> bool:
    return int(client.scard("rq:workers")) >= workers


def celery_ready(client: redis.Redis, proc: Proc, workers: int) -> bool:
    try:
        return " ready." in Path(proc.log_path).read_text(errors="replace")
    except OSError:
        return False


def pyresque_enqueue(url: str, jobs: int) -> None:
    from pyresque.jobs.client import Client

    client = Client(url=url, namespace=NAMESPACE)
    for i in range(jobs):
        client.enqueue_to(QUEUE, "memapp.touch", i)


def rq_enqueue(url: str, jobs: int) -> None:
    from rq import Queue

    queue = Queue(QUEUE, connection=redis.Redis.from_url(url))
    for i in range(jobs):
        queue.enqueue("memapp.touch", i)


def celery_enqueue(url: str, jobs: int) -> None:
    from celery import Celery

    app = Celery("membench-client", broker=url)
    app.conf.broker_connection_retry_on_startup = True
    try:
        for i in range(jobs):
            app.send_task("memapp.touch", args=[i], ignore_result=True)
    finally:
        app.close()


@dataclass(frozen=True)
class System:
    key: str
    label: str
    argv: Callable[[Context], list[str]]
    ready: Callable[[redis.Redis, Proc, int], bool]
    enqueue: Callable[[str, int], None]
    stop_signal: int


SYSTEMS = {
    s.key: s
    for s in (
        System(
            "pyresque",
            "pyresque pool (preload + gc.freeze)",
            pyresque_argv(),
            pyresque_ready,
            pyresque_enqueue,
            signal.SIGQUIT,
        ),
        System(
            "pyresque-nofreeze",
            "pyresque pool --no-gc-freeze",
            pyresque_argv("--no-gc-freeze"),
            pyresque_ready,
            pyresque_enqueue,
            signal.SIGQUIT,
        ),
        System(
            "pyresque-nopreload",
            "pyresque pool --no-preload",
            pyresque_argv("--no-preload"),
            pyresque_ready,
            pyresque_enqueue,
            signal.SIGQUIT,
        ),
        System(
            "rq",
            "rq worker-pool (-c memapp_rq)",
            rq_argv,
            rq_ready,
            rq_enqueue,
            signal.SIGTERM,
        ),
        System(
            "rq-nopreload",
            "rq worker-pool (no preload)",
            rq_nopreload_argv,
            rq_ready,
            rq_enqueue,
            signal.SIGTERM,
        ),
        System(
            "celery",
            "celery prefork (-A memapp_celery)",
            celery_argv,
            celery_ready,
            celery_enqueue,
            signal.SIGTERM,
        ),
    )
}
