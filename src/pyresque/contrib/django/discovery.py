"""Finding the jobs: the ``jobs`` module of every installed app, as Django finds ``admin.py``."""

from __future__ import annotations

import logging

from django.apps import apps
from django.utils.module_loading import module_has_submodule

from pyresque.contrib.django.conf import current

log = logging.getLogger(__name__)


def autodiscover_jobs(module_name: str | None = None) -> list[str]:
    """Import ``<app>.jobs`` for every installed app that has one; returns the modules imported.

    An app without the module is skipped; an error inside one propagates, as it would at run time.
    """
    name = module_name or current().jobs_module
    imported = []
    for config in apps.get_app_configs():
        if module_has_submodule(config.module, name):
            full = f"{config.name}.{name}"
            __import__(full)
            imported.append(full)
    log.debug("jobs modules: %s", ", ".join(imported) or "none")
    return imported
