"""The runtime of one worker process: reserve a job, run it (forked or in-process), settle it.

``from pyresque.worker import Worker`` is the documented way to name the worker class (in hook
annotations, for instance); it is imported on first use, so that the pool master and the job
API can import the small modules of this package (hooks, signals, queues) without the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyresque.worker.loop import Worker


def __getattr__(name: str) -> Any:
    if name == "Worker":
        from pyresque.worker.loop import Worker

        return Worker
    raise AttributeError(f"module 'pyresque.worker' has no attribute {name!r}")


__all__ = ["Worker"]
