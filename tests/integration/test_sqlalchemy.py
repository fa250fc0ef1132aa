"""``pyresque.contrib.sqlalchemy.install()`` against a real PostgreSQL: a pool of 4 forked workers.

The app (``tests/apps/sqla_app``) makes its engine at import, in the master, and its setup hook
leaves a pooled connection open there, as a real app's might. With the one line each worker's
jobs use backends of their own and the master's connection survives the workers; without it
(``PYRESQUE_TEST_INTEGRATION=0``) they share the master's socket, which the same check catches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.helpers import Proc, wait_until
from tests.integration.postgres import (
    Postgres,
    assert_own_backends,
    enqueue,
    kill_session,
    postgres,
    wait_for_workers,
)
from tests.integration.test_worker import failures

pytest.importorskip("sqlalchemy", reason="SQLAlchemy is needed for its integration tests")

__all__ = ["postgres"]  # the fixture, used below

Spawn = Callable[..., Proc]
QUEUE = "sqla"


@pytest.fixture
def db(postgres: Postgres) -> Postgres:
    postgres.create_app_tables("sqla")
    return postgres


def start_pool(spawn: Spawn, db: Postgres, tmp_path: Path, **env: str) -> Proc:
    config = tmp_path / "resque-pool.yml"
    config.write_text(f"{QUEUE}: 4\n")
    return spawn("pool", "--config", str(config), "--app", "sqla_app", env={**db.env(), **env})


@pytest.mark.parametrize("fork_per_job", [True, False], ids=["fork", "in-process"])
def test_each_worker_has_its_own_backend_and_the_masters_connection_survives(
    r: redis.Redis, spawn: Spawn, db: Postgres, tmp_path: Path, fork_per_job: bool
) -> None:
    master = start_pool(spawn, db, tmp_path, FORK_PER_JOB=str(fork_per_job).lower())
    wait_for_workers(r, master, 4)
    master_db = db.master_backend("sqla", master.pid)
    jobs = 60 if fork_per_job else 400
    enqueue(r, QUEUE, "Sqla.Write", range(jobs))
    wait_until(lambda: len(db.rows("sqla")) >= jobs or failures(r), 30)
    assert failures(r) == []
    assert_own_backends(db.rows("sqla"), jobs, master_db, fork_per_job)
    assert db.backend_alive(master_db), "a worker closed the master's connection"


def test_without_the_helper_workers_share_the_masters_socket(
    r: redis.Redis, spawn: Spawn, db: Postgres, tmp_path: Path
) -> None:
    master = start_pool(spawn, db, tmp_path, FORK_PER_JOB="false", PYRESQUE_TEST_INTEGRATION="0")
    wait_for_workers(r, master, 4)
    master_db = db.master_backend("sqla", master.pid)
    jobs = 200
    enqueue(r, QUEUE, "Sqla.Write", range(jobs))

    def shared() -> list[object]:
        """Rows written on the master's backend, or jobs that failed (a Write never fails on a
        connection of its own): either is the inherited socket at work."""
        return [row for row in db.rows("sqla") if row[1] == master_db] + failures(r)

    # the first sign is enough: a worker may wait forever for an answer a sibling read off the
    # shared socket, so waiting for every job could take until the deadline
    try:
        evidence = wait_until(shared, 10)
    finally:
        kill_session(master.pid)  # the stuck workers must not write into the next test's tables
    with pytest.raises(AssertionError):
        assert_own_backends(db.rows("sqla"), jobs, master_db, fork_per_job=False)
    print(f"without the integration: {len(db.rows('sqla'))} rows, evidence: {evidence[:3]}")


def test_a_job_that_raises_in_a_transaction_leaves_no_row_and_the_next_job_works(
    r: redis.Redis, spawn: Spawn, db: Postgres
) -> None:
    worker = spawn("work", "--queues", QUEUE, "--app", "sqla_app", "--in-process", env=db.env())
    wait_for_workers(r, worker, 1)
    enqueue(r, QUEUE, "Sqla.WriteThenRaise", [1])
    enqueue(r, QUEUE, "Sqla.Write", [2])
    wait_until(lambda: db.rows("sqla") and failures(r), 20)
    assert [f["exception"] for f in failures(r)] == ["sqla_app.WriteFailedError"]
    assert [(n, pid) for n, _, pid, _ in db.rows("sqla")] == [(2, worker.pid)]
