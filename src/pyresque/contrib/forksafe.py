"""Letting go of a database socket inherited across ``fork`` without speaking on it.

A client's ``close()`` says goodbye on its socket (PostgreSQL's Terminate message, MySQL's
COM_QUIT). In a forked worker that socket is the very one the master or a sibling still uses, so
the goodbye would end their session, and merely using it would interleave their queries. Pointing
this process's descriptor at ``/dev/null`` first makes ``close()`` harmless: the goodbye goes
nowhere, and the descriptor the client then closes is this process's own copy, not the socket.
(Closing the descriptor outright, as some integrations do, lets its number be reused by the next
socket opened, which the client's ``close()`` would then shut.)
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Final

from pyresque.processwide import ProcessWide

log = logging.getLogger(__name__)


def silence_fd(fd: int) -> None:
    """Make ``fd`` refer to ``/dev/null`` in this process only; other processes keep the socket."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


# Inherited connections without a socket of their own (SQLite), held until the process ends:
# closing one in the child, even through garbage collection, could checkpoint or remove files the
# master's copy still uses. Only ever appended to.
_KEPT: Final = ProcessWide(list[object], "inherited connections kept open until the process ends")


def silence_connection(raw: object) -> bool:
    """Point a DB-API connection's socket (its ``fileno()``) at ``/dev/null`` so that closing it
    sends nothing; a connection without a socket is kept alive instead. True if it may be closed."""
    fileno = getattr(raw, "fileno", None)
    fd = -1
    if callable(fileno):
        with contextlib.suppress(Exception):  # already closed, or a client that cannot tell
            fd = fileno()
    if not isinstance(fd, int) or fd < 0:
        _KEPT.get().append(raw)
        return False
    silence_fd(fd)
    log.debug("inherited connection on fd %d silenced", fd)
    return True
