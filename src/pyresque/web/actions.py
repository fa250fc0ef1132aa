"""The dashboard's changes (retry, remove, clear, pause), each a function of the store and the
posted form fields.

A failure record is named by its index *and* a digest of its text: the list shifts when records are
removed or added, and an action must hit the record the operator saw, or nothing. (A record that
moved since the page was drawn is skipped; reloading shows where it went.)
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from pyresque.errors import PyresqueError
from pyresque.store.operations import Store
from pyresque.web.data import digest

log = logging.getLogger(__name__)

Fields = dict[str, list[str]]
_INDEX = re.compile("[0-9]+")


def _items(fields: Fields) -> list[tuple[int, str]]:
    """(index, digest) pairs from ``item`` fields written as ``index:digest``."""
    out = []
    for text in fields.get("item", []):
        index, _, want = text.partition(":")
        if _INDEX.fullmatch(index) and want:  # not isdigit(): int("²") raises
            out.append((int(index), want))
    return out


def _matching(store: Store, index: int, want: str) -> bool:
    raw = store.dashboard.failure_at(index)
    return raw is not None and digest(raw) == want


def _retry(store: Store, index: int) -> None:
    try:
        queue = store.retry_failure(index, time.time())
    except PyresqueError as exc:  # a malformed record, or one just removed
        log.warning("web: cannot retry failure %d: %s", index, exc)
        return
    log.info("web: retried failure %d to %s", index, queue)


def retry_failures(store: Store, fields: Fields) -> None:
    for index, want in _items(fields):
        if _matching(store, index, want):
            _retry(store, index)


def remove_failures(store: Store, fields: Fields) -> None:
    # highest index first, so each removal leaves the lower indexes where they were
    for index, want in sorted(_items(fields), reverse=True):
        if _matching(store, index, want):
            store.remove_failure(index)
            log.info("web: removed failure %d", index)


def bulk_failures(store: Store, fields: Fields) -> None:
    if fields.get("bulk") == ["remove"]:
        remove_failures(store, fields)
    else:
        retry_failures(store, fields)


def retry_all_failures(store: Store, fields: Fields) -> None:
    count = store.failure_count()
    for index in range(count):
        _retry(store, index)
    log.info("web: retried all %d failures", count)


def clear_failures(store: Store, fields: Fields) -> None:
    store.clear_failures()
    log.info("web: cleared failures")


def remove_queue(store: Store, fields: Fields) -> None:
    for name in fields.get("queue", []):
        store.remove_queue(name)
        log.info("web: removed queue %s", name)


def pause_all(store: Store, fields: Fields) -> None:
    store.set_paused_all(True)
    log.info("web: paused all workers")


def resume_all(store: Store, fields: Fields) -> None:
    store.set_paused_all(False)
    log.info("web: resumed all workers")


ACTIONS: dict[str, Callable[[Store, Fields], None]] = {
    "retry": retry_failures,
    "remove": remove_failures,
    "bulk": bulk_failures,
    "retry-all": retry_all_failures,
    "clear": clear_failures,
    "remove-queue": remove_queue,
    "pause": pause_all,
    "resume": resume_all,
}
