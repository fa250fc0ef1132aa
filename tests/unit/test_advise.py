"""``--advise``'s count follows ``auto``'s bounds: the footprint floor and the --max-workers cap."""

from __future__ import annotations

from pyresque.pool.advise import Fit
from pyresque.pool.memory import MB
from pyresque.pool.sizing import SizingPolicy

GB = 1024 * MB


def test_a_tiny_idle_worker_is_sized_by_the_footprint_floor() -> None:
    policy = SizingPolicy(16 * GB, GB, max_workers=None, footprint_floor=20 * MB)
    fit = Fit.decide(room=14 * GB, measured=1 * MB, policy=policy)
    assert fit.count == 14 * GB // (20 * MB)
    assert "footprint floor" in fit.bound


def test_the_cap_decides_on_a_big_machine() -> None:
    # the case: 14333 workers "fit" on a 2-core machine
    policy = SizingPolicy(16 * GB, GB, max_workers=16)
    fit = Fit.decide(room=14 * GB, measured=1 * MB, policy=policy)
    assert fit.count == 16
    assert fit.bound.startswith("the --max-workers cap 16")
    assert "memory would allow 716" in fit.bound


def test_memory_decides_when_it_is_tighter_than_the_cap() -> None:
    policy = SizingPolicy(GB, 100 * MB, max_workers=16)
    fit = Fit.decide(room=300 * MB, measured=100 * MB, policy=policy)
    assert (fit.count, fit.bound.startswith("memory:")) == (3, True)
    assert "floor" not in fit.bound


def test_no_room_fits_none() -> None:
    fit = Fit.decide(room=-5 * MB, measured=100 * MB, policy=SizingPolicy(GB, GB, max_workers=4))
    assert fit.count == 0
