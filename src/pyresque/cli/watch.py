"""``pyresque status --watch``: a top-like view of queues, workers and rates, refreshed in place.

Plain ANSI escapes on the alternate screen (as ``top`` and ``less`` use), so it works in any
terminal and over ssh; ``q`` or Ctrl-C leaves and gives the terminal back as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from pyresque.store.operations import Store

INTERVAL = 2.0
ENTER, LEAVE = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l"
HOME_CLEAR = "\x1b[H"
CLEAR_LINE_END, CLEAR_BELOW = "\x1b[K", "\x1b[J"


@dataclass
class Snapshot:
    """What one refresh shows."""

    time: float
    processed: int
    failed: int
    failures: int
    paused: bool
    queues: dict[str, int]
    busy: list[tuple[str, str]]  # worker id, what it does
    idle: int
    pools: list[str] = field(default_factory=list)


def take(store: Store, now: float) -> Snapshot:
    names = store.queue_names()
    ids = store.worker_ids()
    busy = []
    for wid, record in zip(ids, store.dashboard.busy_records(ids), strict=True):
        if record is None:
            continue
        try:
            job = json.loads(record)
            payload = job.get("payload") or {}
            what = f"{job.get('queue')}: {payload.get('class')} {json.dumps(payload.get('args'))}"
        except (ValueError, AttributeError):
            what = "(unreadable busy record)"
        busy.append((wid, what))
    processed, failed = store.stats()
    pools = []
    for pool_id, text in sorted(store.dashboard.pool_states().items()):
        try:
            state = json.loads(text)
            groups = " ".join(
                f"{g['name']}={g['running']}/{g['desired']}" for g in state.get("groups", [])
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            groups = "(unreadable)"
        pools.append(f"{pool_id}  {groups}")
    return Snapshot(
        now,
        processed,
        failed,
        store.failure_count(),
        store.paused_all(),
        store.queue_sizes(names),
        busy,
        len(ids) - len(busy),
        pools,
    )


def render(snap: Snapshot, prev: Snapshot | None, width: int, height: int, label: str) -> list[str]:
    """The screen as lines, cut to the terminal's size. Pure, for tests."""
    rate = fail_rate = 0.0
    if prev is not None and snap.time > prev.time:
        dt = snap.time - prev.time
        rate = max(snap.processed - prev.processed, 0) / dt
        fail_rate = max(snap.failed - prev.failed, 0) / dt
    stamp = time.strftime("%H:%M:%S", time.localtime(snap.time))
    lines = [
        f"pyresque  {label}  {stamp}{'  ALL WORKERS PAUSED' if snap.paused else ''}",
        f"processed {snap.processed} ({rate:.1f}/s)  failed {snap.failed} ({fail_rate:.1f}/s)"
        f"  failure records {snap.failures}",
        f"workers {len(snap.busy) + snap.idle}: {len(snap.busy)} busy, {snap.idle} idle",
        "",
        f"{'QUEUE':<40} {'JOBS':>10} {'CHANGE':>8}",
    ]
    for name, size in sorted(snap.queues.items(), key=lambda kv: (-kv[1], kv[0])):
        delta = size - prev.queues.get(name, size) if prev is not None else 0
        lines.append(f"{name:<40} {size:>10} {delta:>+8}")
    if snap.pools:
        lines += ["", "POOL  GROUPS running/desired", *snap.pools]
    lines += ["", "BUSY WORKER  JOB"]
    lines += [f"{wid}  {what}" for wid, what in snap.busy]
    lines = [line[:width] for line in lines]
    if len(lines) > height - 1:
        lines = [*lines[: height - 2], f"… {len(lines) - height + 2} more lines"]
    return lines


@contextlib.contextmanager
def _screen() -> Iterator[bool]:
    """Alternate screen and single-key input when stdin is a terminal; restored on the way out."""
    interactive = sys.stdin.isatty()
    saved = None
    if interactive:
        import termios
        import tty

        saved = termios.tcgetattr(sys.stdin.fileno())
        tty.setcbreak(sys.stdin.fileno())
    sys.stdout.write(ENTER)
    try:
        yield interactive
    finally:
        sys.stdout.write(LEAVE)
        sys.stdout.flush()
        if saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


def _quit_pressed(interactive: bool, timeout: float) -> bool:
    if not interactive:
        time.sleep(timeout)
        return False
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    return bool(ready) and os.read(sys.stdin.fileno(), 16).strip().lower().startswith(b"q")


def watch(store: Store, label: str, interval: float = INTERVAL) -> int:
    prev: Snapshot | None = None
    with contextlib.suppress(KeyboardInterrupt), _screen() as interactive:
        while True:
            snap = take(store, time.time())
            size = shutil.get_terminal_size()
            lines = render(snap, prev, size.columns, size.lines, label)
            out = HOME_CLEAR + "".join(line + CLEAR_LINE_END + "\r\n" for line in lines)
            sys.stdout.write(out + CLEAR_BELOW)
            sys.stdout.flush()
            prev = snap
            if _quit_pressed(interactive, interval):
                break
    return 0
