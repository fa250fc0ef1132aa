"""The app config: ``"pyresque.contrib.django"`` in ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig

import pyresque
from pyresque.contrib.django import db
from pyresque.contrib.django.conf import current


class PyresqueConfig(AppConfig):  # type: ignore[misc]  # Django ships no type information
    name = "pyresque.contrib.django"
    label = "pyresque"
    verbose_name = "pyresque"

    def ready(self) -> None:
        """Point ``pyresque.enqueue`` at the configured Redis (views enqueue too) and register the
        database hooks; harmless in processes that never fork."""
        settings = current()
        if settings.redis_url or settings.namespace:
            pyresque.configure(settings.redis_url, namespace=settings.namespace)
        for module in settings.allow_modules:
            pyresque.allow_job_module(module)
        db.install()
