"""A worker's progress between reserving a job and acknowledging it: one value, named transitions.

What the worker must remember from one ``CYCLE`` call to the next is small but subtle: the finished
job it still has to acknowledge (the next call does it), the reply of a call it sent behind its
blocking move and read with the move's, whether a reply may have been lost (then a reservation may
be the worker's that it never heard of, and it looks in its in-flight hash before the next call),
and when a call last looked in its landing list. :class:`Progress` holds all of it, immutable; each
event is a method that returns the next value, and :meth:`Progress.step` says what the worker does
next. Pure: no Redis, no clock of its own (``now`` is passed in); the worker acts
(:mod:`pyresque.worker.reserving`), and ``tests/unit/test_progress.py`` tests it as a table.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import NamedTuple

from pyresque.store.cycle import HELD, Ack, Reply, Reservation

LANDING_RECHECK = 1.0  # how often a busy worker's reservation looks in its landing list anyway


class Step(enum.Enum):
    """What the worker does next to get its next job."""

    IDLE_PAUSED = "idle paused"  # paused: acknowledge, hand back, wait (reserve nothing)
    RECONCILE = "reconcile"  # learn from the in-flight hash what a lost reply did, first
    TAKE_EARLY = "take early"  # the call sent behind the blocking move replied: that is the next
    CALL = "call"  # a CYCLE call: acknowledge the finished job (if any), reserve the next


# A CYCLE call to make: the acknowledgement it carries, and whether it looks in the landing list
# first (a plain tuple: one a job).
Call = tuple[Ack | None, bool]


@dataclass(frozen=True, slots=True)
class Early:
    """The reply of the reservation sent behind the blocking move, read with the move's."""

    reply: Reply


# Progress(...) without the named tuple's constructor, a Python function: for the two transitions
# of every job (finished, replied), whose values come in the fields' order.
_new = tuple.__new__


class Progress(NamedTuple):
    """Where the worker stands between two CYCLE calls (a named tuple: two transitions a job,
    and a tuple costs a fraction of a frozen dataclass to make).

        ``ack``: the finished job the next call acknowledges. ``early``: the reply of the call sent
        behind the blocking move, not taken yet. ``unsure``: a reply was lost, or a call found a
        reservation it did not know (``held``): reconcile before the next call. ``landing_looked``:
        when a call last looked in the landing list (``-inf``: a blocking move ran since, the next
        call must look). ``held``: how many replies in a row said :data:`HELD` (from the second on,
    the worker waits a little: never a busy loop, whatever holds the reservation).
    """

    ack: Ack | None = None
    early: Early | None = None
    unsure: bool = False
    landing_looked: float = -math.inf
    held: int = 0

    def step(self, paused: bool) -> Step:
        """What to do next. A job the server reserved behind the blocking wait is the worker's
        to run even when a pause was seen since: it was reserved before the pause."""
        early = self.early
        if paused and not (early is not None and isinstance(early.reply, Reservation)):
            return Step.IDLE_PAUSED
        if self.unsure:
            return Step.RECONCILE
        if early is not None:
            return Step.TAKE_EARLY
        return Step.CALL

    def call(self, now: float) -> Call:
        """The CYCLE call to make at ``now``. Only a blocking move of the worker's puts a job in
        its landing list, and the call behind the move takes it: a busy worker's calls skip the
        list (one command less for the server a job). They look after a move whose reply went
        unread, and once a second for a move the server served after the worker gave up on it."""
        return self.ack, now - self.landing_looked >= LANDING_RECHECK

    # --- transitions ---------------------------------------------------------------------------

    def finished(self, ack: Ack | None) -> Progress:
        """A job ended: ``ack`` goes with the next call (None: the job was put back)."""
        return _new(Progress, (ack, self.early, self.unsure, self.landing_looked, self.held))

    def replied(self, call: Call, reply: Reply, now: float) -> Progress:
        """A call made at ``now`` replied: its acknowledgement is applied (by token, exactly
        once); it looked in the landing list if it said so (a call that says held returns before
        it looks there)."""
        held = not isinstance(reply, Reservation) and reply == HELD  # (a job: no __eq__ call)
        looked = now if call[1] and not held else self.landing_looked
        count = self.held + 1 if held else 0
        return _new(Progress, (None, self.early, self.unsure or held, looked, count))

    def acknowledged(self) -> Progress:
        """A call that reserves nothing applied the acknowledgement."""
        return Progress(None, self.early, self.unsure, self.landing_looked, self.held)

    def took_early(self) -> tuple[Progress, Reply]:
        """The early reply taken, as a call's reply (its landing look was counted when read)."""
        reply = self.early.reply if self.early is not None else None
        held = reply == HELD
        count = self.held + 1 if held else 0
        return Progress(self.ack, None, self.unsure or held, self.landing_looked, count), reply

    def moving(self) -> Progress:
        """A blocking move is about to run: it may land a job whatever becomes of its reply."""
        return Progress(self.ack, self.early, self.unsure, -math.inf, self.held)

    def waited(self, reply: Reply, *, read: bool, unsure: bool, now: float) -> Progress:
        """The blocking wait ended: the reply of the call behind it, when ``read``; ``unsure``
        when that call was sent and its reply never read (it may have reserved a job)."""
        if not read:
            return Progress(
                self.ack, self.early, self.unsure or unsure, self.landing_looked, self.held
            )
        looked = now if reply != HELD else self.landing_looked
        return Progress(self.ack, Early(reply), self.unsure or unsure, looked, self.held)

    def paused(self) -> Progress:
        """Idling paused: an early reply is dropped (an empty one is stale; one that said held
        leaves a reservation to put back, so the worker reconciles)."""
        unsure = self.unsure or (self.early is not None and self.early.reply == HELD)
        return Progress(self.ack, None, unsure, self.landing_looked, self.held)

    def reconciled(self, ack_pending: bool) -> Progress:
        """The worker looked at its in-flight hash: whatever it held goes back (an early reply's
        job with it), unless it still holds the job being acknowledged (``ack_pending``: the
        acknowledgement was not applied, and goes with the next call)."""
        return Progress(self.ack if ack_pending else None, None, False, -math.inf, self.held)
