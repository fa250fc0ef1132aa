"""Celery app for the memory benchmark: ``celery -A memapp_celery worker --pool=prefork``.

The worker's main process imports this module (and so :mod:`memapp`) before it forks its pool, so
the pool processes start sharing the app copy-on-write, as with a preloaded pyresque pool.
"""

from __future__ import annotations

import os

import memapp
from celery import Celery

app = Celery("memapp_celery", broker=os.environ["MEMAPP_REDIS_URL"])
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="memapp.touch")
def touch(i: int) -> int:
    return memapp.touch(i)
