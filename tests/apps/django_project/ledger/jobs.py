"""Jobs of the test project, found by the integration's autodiscovery of ``jobs.py``."""

from __future__ import annotations

import os

from django.db import connection, transaction

import pyresque
import pyresque.pool
from ledger.models import Boot, Entry


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    return int(row[0])


@pyresque.pool.setup
def open_master_connection() -> None:
    """In the master after preload: query the database and record which backend answered."""
    Boot.objects.create(role="master", backend=backend_pid(), pid=os.getpid())


@pyresque.job(queue="ledger", name="Ledger.Write")
def write(n: int) -> None:
    with transaction.atomic():
        Entry.objects.create(n=n, backend=backend_pid(), pid=os.getpid(), ppid=os.getppid())


class WriteFailedError(Exception):
    pass


@pyresque.job(queue="ledger", name="Ledger.WriteThenRaise")
def write_then_raise(n: int) -> None:
    """Writes inside a transaction, then raises: the row must not survive."""
    with transaction.atomic():
        Entry.objects.create(n=n, backend=backend_pid(), pid=os.getpid(), ppid=os.getppid())
        raise WriteFailedError(f"job {n} failed after writing")


@pyresque.job(queue="ledger", name="Ledger.LeaveTransactionOpen")
def leave_transaction_open(n: int) -> None:
    """Turns autocommit off, writes and raises: the connection is left inside a transaction, which
    must not leak into the next job (Django closes such a connection after a request)."""
    transaction.set_autocommit(False)
    Entry.objects.create(n=n, backend=backend_pid(), pid=os.getpid(), ppid=os.getppid())
    raise WriteFailedError(f"job {n} left its transaction open")
