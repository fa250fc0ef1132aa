"""RQ settings module for the memory benchmark: ``rq worker-pool -c memapp_rq`` imports it in the
pool's master before it forks the workers, which is the one way to preload an app into
``rq worker-pool`` (RQ itself imports a job's function only in the work horse, per job)."""

from __future__ import annotations

import memapp  # noqa: F401  (the import is the point: the master loads the app)
