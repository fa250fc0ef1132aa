"""A Flask app factory in the pool: jobs run inside the app's context, on their own connections."""

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
    postgres,
    wait_for_workers,
)
from tests.integration.test_worker import failures

pytest.importorskip("flask", reason="Flask is needed for its integration tests")

__all__ = ["postgres"]  # the fixture, used below

Spawn = Callable[..., Proc]


@pytest.mark.parametrize("fork_per_job", [True, False], ids=["fork", "in-process"])
def test_jobs_run_in_the_factory_apps_context(
    r: redis.Redis, spawn: Spawn, postgres: Postgres, tmp_path: Path, fork_per_job: bool
) -> None:
    postgres.create_app_tables("flask")
    config = tmp_path / "resque-pool.yml"
    config.write_text("flask: 4\n")
    master = spawn(
        "pool",
        "--config",
        str(config),
        "--app",
        "flask_app.worker",
        env={**postgres.env(), "FORK_PER_JOB": str(fork_per_job).lower()},
    )
    wait_for_workers(r, master, 4)
    enqueue(r, "flask", "Flask.Write", range(40))
    wait_until(lambda: len(postgres.rows("flask")) >= 40 or failures(r), 30)
    assert failures(r) == []
    assert_own_backends(postgres.rows("flask"), 40, master=0, fork_per_job=fork_per_job)
    notes = postgres.query("SELECT DISTINCT note FROM flask_entry")
    assert notes == [("made by create_app",)]  # current_app was the factory's app in every job
