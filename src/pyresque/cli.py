"""The ``pyresque`` command: work, enqueue, status, failures (and pool, in its own module)."""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from pyresque import __version__, protocol
from pyresque.apps import app_modules, import_apps
from pyresque.client import configure
from pyresque.connection import CONNECTION_ERRORS, connect, redact
from pyresque.errors import ConfigError, PyresqueError
from pyresque.keys import DEFAULT_NAMESPACE, Keys
from pyresque.queues import QueueSelector
from pyresque.registry import default_registry
from pyresque.scheduler import cli as scheduler_cli
from pyresque.settings import connection_settings, worker_settings
from pyresque.store import Store

Command = Callable[[argparse.Namespace], int]


def setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s pyresque[%(process)d] %(levelname)s: %(message)s",
        stream=sys.stdout,
    )


def _store(args: argparse.Namespace) -> Store:
    return Store(connect(args.redis), Keys(args.namespace))


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="Redis URL (default: $REDIS_URL or redis://localhost:6379/0)",
    )
    parser.add_argument(
        "--namespace",
        default=None,
        help=f"key namespace (default: $RESQUE_NAMESPACE or {DEFAULT_NAMESPACE})",
    )


def _resolve_connection(args: argparse.Namespace) -> None:
    resolved = connection_settings(args.redis, args.namespace)
    args.redis, args.namespace = resolved.redis_url, resolved.namespace


# --- work --------------------------------------------------------------------------------------


def cmd_work(args: argparse.Namespace) -> int:
    from pyresque.worker import Worker

    overrides: dict[str, Any] = {
        "queues": args.queues,
        "burst": True if args.burst else None,
        "fork_per_job": False if args.in_process else None,
        "interval": args.interval,
        "verbose": args.verbose or None,
        "namespace": args.namespace,
        "redis_url": args.redis,
    }
    settings = worker_settings(overrides=overrides)
    setup_logging(settings.verbose)
    default_registry().allow_modules(args.allow_module or ())
    import_apps(app_modules(args.app))
    selector = QueueSelector.parse(settings.queues)
    client = configure(settings.redis_url, namespace=settings.namespace)
    store = Store(client.redis, Keys(settings.namespace))
    worker = Worker(store, selector, settings, redis_label=redact(settings.redis_url))
    return worker.work()


# --- enqueue -----------------------------------------------------------------------------------


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_enqueue(args: argparse.Namespace) -> int:
    store = _store(args)
    payload = protocol.encode_payload(args.job_class, [_json_arg(a) for a in args.args])
    store.push(args.queue, payload)
    print(f"enqueued to {args.queue}: {payload}")
    return 0


# --- status ------------------------------------------------------------------------------------


def status_data(store: Store) -> dict[str, Any]:
    queues = store.queue_names()
    sizes = store.queue_sizes(queues)
    worker_ids = store.worker_ids()
    heartbeats = store.heartbeats()
    workers = []
    for wid, (busy, started, processed) in zip(
        worker_ids, store.worker_details(worker_ids), strict=True
    ):
        job = json.loads(busy) if busy else None
        workers.append(
            {
                "id": wid,
                "started": started,
                "heartbeat": heartbeats.get(wid),
                "processed": processed,
                "job": job,
                "memory": local_memory(wid),
            }
        )
    processed, failed = store.stats()
    return {
        "queues": [{"name": q, "size": sizes[q]} for q in queues],
        "workers": workers,
        "processed": processed,
        "failed": failed,
        "failures": store.failure_count(),
        "paused": store.paused_all(),
    }


def local_memory(worker_id: str) -> dict[str, int] | None:
    """USS and PSS of a worker on this host with its job child (None for other hosts)."""
    from pyresque.pool.memory import Usage, child_pids, read_usage
    from pyresque.recovery import WorkerId

    parsed = WorkerId.parse(worker_id)
    if parsed is None or parsed.host != socket.gethostname():
        return None
    usage = read_usage(parsed.pid)
    if usage is None:
        return None
    for child in child_pids(parsed.pid):
        usage = usage + (read_usage(child) or Usage())
    return {"uss": usage.uss, "pss": usage.pss}


def cmd_status(args: argparse.Namespace) -> int:
    if args.watch and not args.json:
        from pyresque.watch import watch

        return watch(_store(args), redact(args.redis))
    data = status_data(_store(args))
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(f"Redis {redact(args.redis)}  namespace {args.namespace}")
    print(f"Queues ({len(data['queues'])}):")
    width = max((len(q["name"]) for q in data["queues"]), default=0)
    for q in data["queues"]:
        print(f"  {q['name']:<{width}}  {q['size']}")
    print(f"Workers ({len(data['workers'])}):")
    for w in data["workers"]:
        job = w["job"]
        if job:
            payload = job.get("payload") or {}
            what = (
                f"working on {job.get('queue')}: {payload.get('class')} "
                f"{json.dumps(payload.get('args'), ensure_ascii=False)} since {job.get('run_at')}"
            )
        else:
            what = "idle"
        mem = w["memory"]
        memory = f"  [USS {mem['uss'] / 1048576:.1f}MB]" if mem else ""
        print(f"  {w['id']}  {what}{memory}")
    paused = "  (all workers paused)" if data["paused"] else ""
    print(
        f"Processed: {data['processed']}  Failed: {data['failed']}  "
        f"Failure records: {data['failures']}{paused}"
    )
    return 0


# --- failures ----------------------------------------------------------------------------------


def cmd_failures(args: argparse.Namespace) -> int:
    store = _store(args)
    action = args.action
    if action == "list":
        records = store.failures(args.start, args.limit)
        if args.json:
            print(json.dumps([json.loads(r) for r in records], indent=2, ensure_ascii=False))
            return 0
        for index, raw in enumerate(records, start=args.start):
            rec = protocol.decode_failure(raw)
            payload = rec.get("payload")
            cls = payload.get("class") if isinstance(payload, dict) else payload
            retried = f" (retried {rec['retried_at']})" if rec.get("retried_at") else ""
            print(
                f"{index}  {rec.get('failed_at')}  {rec.get('queue')}  {cls}  "
                f"{rec.get('exception')}: {rec.get('error')}{retried}"
            )
        print(f"{store.failure_count()} failure record(s)")
        return 0
    if action == "retry":
        indexes = range(store.failure_count()) if args.all else args.index
        for index in indexes:
            queue = store.retry_failure(index, time.time())
            print(f"retried {index} -> {queue}")
        return 0
    if action == "remove":
        # highest first, so earlier removals do not shift the later indexes
        for index in sorted(args.index, reverse=True):
            if not store.remove_failure(index):
                raise ConfigError(f"no failure record at index {index}")
            print(f"removed {index}")
        return 0
    removed = store.clear_failures()
    print("cleared all failure records" if removed else "no failure records")
    return 0


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyresque", description="Resque-compatible jobs")
    parser.add_argument("--version", action="version", version=f"pyresque {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pool", help="run a worker pool (see pyresque pool --help)", add_help=False)

    work = sub.add_parser("work", help="run a worker")
    _add_connection_options(work)
    work.add_argument("--queues", "-q", help="queue list, e.g. high,low or '*' (default $QUEUES)")
    work.add_argument("--app", "-a", action="append", help="module to import (repeatable)")
    work.add_argument(
        "--allow-module",
        action="append",
        metavar="PREFIX",
        help="let payloads name jobs by import path under PREFIX (repeatable)",
    )
    work.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    work.add_argument("--in-process", action="store_true", help="run jobs without forking")
    work.add_argument("--interval", type=float, default=None, help="longest idle poll (seconds)")
    work.add_argument("--verbose", "-v", action="count", default=0)
    work.set_defaults(func=cmd_work)

    enqueue = sub.add_parser("enqueue", help="push a job")
    _add_connection_options(enqueue)
    enqueue.add_argument("--queue", "-q", required=True)
    enqueue.add_argument("job_class", metavar="CLASS")
    enqueue.add_argument(
        "args", nargs="*", metavar="JSON_ARG", help="arguments, parsed as JSON when they are JSON"
    )
    enqueue.set_defaults(func=cmd_enqueue)
    scheduler_cli.add_delay_options(enqueue, _json_arg)  # --at / --in

    status = sub.add_parser("status", help="queues, workers and stats")
    _add_connection_options(status)
    status.add_argument("--json", action="store_true")
    status.add_argument("--watch", action="store_true", help="refresh in place, like top")
    status.set_defaults(func=cmd_status)

    from pyresque.web.server import add_arguments as web_arguments

    web = sub.add_parser("web", help="serve the dashboard (needs the 'web' extra)")
    _add_connection_options(web)
    web_arguments(web)  # sets func

    failures = sub.add_parser("failures", help="list, retry, remove or clear failure records")
    fsub = failures.add_subparsers(dest="action", required=True)
    flist = fsub.add_parser("list")
    flist.add_argument("--start", type=int, default=0)
    flist.add_argument("--limit", type=int, default=50)
    flist.add_argument("--json", action="store_true")
    fretry = fsub.add_parser("retry")
    fretry.add_argument("index", type=int, nargs="*")
    fretry.add_argument("--all", action="store_true")
    fremove = fsub.add_parser("remove")
    fremove.add_argument("index", type=int, nargs="+")
    fclear = fsub.add_parser("clear")
    for action_parser in (flist, fretry, fremove, fclear):
        _add_connection_options(action_parser)
    failures.set_defaults(func=cmd_failures)
    scheduler_cli.add_commands(sub, _add_connection_options, setup_logging)  # scheduler, schedule
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pool"]:  # the pool has its own option parser (resque-pool's options)
        from pyresque.pool.cli import main as pool_main

        return pool_main(argv[1:], prog="pyresque pool")
    args = build_parser().parse_args(argv)
    func: Command = args.func
    if hasattr(args, "redis"):
        _resolve_connection(args)
    try:
        return func(args)
    except ConfigError as exc:
        print(f"pyresque: error: {exc}", file=sys.stderr)
        return 2
    except PyresqueError as exc:
        print(f"pyresque: error: {exc}", file=sys.stderr)
        return 1
    except IndexError as exc:
        print(f"pyresque: error: {exc}", file=sys.stderr)
        return 1
    except CONNECTION_ERRORS as exc:
        print(
            f"pyresque: error: Redis unreachable at {redact(getattr(args, 'redis', ''))}: {exc}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
