"""The warm child (``--warm-child``): each job's child is forked ahead and handed its job over a
pipe. Real workers, real forks and signals: the hooks run where Resque runs them, a child that
died while waiting costs no job and no delivery, and no child outlives its worker."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.helpers import Proc, children_of, title_of, wait_until
from tests.integration.test_worker import failures, push, registered, strings, work

Spawn = Callable[..., Proc]


def warm(spawn: Spawn, *extra: str, env: dict[str, str] | None = None) -> Proc:
    return work(spawn, "oracle", "--warm-child", "--interval", "0.2", *extra, env=env)


def waiting_child(pid: int) -> int:
    """The worker's child forked ahead, once it is waiting for a job."""

    def ready() -> int | None:
        for child in children_of(pid):
            if title_of(child).endswith("Ready for a job (forked ahead)"):
                return child
        return None

    return wait_until(ready)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"  # a zombie has ended too
    except FileNotFoundError:
        return True


def test_jobs_run_in_children_forked_ahead_with_resques_hook_order(
    r: redis.Redis, spawn: Spawn
) -> None:
    proc = warm(spawn)
    first = waiting_child(proc.pid)  # forked before any job exists
    for i in range(3):
        push(r, "oracle", {"class": "Echo", "args": [i]})
    r.publish("resque:wakeup", "oracle")
    wait_until(lambda: len(strings(r, "test:done")) == 3)
    assert strings(r, "test:done") == ["[0]", "[1]", "[2]"]
    pids = strings(r, "test:pids")
    assert pids[0] == str(first) and len(set(pids)) == 3 and str(proc.pid) not in pids
    hooks = [h for h in strings(r, "test:worker_hooks") if h.startswith(("before_", "after_"))]
    assert hooks == [
        "before_first_fork",
        *(f"{step}:Echo" + (f":{pid}" if step == "after_fork" else "") for pid in pids
          for step in ("before_fork", "after_fork")),
    ]  # fmt: skip
    waiting_child(proc.pid)  # the next job's child is already waiting
    proc.signal(signal.SIGQUIT)
    assert proc.wait(10) == 0, proc.log()
    assert r.get("resque:stat:processed") == b"3" and registered(r) == [], proc.log()


def test_a_child_that_died_waiting_costs_no_job_and_no_delivery(
    r: redis.Redis, spawn: Spawn
) -> None:
    proc = warm(spawn)
    os.kill(waiting_child(proc.pid), signal.SIGKILL)
    push(r, "oracle", {"class": "Echo", "args": ["after-kill"]})
    r.publish("resque:wakeup", "oracle")
    wait_until(lambda: r.get("resque:stat:processed") == b"1")  # acknowledged
    assert strings(r, "test:done") == ['["after-kill"]']
    assert failures(r) == [] and r.hlen("resque:redeliveries") == 0, proc.log()
    proc.signal(signal.SIGQUIT)
    assert proc.wait(10) == 0, proc.log()


def test_no_child_outlives_a_stopping_or_killed_worker(r: redis.Redis, spawn: Spawn) -> None:
    proc = warm(spawn)
    child = waiting_child(proc.pid)
    proc.signal(signal.SIGTERM)
    assert proc.wait(5) == 0, proc.log()
    wait_until(lambda: gone(child))

    killed = warm(spawn)
    orphan = waiting_child(killed.pid)
    os.kill(killed.pid, signal.SIGKILL)  # its job pipe ends: the waiting child leaves
    killed.wait(5)
    wait_until(lambda: gone(orphan), timeout=5)


def test_a_job_that_kills_its_process_counts_a_delivery_as_without_warm_child(
    r: redis.Redis, spawn: Spawn
) -> None:
    push(r, "oracle", {"class": "KillSelf", "args": ["k"]})
    proc = warm(spawn, "--burst", env={"RESQUE_MAX_DELIVERIES": "2"})
    assert proc.wait(20) == 0, proc.log()
    assert strings(r, "test:started") == ["k", "k"]
    [record] = failures(r)
    assert record["exception"] == "Resque::DirtyExit"


def test_time_limit_and_failures_are_recorded_from_a_warm_child(
    r: redis.Redis, spawn: Spawn
) -> None:
    push(r, "oracle", {"class": "HangHard", "args": ["h"]})
    push(r, "oracle", {"class": "Boom", "args": [1]})
    proc = warm(spawn, "--burst")
    assert proc.wait(20) == 0, proc.log()
    assert [f["exception"] for f in failures(r)] == ["pyresque.JobTimeout", "jobapp.BoomError"]
    assert strings(r, "test:on_failure") == ["BoomError: boom: [1]"]


def test_payload_bytes_and_queue_names_cross_the_pipe_intact(r: redis.Redis, spawn: Spawn) -> None:
    args = ["naïve ☃", {"nested": [1, 2.5, None]}, "x" * 200_000]
    push(r, "oracle", {"class": "Echo", "args": args})
    proc = warm(spawn, "--burst")
    assert proc.wait(20) == 0, proc.log()
    [done] = strings(r, "test:done")
    assert json.loads(done) == args


@pytest.mark.parametrize("options", [(), ("--warm-child",)], ids=["fork", "warm"])
def test_a_child_is_reaped_before_the_worker_idles(
    r: redis.Redis, spawn: Spawn, options: tuple[str, ...]
) -> None:
    """The worker acts on a job's result before its child has exited, but leaves no zombie (nor
    any other child than the one forked ahead) once it waits for work."""
    proc = work(spawn, "oracle", "--interval", "0.2", *options)
    for i in range(5):
        push(r, "oracle", {"class": "Echo", "args": [i]})
    r.publish("resque:wakeup", "oracle")
    wait_until(lambda: r.get("resque:stat:processed") == b"5")
    wait_until(lambda: title_of(proc.pid).endswith("Waiting for oracle"))
    expected = 1 if options else 0
    wait_until(lambda: len(children_of(proc.pid)) == expected)
    assert not any(gone(child) for child in children_of(proc.pid))  # no zombie among them
    proc.signal(signal.SIGQUIT)
    assert proc.wait(10) == 0, proc.log()


def test_a_child_stuck_after_reporting_is_killed_when_the_worker_leaves(
    r: redis.Redis, spawn: Spawn
) -> None:
    push(r, "oracle", {"class": "StuckAtExit", "args": ["s"]})
    push(r, "oracle", {"class": "Echo", "args": ["next"]})
    proc = work(spawn, "oracle", "--interval", "0.2")
    wait_until(lambda: strings(r, "test:done") == ["s", '["next"]'])  # the stuck one held nothing
    stuck = int(strings(r, "test:pids")[0])
    assert not gone(stuck)
    proc.signal(signal.SIGQUIT)
    assert proc.wait(10) == 0, proc.log()
    assert gone(stuck)
    assert f"job child {stuck} did not exit after reporting its result" in proc.log()
    assert r.get("resque:stat:processed") == b"2" and failures(r) == []


def test_many_short_jobs_each_run_once_and_report(r: redis.Redis, spawn: Spawn) -> None:
    """Jobs that end within the fork-ahead delay and jobs that outlast it: every child hears
    its job and reports on its own pipes (a child forked ahead closes only the running job's)."""
    for i in range(60):
        push(r, "oracle", {"class": "Sleepy", "args": [0.004 * (i % 3), str(i)]})
    proc = warm(spawn, "--burst")
    assert proc.wait(60) == 0, proc.log()
    assert r.get("resque:stat:processed") == b"60", proc.log()
    assert strings(r, "test:done") == [str(i) for i in range(60)]
    assert failures(r) == [] and "before reporting" not in proc.log()


def test_a_pool_of_warm_workers_runs_jobs_and_leaves_nothing_behind(
    r: redis.Redis, spawn: Spawn, tmp_path: Path
) -> None:
    config = tmp_path / "resque-pool.yml"
    config.write_text("oracle: 2\n")
    master = spawn("pool", "--config", str(config), "--app", "jobapp", "--warm-child")
    wait_until(lambda: len(registered(r)) == 2)
    workers = children_of(master.pid)
    waiting = [waiting_child(worker) for worker in workers]  # each keeps its next child ready
    for i in range(20):
        push(r, "oracle", {"class": "Echo", "args": [i]})
    r.publish("resque:wakeup", "oracle")
    wait_until(lambda: r.get("resque:stat:processed") == b"20")
    assert sorted(strings(r, "test:done")) == sorted(f"[{i}]" for i in range(20))
    master.signal(signal.SIGTERM)
    assert master.wait(15) == 0, master.log()
    assert registered(r) == [] and failures(r) == []
    for pid in [*workers, *waiting, *map(int, strings(r, "test:pids"))]:
        wait_until(lambda pid=pid: gone(pid), timeout=5)


def test_warm_child_in_process_says_it_has_no_effect(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", {"class": "Echo", "args": ["in-process"]})
    proc = work(spawn, "oracle", "--burst", "--in-process", "--warm-child")
    assert proc.wait(20) == 0, proc.log()
    assert "has no effect in-process" in proc.log()
    assert strings(r, "test:done") == ['["in-process"]']
