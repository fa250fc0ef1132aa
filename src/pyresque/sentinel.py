"""The documented home of the durable mode's names (``docs/guarantees.md``); they live in
:mod:`pyresque.store.sentinel` with the rest of the Redis layer."""

from __future__ import annotations

from pyresque.store.sentinel import NotReplicated, durable

__all__ = ["NotReplicated", "durable"]
