"""``--app pyresque.contrib.django.boot``: set the Django project up and import its jobs.

For the plain commands (``pyresque work``, ``pyresque pool``) with ``DJANGO_SETTINGS_MODULE`` set;
``manage.py resque_work`` runs ``pyresque work`` with it.
"""

from __future__ import annotations

import django

from pyresque.contrib.django.discovery import autodiscover_jobs

django.setup()
autodiscover_jobs()
