"""Loading the project with nothing of pyresque's Django integration (its app left out of
``INSTALLED_APPS`` too): ``pyresque pool --app pgproject.boot``."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pgproject.settings")
django.setup()

import ledger.jobs  # noqa: E402, F401  (the import registers the jobs and the setup hook)
