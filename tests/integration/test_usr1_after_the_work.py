"""A USR1 that lands after a job's work and before its acknowledgement kills no job: the job is
acknowledged as done, with no ``DirtyExit`` record beside it (a retry of that record would run
the job twice)."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

import pytest
import redis

from tests.helpers import Proc, wait_until

JOBS = 5


@pytest.mark.parametrize("fork_per_job", ["false"])
def test_usr1_after_the_work_acknowledges_the_job_only(
    r: redis.Redis, spawn: Callable[..., Proc], fork_per_job: str
) -> None:
    r.rpush(
        "resque:queue:oracle", *[json.dumps({"class": "Quiet", "args": [i]}) for i in range(JOBS)]
    )
    worker = spawn("work", "-q", "oracle", "--app", "usr1app", env={"FORK_PER_JOB": fork_per_job})
    wait_until(lambda: int(r.get("resque:stat:processed") or 0) == JOBS, 20)
    wait_until(lambda: worker.log().count("SIGUSR1 received") >= JOBS)
    assert r.llen("resque:failed") == 0, [
        json.loads(f)["exception"] for f in r.lrange("resque:failed", 0, -1)
    ]
    assert r.llen("resque:queue:oracle") == 0
    worker.signal(signal.SIGQUIT)
    assert worker.wait(15) == 0, worker.log()
