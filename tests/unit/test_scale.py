"""TTIN/TTOU: one worker more or less in *every* group, each group kept at 0 or above."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyresque.pool.scale import Scale

CONFIG = {"a": 1, "b": 3}


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        ("", {"a": 1, "b": 3}),
        ("+", {"a": 2, "b": 4}),
        ("-", {"a": 0, "b": 2}),
        ("---", {"a": 0, "b": 0}),
        ("-----", {"a": 0, "b": 0}),
        # after every group reached 0, TTIN gives every group one (it gave 'b' alone)
        ("---+", {"a": 1, "b": 1}),
        ("-----+", {"a": 1, "b": 1}),
        ("--+", {"a": 1, "b": 2}),
        ("-+", {"a": 1, "b": 3}),
        ("++--", {"a": 1, "b": 3}),
    ],
)
def test_every_group_moves_by_one(signals: str, expected: dict[str, int]) -> None:
    scale = Scale()
    for sign in signals:
        scale.more(CONFIG) if sign == "+" else scale.fewer(CONFIG)
    assert scale.counts(CONFIG) == expected


def test_fewer_says_when_nothing_changed() -> None:
    scale = Scale()
    assert [scale.fewer(CONFIG) for _ in range(4)] == [True, True, True, False]


def test_reset_goes_back_to_the_config() -> None:
    scale = Scale()
    scale.more(CONFIG)
    scale.reset()
    assert scale.counts(CONFIG) == CONFIG


@given(
    st.dictionaries(st.sampled_from("abcd"), st.integers(0, 5), min_size=1),
    st.lists(st.booleans(), max_size=20),
)
def test_ttin_always_adds_one_to_every_group(config: dict[str, int], signals: list[bool]) -> None:
    scale = Scale()
    for more in signals:
        scale.more(config) if more else scale.fewer(config)
    before = scale.counts(config)
    assert all(n >= 0 for n in before.values())
    scale.more(config)
    assert scale.counts(config) == {g: n + 1 for g, n in before.items()}
