"""The worker's progress between reserving and acknowledging, as a table: each event from a
given state, and the state and step that follow (pyresque.worker.progress)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from pyresque.store.cycle import HELD, PAUSED, Ack, Reservation
from pyresque.worker.progress import LANDING_RECHECK, Early, Progress, Step

JOB = Reservation("q", '{"class":"A","args":[]}', 0, "n.1")
NEXT = Reservation("q", '{"class":"B","args":[]}', 0, "n.2")
ACK = Ack(JOB)
NOW = 100.0
FRESH = Progress()
BUSY = Progress(ack=ACK, landing_looked=NOW - 0.5)  # a job done, the landing list just looked at

Event = Callable[[Progress], Progress]

TRANSITIONS: list[tuple[str, Progress, Event, Progress]] = [
    (
        "a job ends: its ack waits for the next call",
        FRESH,
        lambda p: p.finished(ACK),
        Progress(ack=ACK),
    ),
    (
        "a job put back: nothing to acknowledge",
        BUSY,
        lambda p: p.finished(None),
        BUSY._replace(ack=None),
    ),
    (
        "a call replies with a job: the ack was applied",
        BUSY,
        lambda p: p.replied((ACK, False), NEXT, NOW),
        BUSY._replace(ack=None),
    ),
    (
        "a call that looked in the landing list says when",
        BUSY,
        lambda p: p.replied((ACK, True), None, NOW),
        Progress(landing_looked=NOW),
    ),
    (
        "a call that says held: unsure, not looked, counted",
        BUSY,
        lambda p: p.replied((ACK, True), HELD, NOW),
        Progress(unsure=True, landing_looked=NOW - 0.5, held=1),
    ),
    (
        "held twice in a row",
        FRESH._replace(held=1),
        lambda p: p.replied((None, False), HELD, NOW),
        Progress(unsure=True, held=2),
    ),
    (
        "any other reply ends a run of held",
        FRESH._replace(held=2),
        lambda p: p.replied((None, False), PAUSED, NOW),
        FRESH,
    ),
    ("an acknowledgement alone", BUSY, lambda p: p.acknowledged(), BUSY._replace(ack=None)),
    (
        "a blocking move: the landing list must be looked at",
        BUSY._replace(ack=None),
        lambda p: p.moving(),
        FRESH,
    ),
    (
        "the call behind the move replied: kept, and it looked",
        FRESH,
        lambda p: p.waited(NEXT, read=True, unsure=False, now=NOW),
        Progress(early=Early(NEXT), landing_looked=NOW),
    ),
    (
        "the call behind the move said held: it did not look",
        FRESH,
        lambda p: p.waited(HELD, read=True, unsure=False, now=NOW),
        Progress(early=Early(HELD)),
    ),
    (
        "an empty reply behind the move is kept too",
        FRESH,
        lambda p: p.waited(None, read=True, unsure=False, now=NOW),
        Progress(early=Early(None), landing_looked=NOW),
    ),
    (
        "a wait ended with the call's reply unread: unsure",
        FRESH,
        lambda p: p.waited(None, read=False, unsure=True, now=NOW),
        Progress(unsure=True),
    ),
    (
        "a wait that sent nothing changes nothing",
        FRESH,
        lambda p: p.waited(None, read=False, unsure=False, now=NOW),
        FRESH,
    ),
    (
        "pausing drops an empty early reply",
        Progress(early=Early(None)),
        lambda p: p.paused(),
        FRESH,
    ),
    (
        "pausing drops an early held, and reconciles for it",
        Progress(early=Early(HELD)),
        lambda p: p.paused(),
        Progress(unsure=True),
    ),
    (
        "pausing keeps the finished job's ack",
        Progress(ack=ACK, early=Early(None)),
        lambda p: p.paused(),
        Progress(ack=ACK),
    ),
    (
        "reconciled, the ack still pending: it goes with the next call",
        Progress(ack=ACK, early=Early(NEXT), unsure=True, landing_looked=NOW),
        lambda p: p.reconciled(ack_pending=True),
        Progress(ack=ACK),
    ),
    (
        "reconciled, the ack applied: nothing left, the landing list looked at next",
        Progress(ack=ACK, unsure=True, landing_looked=NOW),
        lambda p: p.reconciled(ack_pending=False),
        FRESH,
    ),
]


@pytest.mark.parametrize(
    ("before", "event", "after"),
    [case[1:] for case in TRANSITIONS],
    ids=[case[0] for case in TRANSITIONS],
)
def test_transitions(before: Progress, event: Event, after: Progress) -> None:
    assert event(before) == after


STEPS: list[tuple[str, Progress, bool, Step]] = [
    ("nothing pending: a call", FRESH, False, Step.CALL),
    ("an ack pending: a call (it carries the ack)", BUSY, False, Step.CALL),
    ("unsure: reconcile first", Progress(ack=ACK, unsure=True), False, Step.RECONCILE),
    (
        "unsure beats an early reply",
        Progress(early=Early(NEXT), unsure=True),
        False,
        Step.RECONCILE,
    ),
    ("an early reply is taken", Progress(early=Early(None)), False, Step.TAKE_EARLY),
    ("paused: idle", BUSY, True, Step.IDLE_PAUSED),
    (
        "paused while unsure: idle (it reconciles there)",
        Progress(unsure=True),
        True,
        Step.IDLE_PAUSED,
    ),
    ("paused with an empty early reply: idle", Progress(early=Early(None)), True, Step.IDLE_PAUSED),
    (
        "paused, but a job was reserved behind the wait before: run it",
        Progress(early=Early(NEXT)),
        True,
        Step.TAKE_EARLY,
    ),
]


@pytest.mark.parametrize(
    ("progress", "paused", "step"),
    [case[1:] for case in STEPS],
    ids=[case[0] for case in STEPS],
)
def test_steps(progress: Progress, paused: bool, step: Step) -> None:
    assert progress.step(paused) is step


@pytest.mark.parametrize(
    ("looked", "landing"),
    [
        (-math.inf, True),
        (NOW, False),
        (NOW - LANDING_RECHECK + 0.01, False),
        (NOW - LANDING_RECHECK, True),
    ],
)
def test_a_call_looks_in_the_landing_list_after_a_move_and_once_a_second(
    looked: float, landing: bool
) -> None:
    assert Progress(ack=ACK, landing_looked=looked).call(NOW) == (ACK, landing)


def test_taking_the_early_reply_gives_it_as_a_calls() -> None:
    progress, reply = Progress(ack=ACK, early=Early(NEXT), landing_looked=NOW).took_early()
    assert reply == NEXT
    assert progress == Progress(ack=ACK, landing_looked=NOW)
    progress, reply = Progress(early=Early(HELD)).took_early()
    assert (reply, progress) == (HELD, Progress(unsure=True, held=1))
