"""The trivial app of ``bench/memory.py --idle``: one no-op job and nothing else imported.

What an idle pool costs beyond it is pyresque's own footprint: the master, and each worker's
private pages.
"""

from __future__ import annotations

import pyresque


@pyresque.job(queue="mem", name="Mem::Noop")
def noop(*args: object) -> None:
    """Does nothing: the pool is measured idle."""
