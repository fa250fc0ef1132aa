"""A real PostgreSQL for the framework tests: a schema of our own per test module, dropped after.

The server is ``$PYRESQUE_TEST_POSTGRES`` (a libpq connection string), by default the one this
machine and CI run: ``host=127.0.0.1 port=5432 dbname=test user=postgres`` (trust auth). When
nothing answers there the tests are skipped, saying so. Apps under test find the server through
libpq's own environment (``PGHOST``...) and their schema through ``PYRESQUE_TEST_SCHEMA``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import APP_DIR, ROOT, Proc

psycopg = pytest.importorskip("psycopg", reason="psycopg is needed for the PostgreSQL tests")

DEFAULT_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
LIBPQ_ENV = {"host": "PGHOST", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER"}


@dataclass(frozen=True)
class Postgres:
    dsn: str
    schema: str

    def env(self) -> dict[str, str]:
        """What an app process needs: libpq's variables and the schema."""
        parts = psycopg.conninfo.conninfo_to_dict(self.dsn)
        out = {var: str(parts[key]) for key, var in LIBPQ_ENV.items() if key in parts}
        out["PYRESQUE_TEST_SCHEMA"] = self.schema
        out["PYRESQUE_TEST_PG_URL"] = self.url()
        return out

    def url(self) -> str:
        """The same server and schema as an SQLAlchemy URL."""
        p = psycopg.conninfo.conninfo_to_dict(self.dsn)
        return (
            f"postgresql+psycopg://{p.get('user', 'postgres')}@{p.get('host', '127.0.0.1')}:"
            f"{p.get('port', 5432)}/{p.get('dbname', 'test')}?options=-csearch_path%3D{self.schema}"
        )

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {self.schema}")
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A fresh schema on the test server, dropped with everything in it after the module."""
    dsn = os.environ.get("PYRESQUE_TEST_POSTGRES", DEFAULT_DSN)
    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL answers at {dsn!r} ($PYRESQUE_TEST_POSTGRES): {exc}")
    schema = f"pyresque_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield Postgres(dsn, schema)
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


class CommandProc(Proc):
    """Any Python command (``manage.py resque_pool``, a Flask app's script) as a :class:`Proc`:
    its own session and log file, run from ``cwd``, killed with its whole session by ``stop()``."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path, cwd: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, **env}
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(cwd), str(APP_DIR), str(ROOT / "src"), full_env.get("PYTHONPATH", "")]
        )
        self.popen = subprocess.Popen(
            [sys.executable, *argv],
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(cwd),
        )
        self.pid = self.popen.pid


@pytest.fixture
def run_command(tmp_path: Path) -> Iterator[Callable[..., CommandProc]]:
    """Start commands that are all killed after the test."""
    procs: list[CommandProc] = []

    def start(
        argv: Sequence[str], env: dict[str, str], cwd: Path, name: str = "cmd"
    ) -> CommandProc:
        proc = CommandProc(argv, env, tmp_path / f"{name}-{len(procs)}.log", cwd)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
