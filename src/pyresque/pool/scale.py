"""``TTIN``/``TTOU``: one worker more or less in every group, on top of the config, until ``HUP``.

gunicorn's meaning of the two signals. Pure: the master keeps one :class:`Scale` and asks it for
the counts it should run.
"""

from __future__ import annotations

from collections.abc import Mapping


class Scale:
    """The runtime change to each group's count, kept per group so that no group goes below 0
    and ``TTIN`` always adds a worker to every group.

    Why per group: with one shared change, ``TTOU`` until every group was at 0 left the change at
    minus the largest count, and the next ``TTIN`` gave a worker to the largest group only.
    """

    def __init__(self) -> None:
        self.deltas: dict[str, int] = {}

    def counts(self, configured: Mapping[str, int]) -> dict[str, int]:
        return {g: max(0, n + self.deltas.get(g, 0)) for g, n in configured.items()}

    def more(self, configured: Mapping[str, int]) -> None:
        """One more worker in every group, from the count it has now."""
        current = self.counts(configured)
        self.deltas = {g: current[g] + 1 - n for g, n in configured.items()}

    def fewer(self, configured: Mapping[str, int]) -> bool:
        """One less in every group above 0; False (and no change) when every group is at 0
        already, so that the next ``more`` adds a worker to each at once."""
        current = self.counts(configured)
        if not any(current.values()):
            return False
        self.deltas = {g: max(0, current[g] - 1) - n for g, n in configured.items()}
        return True

    def reset(self) -> None:
        self.deltas = {}

    def describe(self, configured: Mapping[str, int]) -> str:
        counts = ", ".join(f"{g}: {n}" for g, n in self.counts(configured).items())
        changed = {g: d for g, d in self.deltas.items() if d and g in configured}
        change = ", ".join(f"{g} {d:+d}" for g, d in changed.items()) or "none"
        return f"{counts or 'no groups'} (on the config until HUP: {change})"
