"""``pyresque status``: queues, workers (with their memory on this host) and stats."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

from pyresque.cli.common import store_for
from pyresque.settings.options import add_connection_flags
from pyresque.store.connection import redact
from pyresque.store.operations import Store
from pyresque.wire import protocol


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_flags(parser)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--watch", action="store_true", help="refresh in place, like top")


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
                "started": protocol.shown_time(started),
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


def _say_if_empty(store: Store, namespace: str) -> None:
    """On stderr: the namespace holds nothing, and which namespaces here do (a typo in
    ``--namespace`` showed an empty status without a word)."""
    if not store.dashboard.namespace_is_empty():
        return
    found = [n or "(no namespace)" for n in store.dashboard.resque_namespaces()]
    where = f"namespaces with Resque keys here: {', '.join(found)}" if found else "none has any"
    print(f"namespace {namespace!r} is empty; {where}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.watch and not args.json:
        from pyresque.cli.watch import watch

        return watch(store_for(args), redact(args.connection.redis_url))
    store = store_for(args)
    data = status_data(store)
    _say_if_empty(store, args.connection.namespace)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(f"Redis {redact(args.connection.redis_url)}  namespace {args.connection.namespace}")
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
