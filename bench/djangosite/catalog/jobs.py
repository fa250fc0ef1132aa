"""The benchmark's job, the same function under pyresque, RQ and Celery: read the database."""

from __future__ import annotations

import os

import redis
from django.db.models import Sum

import pyresque
from catalog.models import Product

DONE_KEY = "memapp:done"  # what bench/memory.py counts (its DONE_KEY)


class _Redis:
    client: redis.Redis | None = None


@pyresque.job(queue="mem", name="catalog.read_products")
def read_products(i: int) -> int:
    """Read 200 products through the ORM and an aggregate, then count the job as done."""
    start = (i * 37) % 1800
    names = [p.name for p in Product.objects.filter(pk__gt=start).order_by("pk")[:200]]
    total = Product.objects.filter(pk__gt=start).aggregate(Sum("price"))["price__sum"]
    if _Redis.client is None:
        _Redis.client = redis.Redis.from_url(os.environ["MEMAPP_REDIS_URL"])
    _Redis.client.incr(DONE_KEY)
    return len(names) + int(total or 0) % 2
