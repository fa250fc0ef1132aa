"""The Django integration against a real PostgreSQL: a pool of forked workers whose jobs write rows.

The project is ``tests/apps/django_project``: its master opens a connection at preload (its setup
hook records ``pg_backend_pid()``), as a real app's might, and every job records the backend that
wrote its row. With the integration each worker has a backend of its own and the master's is never
used by, nor closed by, a worker; without it (the same project, the app left out of
``INSTALLED_APPS``) the workers share the master's socket, which the same check catches.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from harness.redis_server import RedisServer
from tests.helpers import APP_DIR, wait_until
from tests.integration.postgres import (
    CommandProc,
    Postgres,
    assert_own_backends,
    enqueue,
    postgres,
    run_command,
    wait_for_workers,
)
from tests.integration.test_worker import failures, registered

pytest.importorskip("django", reason="Django is needed for the Django integration tests")

__all__ = ["postgres", "run_command"]  # fixtures used by the tests below

PROJECT = APP_DIR / "django_project"
QUEUE = "ledger"
Run = Callable[..., CommandProc]


@pytest.fixture(scope="module")
def project_env(postgres: Postgres, redis_server: RedisServer) -> Iterator[dict[str, str]]:
    """The project's environment, its tables created in the module's schema."""
    env = {
        **postgres.env(),
        "DJANGO_SETTINGS_MODULE": "pgproject.settings",
        "REDIS_URL": redis_server.url,
        "RESQUE_NAMESPACE": "resque",
        "PYTHONPATH": str(PROJECT),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--run-syncdb", "-v", "0"],
        cwd=PROJECT,
        env={**os.environ, **env},
        check=True,
        timeout=60,
    )
    yield env


@pytest.fixture
def db(postgres: Postgres, project_env: dict[str, str]) -> Postgres:
    postgres.query("TRUNCATE ledger_entry, ledger_boot")
    return postgres


def start_pool(run: Run, env: dict[str, str], *argv: str, **extra_env: str) -> CommandProc:
    return run(list(argv), {**env, **extra_env}, PROJECT, name="pool")


def test_pool_workers_each_have_their_own_backend_and_1000_jobs_write_1000_rows(
    r: redis.Redis, db: Postgres, project_env: dict[str, str], run_command: Run
) -> None:
    # manage.py resque_pool, the pool config from settings.PYRESQUE; jobs in-process, so that each
    # worker's persistent connection serves all its jobs
    master = start_pool(run_command, project_env, "manage.py", "resque_pool", FORK_PER_JOB="false")
    wait_for_workers(r, master, 4)
    master_db = db.master_backend("ledger", master.pid)
    enqueue(r, QUEUE, "Ledger.Write", range(1000))
    wait_until(lambda: len(db.rows("ledger")) >= 1000 or failures(r), 60)
    assert failures(r) == []
    assert_own_backends(db.rows("ledger"), 1000, master_db, fork_per_job=False)


def test_a_connection_the_master_keeps_open_is_never_used_nor_closed_by_workers(
    r: redis.Redis, db: Postgres, project_env: dict[str, str], run_command: Run, tmp_path: Path
) -> None:
    # plain `pyresque pool --app pyresque.contrib.django.boot`: the project's setup hook runs after
    # the integration's, so the master still holds its connection when it forks; jobs run in
    # forked job children
    config = tmp_path / "resque-pool.yml"
    config.write_text(f"{QUEUE}: 4\n")
    master = start_pool(
        run_command,
        project_env,
        "-m",
        "pyresque",
        "pool",
        "--config",
        str(config),
        "--app",
        "pyresque.contrib.django.boot",
    )
    wait_for_workers(r, master, 4)
    master_db = db.master_backend("ledger", master.pid)
    enqueue(r, QUEUE, "Ledger.Write", range(40))
    wait_until(lambda: len(db.rows("ledger")) >= 40 or failures(r), 30)
    assert failures(r) == []
    assert_own_backends(db.rows("ledger"), 40, master_db, fork_per_job=True)
    # no worker said goodbye on the master's socket: its session is still there
    assert db.backend_alive(master_db)


def test_without_the_integration_workers_share_the_masters_socket(
    r: redis.Redis, db: Postgres, project_env: dict[str, str], run_command: Run, tmp_path: Path
) -> None:
    """The same check fails when the project leaves the integration out: the test can fail."""
    config = tmp_path / "resque-pool.yml"
    config.write_text(f"{QUEUE}: 4\n")
    master = start_pool(
        run_command,
        project_env,
        "-m",
        "pyresque",
        "pool",
        "--config",
        str(config),
        "--app",
        "pgproject.boot",
        FORK_PER_JOB="false",
        PYRESQUE_TEST_INTEGRATION="0",
    )
    wait_for_workers(r, master, 4)
    master_db = db.master_backend("ledger", master.pid)
    jobs = 200
    enqueue(r, QUEUE, "Ledger.Write", range(jobs))

    def shared() -> list[object]:
        """Rows written on the master's backend, or jobs that failed (a Write never fails on a
        connection of its own): either is the inherited socket at work."""
        return [row for row in db.rows("ledger") if row[1] == master_db] + failures(r)

    # the first sign is enough: a worker may wait forever for an answer a sibling read off the
    # shared socket, so waiting for every job could take until the deadline
    evidence = wait_until(shared, 10)
    with pytest.raises(AssertionError):
        assert_own_backends(db.rows("ledger"), jobs, master_db, fork_per_job=False)
    print(f"without the integration: {len(db.rows('ledger'))} rows, evidence: {evidence[:3]}")


def test_a_job_that_raises_in_a_transaction_leaves_no_row_and_the_next_job_works(
    r: redis.Redis, db: Postgres, project_env: dict[str, str], run_command: Run
) -> None:
    # manage.py resque_work: one in-process worker, so every job below runs on the same worker
    worker = run_command(
        ["manage.py", "resque_work", "--queues", QUEUE, "--in-process", "--interval", "0.1"],
        project_env,
        PROJECT,
        name="work",
    )
    wait_until(lambda: len(registered(r)) == 1, 30)
    enqueue(r, QUEUE, "Ledger.WriteThenRaise", [1])
    enqueue(r, QUEUE, "Ledger.Write", [2])
    enqueue(r, QUEUE, "Ledger.LeaveTransactionOpen", [3])
    enqueue(r, QUEUE, "Ledger.Write", [4])
    wait_until(lambda: len(db.rows("ledger")) >= 2 and len(failures(r)) >= 2, 20)
    assert sorted(f["exception"] for f in failures(r)) == ["ledger.jobs.WriteFailedError"] * 2, (
        worker.log()
    )
    written = db.rows("ledger")
    assert sorted(n for n, *_ in written) == [2, 4]
    assert {pid for _, _, pid, _ in written} == {worker.pid}


def test_a_worker_setting_in_settings_beats_the_environment_and_loses_to_the_command_line(
    r: redis.Redis, project_env: dict[str, str], run_command: Run
) -> None:
    # PYRESQUE["INTERVAL"] = 0 means burst: the worker leaves once its queue is empty, although
    # the environment says INTERVAL=5
    env = {**project_env, "INTERVAL": "5", "PYRESQUE_TEST_INTERVAL": "0"}
    argv = ["manage.py", "resque_work", "--queues", "empty_queue", "--in-process"]
    burst = run_command(argv, env, PROJECT, name="burst")
    assert burst.wait(30) == 0, burst.log()
    # the command line's --interval 5 beats settings.PYRESQUE: the worker stays
    staying = run_command([*argv, "--interval", "5"], env, PROJECT, name="staying")
    wait_until(lambda: len(registered(r)) == 1, 30)
    assert staying.popen.poll() is None, staying.log()
