"""The layout of a script call, declared once: each ``KEYS`` and ``ARGV`` slot by name.

A script call's keys and arguments are positional: the Lua reads ``KEYS[n]`` and ``ARGV[n]``, the
worker packs them in the same order. :class:`ScriptLayout` names every slot once (the fixed ones,
those repeated per queue, and the optional tails a call carries only when it needs them), and
everything else comes from it: the Lua text (written with ``$name`` for each index, see
:meth:`ScriptLayout.render`), its header comment (:meth:`ScriptLayout.header`), and the packing on
the Python side (:mod:`pyresque.store.cycle`). Adding an argument is one :class:`Slot` here, its
value where the call is packed, and its use in the Lua by name.

:data:`CYCLE` is the worker's one call per job (see :data:`pyresque.wire.scripts.CYCLE`).
"""

from __future__ import annotations

import enum
import re
import textwrap
from dataclasses import dataclass


class Packing(enum.Enum):
    """How the fast path packs an argument (see :mod:`pyresque.store.scriptcall`)."""

    WORKER = "worker"  # the same for every call of a worker: packed once
    SECOND = "second"  # changes once a second (a time): the last few packed kept
    RECURRING = "recurring"  # one of a few values (a queue name, a flag): each packed once
    FRESH = "fresh"  # new each call (a token, a record): packed each time


@dataclass(frozen=True)
class Slot:
    """One ``KEYS`` or ``ARGV`` slot: its name in Python and in the Lua (``$name``), and what it
    holds."""

    name: str
    doc: str
    packing: Packing = Packing.FRESH


@dataclass(frozen=True)
class Tail:
    """Keys and arguments a call carries only when ``when`` says so, after the queues' (keys
    after the queue keys, arguments after the queue arguments), in declaration order."""

    name: str
    when: str
    keys: tuple[Slot, ...] = ()
    args: tuple[Slot, ...] = ()


_PLACEHOLDER = re.compile(r"\$([a-z_]+)")


@dataclass(frozen=True)
class ScriptLayout:
    """A script's ``KEYS`` and ``ARGV``: fixed slots, then per queue, then the optional tails."""

    keys: tuple[Slot, ...]
    queue_keys: tuple[Slot, ...]
    args: tuple[Slot, ...]
    queue_args: tuple[Slot, ...]
    tails: tuple[Tail, ...]
    reply: str

    def indices(self) -> dict[str, int]:
        """What each ``$name`` of the Lua stands for: a fixed slot its 1-based index, a queue slot
        its index for the first queue, a tail slot its offset from where its tail begins (1 for
        the first), ``$keys`` and ``$args`` how many fixed slots there are, ``$per_queue_args``
        how many arguments each queue has, and ``$<tail>_keys`` how many keys a tail adds."""
        out: dict[str, int] = {"keys": len(self.keys), "args": len(self.args)}
        out["per_queue_args"] = len(self.queue_args)
        for group, first in ((self.keys, 1), (self.args, 1)):
            for i, slot in enumerate(group):
                out[slot.name] = first + i
        for i, slot in enumerate(self.queue_keys):
            out[slot.name] = len(self.keys) + 1 + i
        for i, slot in enumerate(self.queue_args):
            out[slot.name] = len(self.args) + 1 + i
        for tail in self.tails:
            out[f"{tail.name}_keys"] = len(tail.keys)
            for group in (tail.keys, tail.args):
                for i, slot in enumerate(group):
                    out[slot.name] = 1 + i
        return out

    def render(self, template: str) -> str:
        """The Lua text of ``template`` with every ``$name`` replaced by its index, under the
        generated header. Raises KeyError for a name the layout does not declare."""
        indices = self.indices()
        body = _PLACEHOLDER.sub(lambda m: str(indices[m.group(1)]), template)
        return self.header() + body

    def header(self) -> str:
        """The Lua comment that documents ``KEYS``, ``ARGV`` and the reply, from the declaration."""
        n_keys, n_args = len(self.keys), len(self.args)
        lines = ["KEYS:"]
        lines += [f"  {i} {s.name}: {s.doc}" for i, s in enumerate(self.keys, 1)]
        lines += [f"  {n_keys + 1}.. per queue, in priority order: {_names(self.queue_keys)}"]
        lines += ["ARGV:"]
        lines += [f"  {i} {s.name}: {s.doc}" for i, s in enumerate(self.args, 1)]
        queue_docs = "; ".join(f"{s.name}: {s.doc}" for s in self.queue_args)
        lines += [f"  {n_args + 1}.. per queue, in the order of its keys: {queue_docs}"]
        for tail in self.tails:
            lines += [f"then, when {tail.when} ({tail.name}):"]
            lines += [f"  after the queue keys: {s.name}: {s.doc}" for s in tail.keys]
            lines += [f"  after the queue arguments: {s.name}: {s.doc}" for s in tail.args]
        lines += [f"Returns {self.reply}"]
        wrapped = [
            part
            for line in lines
            for part in textwrap.wrap(line, 96, subsequent_indent="      ", break_on_hyphens=False)
        ]
        return "".join(f"-- {line}\n" for line in wrapped)


def _names(slots: tuple[Slot, ...]) -> str:
    return ", ".join(f"{s.name} ({s.doc})" for s in slots)


CYCLE = ScriptLayout(
    keys=(
        Slot("inflight", "inflight:<id>, the worker's in-flight hash", Packing.WORKER),
        Slot("busy", "worker:<id>, its busy record", Packing.WORKER),
        Slot("redeliveries", "redeliveries", Packing.WORKER),
        Slot("processed", "stat:processed", Packing.WORKER),
        Slot("worker_processed", "stat:processed:<id>", Packing.WORKER),
        Slot("landing", "landing:<id>, where its blocking move drops a job", Packing.WORKER),
        Slot("pause_all", "pause-all-workers", Packing.WORKER),
        Slot("inflight_workers", "inflight-workers, recovery's index", Packing.WORKER),
    ),
    queue_keys=(Slot("queue", "queue:<q>", Packing.WORKER),),
    args=(
        Slot("worker_id", "the worker's id", Packing.WORKER),
        Slot(
            "run_at",
            "the busy record's time ('' = the server's clock: a call sent ahead of its job, "
            "behind a blocking move)",
            Packing.SECOND,
        ),
        Slot("acked_queue", "queue of the job to acknowledge ('' = none)", Packing.RECURRING),
        Slot(
            "acked_sha",
            "sha1 of that payload when it had been redelivered ('' = none)",
            Packing.RECURRING,
        ),
        Slot(
            "reserve_from",
            "'0' reserve nothing (acknowledge only), '1' the landing list, then the queues, "
            "'2' the queues only (no blocking move of the worker's has run since a call last "
            "looked in the landing list; the worker still looks once a second)",
            Packing.RECURRING,
        ),
        Slot("acked_token", "token of the reservation being acknowledged"),
        Slot("token", "token for the new reservation ('' = none)"),
        Slot(
            "extras",
            "what the call carries beyond a plain success: 'f' a failure counted in "
            "stat:failed, 'u' one not counted, 'd' a key to delete ('' = none)",
            Packing.RECURRING,
        ),
    ),
    queue_args=(
        Slot("queue_name", "the queue's name", Packing.WORKER),
        Slot("queue_json", "its name as JSON, for the busy record", Packing.WORKER),
    ),
    tails=(
        Tail(
            "failure",
            "extras holds 'f' or 'u'",
            keys=(
                Slot("failed", "failed", Packing.WORKER),
                Slot("failed_count", "stat:failed", Packing.WORKER),
                Slot("worker_failed_count", "stat:failed:<id>", Packing.WORKER),
            ),
            args=(Slot("failure_record", "the failure record to push"),),
        ),
        Tail(
            "forget",
            "extras holds 'd'",
            keys=(Slot("forget", "a key deleted with the acknowledgement (a retry counter)"),),
        ),
    ),
    reply=(
        "nil when nothing is reserved, 'paused' when pause-all-workers is set, 'held' when "
        "the in-flight hash holds a reservation this call does not know, else one string: "
        "'<deliveries> <length of the queue name in bytes> <queue name><payload>'."
    ),
)
