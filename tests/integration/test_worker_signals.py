"""Signals to a real worker and its job child: QUIT, TERM (Ruby's and TERM_CHILD), INT, USR1,
USR2/CONT, Heroku's TERM-to-everyone, and SIGKILL of the worker itself."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import redis

from tests.helpers import Proc, children_of, title_of, wait_until
from tests.integration.test_worker import failures, push, registered, strings, work

Spawn = Callable[..., Proc]


def queue(r: redis.Redis, name: str = "oracle") -> list[str]:
    return strings(r, f"resque:queue:{name}")


def start_sleepy(r: redis.Redis, spawn: Spawn, seconds: float, env: dict[str, str]) -> Proc:
    push(r, "oracle", {"class": "Sleepy", "args": [seconds, "s"]})
    push(r, "oracle", {"class": "Echo", "args": ["queued-behind"]})
    proc = work(spawn, "oracle", env=env)
    wait_until(lambda: strings(r, "test:started") == ["s"])
    return proc


def test_quit_finishes_the_current_job_then_exits(r: redis.Redis, spawn: Spawn) -> None:
    proc = start_sleepy(r, spawn, 1.0, {})
    proc.signal(signal.SIGQUIT)
    assert proc.wait() == 0, proc.log()
    assert strings(r, "test:done") == ["s"]
    assert queue(r) == ['{"class":"Echo","args":["queued-behind"]}']
    assert failures(r) == [] and registered(r) == []


def test_term_kills_the_job_at_once_and_puts_it_back_in_front(r: redis.Redis, spawn: Spawn) -> None:
    proc = start_sleepy(r, spawn, 30, {})
    [child] = children_of(proc.pid)
    proc.signal(signal.SIGTERM)
    assert proc.wait(5) == 0, proc.log()
    assert not os.path.exists(f"/proc/{child}")
    assert queue(r) == [
        '{"class":"Sleepy","args":[30,"s"]}',
        '{"class":"Echo","args":["queued-behind"]}',
    ]
    assert failures(r) == [] and registered(r) == []
    assert r.get("resque:stat:processed") is None


def test_term_child_interrupts_after_the_pre_shutdown_timeout(r: redis.Redis, spawn: Spawn) -> None:
    env = {"TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0.3", "RESQUE_TERM_TIMEOUT": "5"}
    proc = start_sleepy(r, spawn, 30, env)
    proc.signal(signal.SIGTERM)
    assert proc.wait(5) == 0, proc.log()
    assert "interrupted by shutdown, put back" in proc.log()
    assert queue(r)[0] == '{"class":"Sleepy","args":[30,"s"]}'
    assert failures(r) == [] and strings(r, "test:on_failure") == []


def test_term_child_lets_a_job_that_finishes_in_time_finish(r: redis.Redis, spawn: Spawn) -> None:
    env = {"TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "10"}
    proc = start_sleepy(r, spawn, 0.5, env)
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0, proc.log()
    assert strings(r, "test:done") == ["s"]
    assert queue(r) == ['{"class":"Echo","args":["queued-behind"]}']
    assert r.get("resque:stat:processed") == b"1"


def test_job_ignoring_term_exception_is_killed_after_term_timeout(
    r: redis.Redis, spawn: Spawn
) -> None:
    env = {"TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "0", "RESQUE_TERM_TIMEOUT": "0.5"}
    push(r, "oracle", {"class": "Stubborn", "args": []})
    proc = work(spawn, "oracle", env=env)
    wait_until(lambda: strings(r, "test:started") == ["stubborn"])
    proc.signal(signal.SIGTERM)
    assert proc.wait(5) == 0, proc.log()
    assert "ignored TermException; killing it" in proc.log()
    assert queue(r) == ['{"class":"Stubborn","args":[]}']
    assert failures(r) == []


def test_heroku_term_to_every_process_lets_the_job_finish(r: redis.Redis, spawn: Spawn) -> None:
    """Heroku signals the whole dyno: the job child sees TERM too and must not die on the spot."""
    push(r, "oracle", {"class": "ShutdownAware", "args": ["h"]})
    proc = work(spawn, "oracle", env={"TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "10"})
    wait_until(lambda: strings(r, "test:started") == ["h"])
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 0, proc.log()
    assert strings(r, "test:done") == ["h:shutdown_requested=True"]
    assert failures(r) == [] and queue(r) == []


def test_second_int_kills_now(r: redis.Redis, spawn: Spawn) -> None:
    env = {"TERM_CHILD": "1", "RESQUE_PRE_SHUTDOWN_TIMEOUT": "30"}
    proc = start_sleepy(r, spawn, 30, env)
    proc.signal(signal.SIGINT)
    wait_until(lambda: "SIGINT received" in proc.log())
    proc.signal(signal.SIGINT)
    assert proc.wait(5) == 0, proc.log()
    assert queue(r)[0] == '{"class":"Sleepy","args":[30,"s"]}'
    assert failures(r) == []


def test_usr1_kills_the_job_which_fails_and_the_worker_goes_on(
    r: redis.Redis, spawn: Spawn
) -> None:
    proc = start_sleepy(r, spawn, 30, {})
    proc.signal(signal.SIGUSR1)
    wait_until(lambda: strings(r, "test:done") == ['["queued-behind"]'])
    [record] = failures(r)
    assert record["exception"] == "Resque::DirtyExit"
    assert "SIGKILL (signal 9)" in str(record["error"])
    assert strings(r, "test:on_failure") == [f"DirtyExit: {record['error']}"]
    assert r.get("resque:stat:failed") is None
    assert proc.popen.poll() is None


def stays(predicate: Callable[[], bool], polls: int, interval: float) -> None:
    """``predicate`` holds throughout ``polls`` poll intervals of the worker (checked 10 times
    an interval): a negative observation needs a window, sized by the worker's own clock."""
    for _ in range(polls * 10):
        assert predicate(), "changed while it should have stayed"
        time.sleep(interval / 10)


def test_usr2_pauses_and_cont_resumes(r: redis.Redis, spawn: Spawn) -> None:
    proc = work(spawn, "oracle", env={"INTERVAL": "0.1"})
    wait_until(lambda: title_of(proc.pid).endswith("Waiting for oracle"))
    proc.signal(signal.SIGUSR2)
    wait_until(lambda: title_of(proc.pid).endswith("Paused"))
    push(r, "oracle", {"class": "Echo", "args": ["later"]})
    r.publish("resque:wakeup", "oracle")
    # the job stays queued while paused: over ten of the worker's idle polls (INTERVAL 0.1 s),
    # where a working worker takes it within one
    stays(lambda: queue(r) == ['{"class":"Echo","args":["later"]}'], polls=10, interval=0.1)
    assert title_of(proc.pid).endswith("Paused") and strings(r, "test:done") == []
    proc.signal(signal.SIGCONT)
    wait_until(lambda: strings(r, "test:done") == ['["later"]'])


def test_pause_all_workers_key(r: redis.Redis, spawn: Spawn) -> None:
    r.set("resque:pause-all-workers", " TRUE ")
    push(r, "oracle", {"class": "Echo", "args": ["held"]})
    proc = work(spawn, "oracle", env={"INTERVAL": "0.1"})
    wait_until(lambda: title_of(proc.pid).endswith("Paused (pause-all-workers)"))
    assert queue(r) == ['{"class":"Echo","args":["held"]}']
    r.delete("resque:pause-all-workers")
    wait_until(lambda: strings(r, "test:done") == ['["held"]'])


def test_job_of_a_sigkilled_worker_is_recovered_by_the_next_worker(
    r: redis.Redis, spawn: Spawn
) -> None:
    proc = start_sleepy(r, spawn, 2, {})
    [worker_id] = registered(r)
    [child] = children_of(proc.pid)
    os.kill(child, signal.SIGKILL)  # no job child may outlive this test
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the job is still in Redis, in the dead worker's in-flight hash
    assert r.hget(f"resque:inflight:{worker_id}", "oracle") is not None
    r.delete("resque:pruning_dead_workers_in_progress")
    proc2 = work(spawn, "oracle", "--burst")
    assert proc2.wait(20) == 0, proc2.log()
    assert strings(r, "test:started") == ["s", "s"]
    assert worker_id not in registered(r)
    assert not r.exists(f"resque:inflight:{worker_id}")
    assert strings(r, "test:done") == ["s", '["queued-behind"]']
    assert failures(r) == []
    assert r.hlen("resque:redeliveries") == 0  # cleared once the redelivered job succeeded
