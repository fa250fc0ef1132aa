"""A USR1 that lands after a job's work and before its acknowledgement kills no job: the job is
acknowledged as done, with no ``DirtyExit`` record beside it (a retry of that record would run
the job twice). The job's ``after_job`` hook sends the USR1 (tests/apps/usr1app.py)."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

import pytest
import redis

from tests.helpers import Proc, wait_until

JOBS = 4


@pytest.mark.parametrize("fork_per_job", ["true", "false"])
def test_usr1_after_the_work_acknowledges_the_job_only(
    r: redis.Redis, spawn: Callable[..., Proc], fork_per_job: str
) -> None:
    worker = spawn("work", "-q", "oracle", "--app", "usr1app", env={"FORK_PER_JOB": fork_per_job})
    for i in range(1, JOBS + 1):  # one at a time: each USR1 is seen before the next job starts
        r.rpush("resque:queue:oracle", json.dumps({"class": "Quiet", "args": [i]}))
        wait_until(lambda: int(r.get("resque:stat:processed") or 0) == i, 20)  # noqa: B023
        wait_until(lambda: worker.log().count("SIGUSR1 received") == i, 20)  # noqa: B023
    failed = [json.loads(f) for f in r.lrange("resque:failed", 0, -1)]
    assert failed == [], worker.log()
    assert "killed on request" not in worker.log()
    worker.signal(signal.SIGQUIT)
    assert worker.wait(15) == 0, worker.log()
