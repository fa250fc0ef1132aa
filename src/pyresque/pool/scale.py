"""``TTIN``/``TTOU``: one worker more or less in every group, on top of the config, until ``HUP``.

gunicorn's meaning of the two signals. Pure: the master keeps one :class:`Scale` and asks it for
the counts it should run.
"""

from __future__ import annotations

from collections.abc import Mapping


class Scale:
    """The runtime change to every group's count (never taking one below 0)."""

    def __init__(self) -> None:
        self.delta = 0

    def counts(self, configured: Mapping[str, int]) -> dict[str, int]:
        return {group: max(0, count + self.delta) for group, count in configured.items()}

    def more(self) -> None:
        self.delta += 1

    def fewer(self, configured: Mapping[str, int]) -> bool:
        """One less; False (and no change) when every group is at 0 already, so that the next
        ``more`` adds a worker at once."""
        if self.delta <= -max(configured.values(), default=0):
            return False
        self.delta -= 1
        return True

    def reset(self) -> None:
        self.delta = 0

    def describe(self, configured: Mapping[str, int]) -> str:
        counts = ", ".join(f"{g}: {n}" for g, n in self.counts(configured).items())
        return f"{counts or 'no groups'} ({self.delta:+d} on the config until HUP)"
