"""Process titles in Resque's format.

A Ruby worker starting on the same host prunes any registered worker whose pid does not show up in
``ps`` with a title matching ``resque-<digits>``, so every pyresque worker process must carry one.
"""

from __future__ import annotations

import setproctitle

from pyresque._version import __version__

PREFIX = f"resque-{__version__}"


class _Title:
    """The title last set, so an unchanged one costs no system call (a busy worker sets one per
    job)."""

    current = ""


def set_title(text: str) -> None:
    title = f"{PREFIX}: {text}"
    if title != _Title.current:
        setproctitle.setproctitle(title)
        _Title.current = title


def set_raw_title(title: str) -> None:
    setproctitle.setproctitle(title)
    _Title.current = title
