"""An idle single-queue worker sends its reservation right behind its blocking move, so the
server reserves a job the moment the move takes it and a pickup costs one round trip. A wait a
signal ends after the server reserved a job, with the reply never read, loses nothing."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from pyresque.wire import protocol
from tests.cgroups import FreezerCgroup, create_freezer_cgroup, remove_freezer_cgroup
from tests.helpers import Proc, title_of, wait_until
from tests.integration.test_worker import failures, push, registered, strings, work

Spawn = Callable[..., Proc]
SLEEPY = '{"class":"Sleepy","args":[2,"s"]}'  # long enough to read CLIENT LIST while it runs
ECHO = '{"class":"Echo","args":["once"]}'


def blocking_connection(r: redis.Redis) -> dict[str, Any] | None:
    """The worker's blocking-move connection, as CLIENT LIST shows it."""
    for client in r.client_list():
        if client.get("name", "").startswith("pyresque-blmove-"):
            return client
    return None


def blocked(r: redis.Redis) -> bool:
    """The worker is inside its blocking move (the server holds the command)."""
    client = blocking_connection(r)
    return client is not None and "b" in client["flags"] and client["cmd"] == "blmove"


def test_the_reservation_runs_on_the_blocking_connection_when_the_move_returns(
    r: redis.Redis, spawn: Spawn
) -> None:
    work(spawn, "oracle")
    wait_until(lambda: blocked(r))
    before = r.time()[0]
    push(r, "oracle", SLEEPY)
    wait_until(lambda: strings(r, "test:started") == ["s"])
    # the last command of the move's connection is the reservation that followed it
    client = blocking_connection(r)
    assert client is not None and client["cmd"] == "evalsha", client
    [wid] = registered(r)
    record = protocol.loads(r.get(f"resque:worker:{wid}") or b"")
    assert isinstance(record, dict) and record["queue"] == "oracle"
    # run_at comes from the server's clock at the reservation, in run_at_time's format
    run_at = str(record["run_at"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", run_at), run_at
    assert run_at in {protocol.run_at_time(before + d) for d in range(3)}
    wait_until(lambda: strings(r, "test:done") == ["s"])


def stop_with_a_reservation_unread(r: redis.Redis, proc: Proc, interrupt: signal.Signals) -> None:
    """Freeze the worker inside its blocking wait, let the server reserve a job for it, then
    end the wait with ``interrupt`` before the worker reads the reply."""
    wait_until(lambda: blocked(r))
    proc.signal(signal.SIGSTOP)
    try:
        push(r, "oracle", ECHO)
        [wid] = registered(r)
        wait_until(lambda: r.hget(f"resque:inflight:{wid}", "oracle") == ECHO.encode())
        assert r.llen("resque:queue:oracle") == 0
        proc.signal(interrupt)  # pending: it is the first thing the worker sees on waking
    finally:
        proc.signal(signal.SIGCONT)


def test_a_signal_ending_the_wait_after_the_server_reserved_puts_the_job_back(
    r: redis.Redis, spawn: Spawn
) -> None:
    proc = work(spawn, "oracle")
    stop_with_a_reservation_unread(r, proc, signal.SIGQUIT)
    assert proc.wait(10) == 0, proc.log()
    assert strings(r, "resque:queue:oracle") == [ECHO]
    assert strings(r, "test:done") == []
    assert failures(r) == [] and registered(r) == []
    assert not r.keys("resque:inflight:*")


def test_a_worker_that_goes_on_runs_the_job_it_never_heard_of_once(
    r: redis.Redis, spawn: Spawn
) -> None:
    proc = work(spawn, "oracle")
    # USR1 at idle kills no job: the worker only leaves its wait, and must find what the server
    # reserved for it (else every later reservation would refuse to take over that one)
    stop_with_a_reservation_unread(r, proc, signal.SIGUSR1)
    wait_until(lambda: strings(r, "test:done") == ['["once"]'])
    push(r, "oracle", '{"class":"Echo","args":["next"]}')
    wait_until(lambda: strings(r, "test:done") == ['["once"]', '["next"]'])
    wait_until(lambda: r.get("resque:stat:processed") == b"2")  # counted with its acknowledgement
    assert failures(r) == [] and strings(r, "resque:queue:oracle") == []
    # found by reconciling after the wait it never read, not by a later call's 'held'
    assert "never heard back" not in proc.log()
    assert proc.popen.poll() is None, proc.log()


@pytest.fixture
def freezer() -> Iterator[FreezerCgroup]:
    cgroup = create_freezer_cgroup(f"pyresque-freeze-{os.getpid()}")
    if cgroup is None:
        pytest.skip("no cgroup v2 child can be made here to freeze a worker in")
    yield cgroup
    remove_freezer_cgroup(cgroup)


def test_a_pause_ending_the_wait_after_the_server_reserved_puts_the_job_back_for_others(
    r: redis.Redis, spawn: Spawn, freezer: FreezerCgroup
) -> None:
    # frozen rather than SIGSTOPped: the SIGCONT that resumes a stopped worker also unpauses it
    proc = spawn("work", "--queues", "oracle", "--app", "jobapp", preexec=freezer.join)
    wait_until(lambda: blocked(r))
    freezer.freeze()
    try:
        push(r, "oracle", ECHO)
        [wid] = registered(r)
        wait_until(lambda: r.hget(f"resque:inflight:{wid}", "oracle") == ECHO.encode())
        proc.signal(signal.SIGUSR2)  # pause: seen first thing on waking
    finally:
        freezer.freeze(False)
    wait_until(lambda: title_of(proc.pid).endswith("Paused"))
    # while it is paused, the job it never heard of is back at the front of the queue
    wait_until(lambda: strings(r, "resque:queue:oracle") == [ECHO])
    assert not r.exists(f"resque:inflight:{wid}") and not r.exists(f"resque:worker:{wid}")
    proc.signal(signal.SIGCONT)
    wait_until(lambda: strings(r, "test:done") == ['["once"]'])


def test_a_reservation_the_worker_never_heard_of_is_put_back_and_run(
    r: redis.Redis, spawn: Spawn
) -> None:
    """A call whose reply was lost, reaching Redis late (after the worker reconciled), leaves a
    reservation under a token the worker does not know: every later call of the worker refuses to
    reserve over it and says so, and the worker puts it back rather than idle for ever."""
    proc = work(spawn, "oracle")
    wait_until(lambda: blocked(r))
    [wid] = registered(r)
    lost = '{"class":"Echo","args":["lost"]}'
    r.hset(f"resque:inflight:{wid}", mapping={"oracle": lost, "": "late.1"})
    push(r, "oracle", ECHO)
    wait_until(lambda: sorted(strings(r, "test:done")) == ['["lost"]', '["once"]'])
    # a job is counted with its acknowledgement, in the worker's next call after it ran
    wait_until(lambda: r.get("resque:stat:processed") == b"2")
    assert "holds a reservation it never heard back about" in proc.log()
    assert failures(r) == []


def test_a_stray_reservation_token_without_a_job_is_cleared_not_spun_on(
    r: redis.Redis, spawn: Spawn
) -> None:
    """A token left in the in-flight hash with no job beside it (nothing to put back) must not
    make every call say 'held' for ever: the worker clears it and goes on."""
    proc = work(spawn, "oracle")
    wait_until(lambda: blocked(r))
    [wid] = registered(r)
    r.hset(f"resque:inflight:{wid}", "", "stray.1")
    push(r, "oracle", ECHO)
    wait_until(lambda: strings(r, "test:done") == ['["once"]'])
    # the job is acknowledged in the worker's next call, after it ran
    wait_until(lambda: not r.exists(f"resque:inflight:{wid}"))
    assert proc.log().count("holds a reservation it never heard back about") == 1
