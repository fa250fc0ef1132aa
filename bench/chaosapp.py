"""The chaos run's pool app: its jobs, and (optionally) a different crash-loop threshold.

The pool backs off a group whose workers die within 5 s of starting (SPEC 3.4: crash loops). Under
chaos every worker is killed young, so the backoff doubles up to 60 s and keeps the pool empty most
of the run; ``CHAOS_BACKOFF_THRESHOLD`` (seconds) replaces the threshold in the master, before it
is built (``--app`` modules are imported first). 0 turns the backoff off. Unset: pyresque's own.
"""

from __future__ import annotations

import functools
import os

import pooljobs  # noqa: F401 - registers the jobs

from pyresque.pool import master
from pyresque.pool.plan import Backoff

_threshold = os.environ.get("CHAOS_BACKOFF_THRESHOLD")
if _threshold:
    master.Backoff = functools.partial(Backoff, threshold=float(_threshold))  # type: ignore[misc]
