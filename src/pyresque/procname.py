"""Process titles in Resque's format.

A Ruby worker starting on the same host prunes any registered worker whose pid does not show up in
``ps`` with a title matching ``resque-<digits>``, so every pyresque worker process must carry one.
"""

from __future__ import annotations

import setproctitle

from pyresque._version import __version__

PREFIX = f"resque-{__version__}"


def set_title(text: str) -> None:
    setproctitle.setproctitle(f"{PREFIX}: {text}")


def set_raw_title(title: str) -> None:
    setproctitle.setproctitle(title)
