"""Queue lists as Resque workers read them: priority order, ``*``, globs and ``!`` exclusions."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from pyresque.errors import ConfigError

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class QueueSelector:
    """An ordered list of queue patterns, e.g. ``critical,*,!low``.

    Literal names keep their position; ``*`` and other globs expand, at their position, to the
    matching known queues in alphabetical order that are not already listed; ``!pattern`` removes
    matching queues wherever they came from.
    """

    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> QueueSelector:
        items = text.split(",") if isinstance(text, str) else list(text)
        patterns = tuple(p.strip() for p in items if p.strip())
        if not patterns:
            raise ConfigError(
                "no queues given: set --queues or QUEUES (for example QUEUES=high,low)"
            )
        if all(p.startswith("!") for p in patterns):
            raise ConfigError(f"queue list {','.join(patterns)!r} only excludes queues")
        return cls(patterns)

    def __str__(self) -> str:
        return ",".join(self.patterns)

    @property
    def is_dynamic(self) -> bool:
        """True when the list depends on which queues exist (it has a glob)."""
        return any(_GLOB_CHARS & set(p.lstrip("!")) for p in self.patterns if not p.startswith("!"))

    @property
    def blocks_on_one_queue(self) -> bool:
        """One literal queue: the worker can wait in a blocking BLMOVE on it."""
        return (
            len(self.patterns) == 1 and not self.is_dynamic and not self.patterns[0].startswith("!")
        )

    @property
    def includes_all(self) -> bool:
        return "*" in self.patterns

    def resolve(self, known: Iterable[str] = ()) -> list[str]:
        """The concrete queues to take jobs from, highest priority first."""
        known_sorted = sorted(set(known))
        excludes = [p[1:] for p in self.patterns if p.startswith("!")]
        out: list[str] = []
        seen: set[str] = set()
        for pattern in self.patterns:
            if pattern.startswith("!"):
                continue
            names = (
                [q for q in known_sorted if fnmatch.fnmatchcase(q, pattern)]
                if _GLOB_CHARS & set(pattern)
                else [pattern]
            )
            for name in names:
                if name not in seen and not any(fnmatch.fnmatchcase(name, x) for x in excludes):
                    seen.add(name)
                    out.append(name)
        return out

    def matches(self, queue: str) -> bool:
        """Would a job pushed to ``queue`` be taken by this list?"""
        return queue in self.resolve([queue])
