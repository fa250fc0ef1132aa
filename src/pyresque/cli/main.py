"""The ``pyresque`` command: work, enqueue, status, failures (and pool, in its own module)."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from pyresque import __version__
from pyresque.errors import ConfigError, PyresqueError, UnknownJobClass
from pyresque.jobs.apps import app_modules, import_apps, warn_if_nothing_to_run
from pyresque.jobs.client import configure
from pyresque.jobs.registry import default_registry
from pyresque.logs import setup_role_logging, setup_worker_logging
from pyresque.settings import connection_settings, worker_settings
from pyresque.store.connection import (
    connect,
    redact,
    refusal,
    validate_url,
)
from pyresque.store.operations import Store
from pyresque.wire import protocol
from pyresque.wire.keys import DEFAULT_NAMESPACE, Keys
from pyresque.wire.redaction import scrub_argv
from pyresque.worker.queues import QueueSelector

Command = Callable[[argparse.Namespace], int]


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
    """The URL and namespace from the options, else the environment; a bad URL stops here."""
    origin = "--redis" if args.redis else "REDIS_URL"
    resolved = connection_settings(args.redis, args.namespace)
    args.redis, args.namespace = validate_url(resolved.redis_url, origin), resolved.namespace


# --- work --------------------------------------------------------------------------------------


def cmd_work(args: argparse.Namespace) -> int:
    from pyresque.worker.loop import Worker

    overrides: dict[str, Any] = {
        "queues": args.queues,
        "burst": True if args.burst else None,
        "fork_per_job": False if args.in_process else None,
        "warm_child": True if args.warm_child else None,
        "interval": args.interval,
        "verbose": args.verbose or None,
        "namespace": args.namespace,
        "redis_url": args.redis,
    }
    settings = worker_settings(overrides=overrides)
    setup_worker_logging(args.appname or Path.cwd().name, args.log_json, settings.verbose)
    default_registry().allow_modules(args.allow_module or ())
    apps = app_modules(args.app)
    import_apps(apps)
    warn_if_nothing_to_run(apps, args.allow_module)
    selector = QueueSelector.parse(settings.queues)
    client = configure(settings.redis_url, namespace=settings.namespace)
    store = Store(client.redis, Keys(settings.namespace))
    _stop_if_refused(store)
    worker = Worker(store, selector, settings, redis_label=redact(settings.redis_url))
    return worker.work()


def _stop_if_refused(store: Store) -> None:
    """One round trip before the worker's loop: a refusal (password, database number) ends the command
    now, while an outage is left to the worker, which waits for Redis to come back."""
    try:
        store.server_time()
    except (redis.RedisError, OSError) as exc:
        if refusal(exc) is not None:
            raise


def _setup_scheduler_logging(verbose: int) -> None:
    setup_role_logging("pyresque-scheduler", Path.cwd().name, as_json=False, verbose=verbose)


# --- enqueue -----------------------------------------------------------------------------------


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _with_queue(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with ``--queue`` filled in from the job's decorator when it was not given (for
    ``enqueue`` now, and with ``--at``/``--in`` later)."""
    args.queue = args.queue or _queue_of(args.job_class, app_modules(args.app))
    return args


def cmd_enqueue(args: argparse.Namespace) -> int:
    queue = _with_queue(args).queue
    store = _store(args)
    payload = protocol.encode_payload(args.job_class, [_json_arg(a) for a in args.args])
    store.push(queue, payload)
    print(f"enqueued to {queue}: {payload}")
    return 0


def _queue_of(job_class: str, apps: list[str]) -> str:
    """The queue a registered job names in its decorator, with the app imported to find it."""
    if not apps:
        raise ConfigError(
            f"enqueue {job_class}: give --queue, or --app MODULE (or $PYRESQUE_APP) to take the "
            "queue the job's decorator names"
        )
    import_apps(apps)
    try:
        spec = default_registry().resolve(job_class)
    except UnknownJobClass as exc:
        known = ", ".join(default_registry().names()) or "none"
        raise ConfigError(
            f"enqueue {job_class}: --queue not given and {exc} by --app {','.join(apps)} "
            f"(registered: {known})"
        ) from None
    if not spec.queue:
        raise ConfigError(f"enqueue {job_class}: the job names no queue of its own: give --queue")
    return spec.queue


# --- status ------------------------------------------------------------------------------------


def status_data(store: Store) -> dict[str, Any]:
    queues = store.queue_names()
    sizes = store.queue_sizes(queues)
    worker_ids = store.worker_ids()
    heartbeats = store.heartbeats()
    workers = []
    for wid, (busy, started, processed, _failed) in zip(
        worker_ids, store.dashboard.worker_rows(worker_ids), strict=True
    ):
        job = _busy_record(busy)
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


def _busy_record(busy: str | None) -> dict[str, Any] | None:
    """A busy record as a mapping; one that cannot be parsed (written by anyone, too deep, a
    number beyond a double) is shown as its text rather than failing the whole status."""
    if not busy:
        return None
    try:
        data = protocol.loads(busy)
    except ValueError:
        data = None
    return data if isinstance(data, dict) else {"queue": None, "payload": busy}


def local_memory(worker_id: str) -> dict[str, int] | None:
    """USS and PSS of a worker on this host with its job child (None for other hosts)."""
    from pyresque.pool.memory import read_worker_usage
    from pyresque.worker.recovery import WorkerId

    parsed = WorkerId.parse(worker_id)
    if parsed is None or parsed.host != socket.gethostname():
        return None
    usage = read_worker_usage(parsed.pid)
    if usage is None:
        return None
    return {"uss": usage.total.uss, "pss": usage.total.pss}


def cmd_status(args: argparse.Namespace) -> int:
    if args.watch and not args.json:
        from pyresque.cli.watch import watch

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
            payload = job.get("payload")
            shown = (
                f"{payload.get('class')} {json.dumps(payload.get('args'), ensure_ascii=False)}"
                if isinstance(payload, dict)
                else f"(unreadable) {payload!s}"
            )
            what = (
                f"working on {job.get('queue')}: {protocol.shorten(shown, 200)} "
                f"since {job.get('run_at')}"
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


# --- failures (in their own module) --------------------------------------------------------


def _cmd_failures(args: argparse.Namespace) -> int:
    from pyresque.cli.failures import cmd_failures

    return cmd_failures(args, _store(args))


# --- parser ------------------------------------------------------------------------------------


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; for ``work``, only the worker's part of it.

    A worker runs for days and, in fork mode, forks a child per job: the modules only the other
    commands need (the scheduler with croniter and YAML, the dashboard, failures) would be pages it
    carries and copies in every fork, so ``pyresque work`` does not import them.
    """
    parser = argparse.ArgumentParser(prog="pyresque", description="Resque-compatible jobs")
    parser.add_argument("--version", action="version", version=f"pyresque {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pool", help="run a worker pool (see pyresque pool --help)", add_help=False)
    _add_work_parser(sub)
    if command != "work":
        _add_tool_parsers(sub)
    return parser


def _add_work_parser(sub: Any) -> None:
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
    work.add_argument(
        "--warm-child",
        action="store_true",
        help="fork each job's child ahead, while the previous job runs (PYRESQUE_WARM_CHILD)",
    )
    work.add_argument("--interval", type=float, default=None, help="longest idle poll (seconds)")
    work.add_argument("--verbose", "-v", action="count", default=0)
    work.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    work.add_argument(
        "--appname", default=None, help="app name in log lines (default: the directory's name)"
    )
    work.set_defaults(func=cmd_work)


def _add_tool_parsers(sub: Any) -> None:
    from pyresque.cli import schedule as scheduler_cli
    from pyresque.cli.failures import add_failures_parser
    from pyresque.web.server import add_arguments as web_arguments

    enqueue = sub.add_parser("enqueue", help="push a job")
    _add_connection_options(enqueue)
    enqueue.add_argument(
        "--queue", "-q", help="the queue (default: the one the job names, with --app)"
    )
    enqueue.add_argument(
        "--app", "-a", action="append", help="module that registers the job (repeatable)"
    )
    enqueue.add_argument("job_class", metavar="CLASS")
    enqueue.add_argument(
        "args", nargs="*", metavar="JSON_ARG", help="arguments, parsed as JSON when they are JSON"
    )
    enqueue.set_defaults(func=cmd_enqueue)
    scheduler_cli.add_delay_options(enqueue, _json_arg)  # --at / --in
    now_or_later: Command = enqueue.get_default("func")
    enqueue.set_defaults(func=lambda args: now_or_later(_with_queue(args)))

    status = sub.add_parser("status", help="queues, workers and stats")
    _add_connection_options(status)
    status.add_argument("--json", action="store_true")
    status.add_argument("--watch", action="store_true", help="refresh in place, like top")
    status.set_defaults(func=cmd_status)

    web = sub.add_parser("web", help="serve the dashboard (needs the 'web' extra)")
    _add_connection_options(web)
    web_arguments(web)  # sets func

    add_failures_parser(sub, _add_connection_options)
    sub.choices["failures"].set_defaults(func=_cmd_failures)
    scheduler_cli.add_commands(sub, _add_connection_options, _setup_scheduler_logging)


def main(argv: Sequence[str] | None = None) -> int:
    scrub_argv()  # first: a password in the command line is readable by every user of the host
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pool"]:  # the pool has its own option parser (resque-pool's options)
        from pyresque.cli.pool import main as pool_main

        return pool_main(argv[1:], prog="pyresque pool")
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    func: Command = args.func
    try:
        if hasattr(args, "redis"):
            _resolve_connection(args)
        return func(args)
    except ConfigError as exc:
        return _error(str(exc), 2)
    except (PyresqueError, IndexError) as exc:
        return _error(str(exc), 1)
    except (redis.RedisError, OSError) as exc:
        return _redis_error(exc, getattr(args, "redis", ""))
    except KeyboardInterrupt:
        return 130


def _error(message: str, code: int) -> int:
    print(f"pyresque: error: {message}", file=sys.stderr)
    return code


def _redis_error(exc: BaseException, url: str) -> int:
    """A refusal (password, ACL, database number) says so and is exit status 2, as a worker's
    is; anything else is an outage (exit status 1)."""
    refused = refusal(exc)
    if refused is not None:
        return _error(f"Redis at {redact(url)}: {refused}", 2)
    return _error(f"Redis unreachable at {redact(url)}: {exc}", 1)
