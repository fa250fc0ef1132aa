"""A Django project on PostgreSQL for the integration tests.

The database comes from libpq's environment (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGDATABASE``)
and every table lives in the schema ``PYRESQUE_TEST_SCHEMA``, which the tests create and drop.
``PYRESQUE_TEST_INTEGRATION=0`` leaves pyresque's Django app out, to show what goes wrong without it.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "test-only"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = ["ledger"]
if os.environ.get("PYRESQUE_TEST_INTEGRATION", "1") != "0":
    INSTALLED_APPS.insert(0, "pyresque.contrib.django")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "test"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        # persistent: an in-process worker keeps one backend for all its jobs
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            "options": f"-c search_path={os.environ.get('PYRESQUE_TEST_SCHEMA', 'public')}"
        },
    }
}

PYRESQUE = {
    "POOL": {"ledger": 4},
    "ALLOW_MODULES": [],
}
# a worker setting by its key, for the test of where settings.PYRESQUE stands in the precedence
if "PYRESQUE_TEST_INTERVAL" in os.environ:
    PYRESQUE["INTERVAL"] = float(os.environ["PYRESQUE_TEST_INTERVAL"])
