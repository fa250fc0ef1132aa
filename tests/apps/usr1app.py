"""A job whose work is done when a USR1 lands: sent by the ``after_job`` worker hook, after the
job's work and before the worker acknowledges it."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pyresque


@pyresque.job(queue="oracle", name="Quiet")
def quiet(*args: Any) -> None:
    """Does nothing."""


@pyresque.after_job
def usr1_after_the_work(job: Any) -> None:
    if os.environ.get("FORK_PER_JOB") == "false":  # the job runs in the worker's process
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(1000):  # the signal is handled at the next point the interpreter checks
            pass
    else:  # in the job's child: the worker kills it on USR1, while this hook still runs
        os.kill(os.getppid(), signal.SIGUSR1)
        time.sleep(0.5)
