"""What the jobs write: one row per job, with the PostgreSQL backend that wrote it."""

from __future__ import annotations

from django.db import models


class Entry(models.Model):
    n = models.IntegerField()
    backend = models.IntegerField()  # pg_backend_pid() of the connection that wrote the row
    pid = models.IntegerField()  # the process that ran the job
    ppid = models.IntegerField()  # its parent: the worker, when the job ran in a forked child


class Boot(models.Model):
    """The master's own connection, opened at preload as a real app's setup might."""

    role = models.CharField(max_length=20)
    backend = models.IntegerField()
    pid = models.IntegerField()
