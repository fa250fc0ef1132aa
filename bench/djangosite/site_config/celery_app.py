"""The project under Celery: ``celery -A site_config.celery_app worker --pool=prefork``; the main
process sets Django up and imports the job before it forks its pool."""

from __future__ import annotations

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
django.setup()

from catalog import jobs  # noqa: E402

app = Celery("site_config", broker=os.environ["MEMAPP_REDIS_URL"])
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="catalog.read_products")
def read_products(i: int) -> int:
    return jobs.read_products(i)
