"""The shop's jobs, found by ``manage.py resque_pool`` (every installed app's ``jobs.py``)."""

from __future__ import annotations

import os

from django.db import transaction
from django.utils import timezone

import pyresque
from orders.models import Order


@pyresque.job(queue="orders")
def confirm_order(order_id: int) -> None:
    """Mark the order confirmed (a real shop would charge a card and send an email here)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == "pending":
            order.status = "confirmed"
            order.confirmed_at = timezone.now()
            order.confirmed_by = os.getpid()
            order.save()
