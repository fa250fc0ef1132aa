"""The chaos run's pool app: its jobs (see pooljobs)."""

from __future__ import annotations

import pooljobs  # noqa: F401 - registers the jobs
