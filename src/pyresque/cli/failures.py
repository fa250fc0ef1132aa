"""``pyresque failures``: list, retry, remove and clear failure records, as resque-web does.

resque-web's meaning is the reference: retrying a record re-queues its job and marks the record
``retried_at`` in place (it stays listed until removed), and a record already retried offers only
Remove. So ``retry --all`` skips retried records (one job is never queued twice by it), retrying a
retried record needs ``--again``, and every index is checked before anything changes.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from pyresque.cli.common import store_for
from pyresque.errors import ConfigError, PayloadError
from pyresque.settings.options import add_connection_flags
from pyresque.store.operations import Store
from pyresque.wire import protocol


def record_index(text: str) -> int:
    """An index as the ``list`` output shows it: a whole number ≥ 0.

    Negative indexes are refused rather than counted from the end as Redis does: ``remove -1``
    must not silently delete the newest record.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a record index (0, 1, ...)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"{value} is negative: indexes count from 0, the oldest record, as 'list' shows them"
        )
    return value


def positive(text: str) -> int:
    value = record_index(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected at least 1")
    return value


def add_arguments(failures: argparse.ArgumentParser) -> None:
    fsub = failures.add_subparsers(dest="action", required=True)
    flist = fsub.add_parser("list", help="the records, oldest first, with their indexes")
    flist.add_argument("--start", type=record_index, default=0)
    flist.add_argument("--limit", type=positive, default=50)
    flist.add_argument("--json", action="store_true")
    fretry = fsub.add_parser(
        "retry", help="re-queue the jobs of these records (marked retried, kept listed)"
    )
    fretry.add_argument("index", type=record_index, nargs="*")
    fretry.add_argument("--all", action="store_true", help="every record not retried yet")
    fretry.add_argument("--again", action="store_true", help="also records already retried")
    fremove = fsub.add_parser("remove", help="delete these records")
    fremove.add_argument("index", type=record_index, nargs="+")
    fclear = fsub.add_parser("clear", help="delete every record")
    for action_parser in (flist, fretry, fremove, fclear):
        add_connection_flags(action_parser)


def run(args: argparse.Namespace) -> int:
    store = store_for(args)
    if args.action == "list":
        return _list(store, args.start, args.limit, args.json)
    if args.action == "retry":
        return _retry(store, args.index, every=args.all, again=args.again)
    if args.action == "remove":
        return _remove(store, args.index)
    removed = store.clear_failures()
    print("cleared all failure records" if removed else "no failure records")
    return 0


def _list(store: Store, start: int, limit: int, as_json: bool) -> int:
    records = store.failures(start, limit)
    if as_json:
        print(json.dumps([json.loads(r) for r in records], indent=2, ensure_ascii=False))
        return 0
    for index, raw in enumerate(records, start=start):
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


def _checked(store: Store, indexes: Sequence[int]) -> list[int]:
    """The distinct indexes, in order, once every one is known to name a record."""
    count = store.failure_count()
    unique = sorted(set(indexes))
    missing = [i for i in unique if i >= count]
    if missing:
        raise ConfigError(
            f"no failure record at index {', '.join(map(str, missing))} "
            f"(there are {count}: 0 to {count - 1})"
            if count
            else f"no failure record at index {', '.join(map(str, missing))} (there are none)"
        )
    return unique


def _retried_at(store: Store, index: int) -> str | None:
    [raw] = store.failures(index, 1) or [""]
    try:
        value = protocol.decode_failure(raw).get("retried_at") if raw else None
    except PayloadError:
        return None
    return str(value) if value else None


def _retry(store: Store, indexes: Sequence[int], *, every: bool, again: bool) -> int:
    if every == bool(indexes):
        raise ConfigError(
            "retry: give the indexes of the records to retry, or --all (not both); "
            "'pyresque failures list' shows the indexes"
        )
    chosen = range(store.failure_count()) if every else _checked(store, indexes)
    pending: list[tuple[int, str | None]] = []
    skipped: list[tuple[int, str | None]] = []
    for index in chosen:
        retried_at = None if again else _retried_at(store, index)
        (skipped if retried_at else pending).append((index, retried_at))
    if skipped and not every:
        shown = ", ".join(f"{i} (at {at})" for i, at in skipped)
        raise ConfigError(
            f"already retried: {shown}; nothing was re-queued. Add --again to queue their jobs "
            "once more, or remove the records"
        )
    now = time.time()
    for index, _ in pending:
        print(f"retried {index} -> {store.retry_failure(index, now)}")
    if every:
        print(f"retried {len(pending)}, skipped {len(skipped)} already retried")
    return 0


def _remove(store: Store, indexes: Sequence[int]) -> int:
    # highest first, so earlier removals do not shift the later indexes
    for index in reversed(_checked(store, indexes)):
        if not store.remove_failure(index):
            raise ConfigError(f"no failure record at index {index} (removed meanwhile?)")
        print(f"removed {index}")
    return 0
