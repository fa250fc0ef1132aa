"""A real PostgreSQL for the framework tests: a schema of our own per test module, dropped after.

The server is ``$PYRESQUE_TEST_POSTGRES`` (a libpq connection string), by default the one this
machine and CI run: ``host=127.0.0.1 port=5432 dbname=test user=postgres`` (trust auth). When
nothing answers there the tests are skipped, saying so. Apps under test find the server through
libpq's own environment (``PGHOST``...) and their schema through ``PYRESQUE_TEST_SCHEMA``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from pyresque.wire import protocol
from tests.helpers import APP_DIR, ROOT, Proc, wait_until
from tests.integration.test_worker import registered

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

    # What the test apps write: <app>_entry (one row per job, with the backend that wrote it) and
    # <app>_boot (the backend of the master's own connection, opened by the app's setup hook).

    def create_app_tables(self, app: str) -> None:
        """The tables of an app that does not create its own (Django's are made by migrate)."""
        self.query(
            f"CREATE TABLE IF NOT EXISTS {app}_entry (id serial PRIMARY KEY, n integer NOT NULL, "
            "backend integer NOT NULL, pid integer NOT NULL, ppid integer NOT NULL, note text)"
        )
        self.query(
            f"CREATE TABLE IF NOT EXISTS {app}_boot (id serial PRIMARY KEY, role varchar(20), "
            "backend integer NOT NULL, pid integer NOT NULL)"
        )
        self.query(f"TRUNCATE {app}_entry, {app}_boot")

    def rows(self, app: str) -> list[tuple[int, int, int, int]]:
        """(n, backend, pid, ppid) of every row the app's jobs wrote."""
        return [
            (n, b, p, pp)
            for n, b, p, pp in self.query(f"SELECT n, backend, pid, ppid FROM {app}_entry")
        ]

    def master_backend(self, app: str, master_pid: int) -> int:
        found = self.query(
            f"SELECT backend FROM {app}_boot WHERE role = 'master' AND pid = %s", master_pid
        )
        assert len(found) == 1, f"the master recorded no backend: {found}"
        return int(found[0][0])

    def backend_alive(self, backend: int) -> bool:
        return bool(self.query("SELECT 1 FROM pg_stat_activity WHERE pid = %s", backend))


def assert_own_backends(
    written: list[tuple[int, int, int, int]], jobs: int, master: int, fork_per_job: bool
) -> None:
    """The claim under test: every job wrote its row, and on a backend of its worker's own (in
    fork mode, of its job child's own), shared with no other worker and not the master's."""
    assert sorted(n for n, *_ in written) == list(range(jobs)), "not every job wrote its row"
    by_worker: dict[int, set[int]] = collections.defaultdict(set)
    for _, backend, pid, ppid in written:
        by_worker[ppid if fork_per_job else pid].add(backend)
    assert len(by_worker) >= 2, f"the jobs did not spread over the workers: {sorted(by_worker)}"
    for worker, backends in by_worker.items():
        assert master not in backends, f"worker {worker} used the master's backend {master}"
        for other, theirs in by_worker.items():
            assert other == worker or not backends & theirs, f"{worker} and {other} share a backend"
    if not fork_per_job:  # a persistent connection: one backend per worker for all its jobs
        assert all(len(b) == 1 for b in by_worker.values()), dict(by_worker)


def enqueue(r: redis.Redis, queue: str, class_name: str, numbers: range | list[int]) -> None:
    """Push many jobs in one round trip, and wake the idle workers."""
    pipe = r.pipeline(transaction=False)
    pipe.sadd("resque:queues", queue)
    for n in numbers:
        pipe.rpush(f"resque:queue:{queue}", protocol.encode_payload(class_name, [n]))
    pipe.publish("resque:wakeup", queue)
    pipe.execute()


def wait_for_workers(r: redis.Redis, proc: Proc, workers: int) -> None:
    try:
        wait_until(lambda: len(registered(r)) == workers, 30)
    except AssertionError:
        raise AssertionError(f"{workers} workers did not start:\n{proc.log()}") from None


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

    def stop(self) -> None:
        kill_session(self.pid)
        super().stop()


def kill_session(sid: int) -> None:
    """SIGKILL every process of the session a command leads, workers included (they lead process
    groups of their own), and wait until none is left: a worker stuck on a shared socket must not
    write into the next test's tables."""

    def left() -> list[int]:
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.getsid(int(entry)) == sid and _alive(int(entry)):
                        out.append(int(entry))
        return out

    for pid in left():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not left(), 10)


def _alive(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


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
