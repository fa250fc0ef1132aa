"""Queue lists as Resque workers read them: priority, '*', globs, '!' exclusions."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyresque.errors import ConfigError
from pyresque.worker.queues import QueueSelector

KNOWN = ["mail", "critical", "low", "files", "high", "reports:daily", "reports:weekly"]


def resolve(text: str, known: list[str] = KNOWN) -> list[str]:
    return QueueSelector.parse(text).resolve(known)


def test_literal_names_keep_their_priority_order() -> None:
    assert resolve("low,high,critical") == ["low", "high", "critical"]


def test_literal_names_need_not_exist_yet() -> None:
    assert resolve("new,high") == ["new", "high"]
    assert QueueSelector.parse("a,b").resolve() == ["a", "b"]


def test_star_is_every_known_queue_alphabetically() -> None:
    assert resolve("*") == sorted(KNOWN)


def test_critical_then_star_puts_critical_first_once() -> None:
    assert resolve("critical,*") == [
        "critical",
        "files",
        "high",
        "low",
        "mail",
        "reports:daily",
        "reports:weekly",
    ]


def test_star_then_literal_keeps_the_literal_in_its_alphabetical_place() -> None:
    assert resolve("*,critical") == sorted(KNOWN)


def test_globs_expand_alphabetically_at_their_position() -> None:
    assert resolve("high,reports:*,low") == ["high", "reports:daily", "reports:weekly", "low"]
    assert resolve("?ail") == ["mail"]
    assert resolve("[fl]*") == ["files", "low"]


def test_exclusions_remove_matching_queues_wherever_they_came_from() -> None:
    assert resolve("*,!low") == sorted(set(KNOWN) - {"low"})
    assert resolve("*,!reports:*") == ["critical", "files", "high", "low", "mail"]
    assert resolve("!high,high,low") == ["low"]


def test_whitespace_is_stripped_and_empty_items_skipped() -> None:
    selector = QueueSelector.parse("  high , low,, ,critical  ")
    assert selector.patterns == ("high", "low", "critical")
    assert str(selector) == "high,low,critical"


def test_an_iterable_of_names_is_accepted() -> None:
    assert QueueSelector.parse([" high", "low "]).patterns == ("high", "low")


@pytest.mark.parametrize("text", ["", " ", ",", " , ,", []])
def test_an_empty_list_is_a_config_error(text: str | list[str]) -> None:
    with pytest.raises(ConfigError, match="no queues given"):
        QueueSelector.parse(text)


def test_a_list_of_only_exclusions_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="only excludes queues"):
        QueueSelector.parse("!low,!high")


def test_dynamic_and_includes_all() -> None:
    assert not QueueSelector.parse("high,low").is_dynamic
    assert not QueueSelector.parse("high,!l*").is_dynamic
    assert QueueSelector.parse("reports:*").is_dynamic
    assert QueueSelector.parse("critical,*").includes_all
    assert not QueueSelector.parse("reports:*").includes_all


@pytest.mark.parametrize(
    ("text", "queue", "expected"),
    [
        ("high,low", "high", True),
        ("high,low", "mail", False),
        ("*", "anything", True),
        ("*,!low", "low", False),
        ("*,!low", "lower", True),
        ("reports:*", "reports:daily", True),
        ("reports:*", "reports", False),
        ("critical,*,!rep*", "reports:daily", False),
        ("?ail", "mail", True),
        ("?ail", "email", False),
    ],
)
def test_matches(text: str, queue: str, expected: bool) -> None:
    assert QueueSelector.parse(text).matches(queue) is expected


names = st.text(st.sampled_from("abcr:*!?"), min_size=1, max_size=6)


@given(st.lists(names, min_size=1, max_size=5), st.lists(st.text("abcr:", max_size=5)))
def test_resolve_never_repeats_or_returns_an_excluded_queue(
    patterns: list[str], known: list[str]
) -> None:
    if all(p.startswith("!") for p in patterns):
        return
    selector = QueueSelector.parse(patterns)
    resolved = selector.resolve(known)
    excludes = [p[1:] for p in patterns if p.startswith("!")]
    assert len(resolved) == len(set(resolved))
    for queue in resolved:
        assert not any(fnmatch.fnmatchcase(queue, x) for x in excludes)
        assert queue in known or queue in patterns
    for queue in known:
        assert selector.matches(queue) == (queue in resolved)
