from __future__ import annotations

from django.db import models


class Order(models.Model):
    email = models.EmailField()
    status = models.CharField(max_length=20, default="pending")
    confirmed_at = models.DateTimeField(null=True)
    confirmed_by = models.IntegerField(null=True)  # the process that ran the job
