"""A plain SQLAlchemy app for the integration tests: one engine made at import, jobs that write.

The database is ``$PYRESQUE_TEST_PG_URL`` (its schema set there); the tables are the tests'
(``sqla_entry``, ``sqla_boot``). ``PYRESQUE_TEST_INTEGRATION=0`` leaves out the one line that
makes the engine fork-safe, to show what goes wrong without it.
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text

import pyresque
import pyresque.contrib.sqlalchemy
import pyresque.pool

engine = create_engine(os.environ["PYRESQUE_TEST_PG_URL"], pool_size=2)

if os.environ.get("PYRESQUE_TEST_INTEGRATION", "1") != "0":
    pyresque.contrib.sqlalchemy.install()

BACKEND = text("SELECT pg_backend_pid()")
INSERT = text("INSERT INTO sqla_entry (n, backend, pid, ppid) VALUES (:n, :backend, :pid, :ppid)")


@pyresque.pool.setup
def open_master_connection() -> None:
    """In the master after preload: query, and leave the connection in the engine's pool."""
    with engine.begin() as conn:
        backend = conn.execute(BACKEND).scalar_one()
        conn.execute(
            text("INSERT INTO sqla_boot (role, backend, pid) VALUES ('master', :b, :p)"),
            {"b": backend, "p": os.getpid()},
        )


def _write(n: int) -> None:
    with engine.begin() as conn:
        backend = conn.execute(BACKEND).scalar_one()
        conn.execute(INSERT, {"n": n, "backend": backend, "pid": os.getpid(), "ppid": os.getppid()})
        if n < 0:
            raise WriteFailedError(f"job {n} failed after writing")


class WriteFailedError(Exception):
    pass


@pyresque.job(queue="sqla", name="Sqla.Write")
def write(n: int) -> None:
    _write(n)


@pyresque.job(queue="sqla", name="Sqla.WriteThenRaise")
def write_then_raise(n: int) -> None:
    _write(-n)
