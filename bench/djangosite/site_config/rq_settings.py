"""The project under ``rq worker-pool -c site_config.rq_settings``: the pool's master sets Django
up and imports the job before it forks its workers (RQ's way to preload)."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
django.setup()

from catalog import jobs  # noqa: E402, F401
