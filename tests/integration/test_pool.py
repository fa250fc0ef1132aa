"""The real pool master, started in its own session against a real Redis, signalled, and observed
through the process table, Redis and its log."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import redis

from tests.helpers import Proc, children_of, title_of, wait_until
from tests.integration.test_worker import failures, push, registered, strings

Spawn = Callable[..., Proc]


def zombies_under(pid: int) -> list[int]:
    out = []
    for child in children_of(pid):
        try:
            with open(f"/proc/{child}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            out.append(child)
    return out


def assert_no_lingering_zombies(pid: int) -> None:
    """A child may be a zombie for the instant between its exit and the master's reap; none may
    stay one."""
    seen = set(zombies_under(pid))
    wait_until(lambda: not (seen & set(zombies_under(pid))), 1.0)


def workers_of(master: Proc) -> dict[int, str]:
    """pid -> queue group of the master's live worker processes."""
    out = {}
    for pid in children_of(master.pid):
        m = re.match(
            r"resque-[\d.]+: (?:Waiting for|Processing|Forked|Paused|Starting)(?: (.*))?$",
            title_of(pid),
        )
        if m:
            out[pid] = title_of(pid)
    return out


def group_counts(master: Proc) -> dict[str, int]:
    counts: dict[str, int] = {}
    for title in workers_of(master).values():
        m = re.search(r"Waiting for (\S+)$", title)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "resque-pool.yml"
    path.write_text("oracle: 2\n'other,oracle': 1\n")
    return path


def start_pool(spawn: Spawn, config: Path, *extra: str, env: dict[str, str] | None = None) -> Proc:
    return spawn(
        "pool", "--config", str(config), "--app", "jobapp", "--appname", "testapp", *extra, env=env
    )


def test_pool_runs_the_configured_workers_per_group(
    r: redis.Redis, spawn: Spawn, config: Path
) -> None:
    master = start_pool(spawn, config)
    wait_until(lambda: group_counts(master) == {"oracle": 2, "other,oracle": 1})
    wait_until(lambda: len(registered(r)) == 3)
    assert all(re.fullmatch(r"[^:]+:\d+:(oracle|other,oracle)", w) for w in registered(r))
    pids = sorted(workers_of(master))
    assert title_of(master.pid) == f"resque-pool-master[testapp]: managing {pids}"
    for pid in pids:
        assert os.getpgid(pid) == pid  # each worker leads its own process group
    assert f"resque-pool-manager[testapp][{master.pid}]: spawned worker" in master.log()
    push(r, "oracle", {"class": "Echo", "args": ["pooled"]})
    r.publish("resque:wakeup", "oracle")
    wait_until(lambda: strings(r, "test:done") == ['["pooled"]'])
    master.signal(signal.SIGTERM)
    assert master.wait(10) == 0
    assert registered(r) == []
    assert not any(alive(p) for p in pids)


def test_empty_pool_keeps_running(spawn: Spawn, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    master = start_pool(spawn, empty)
    wait_until(lambda: "Pool is empty" in master.log())
    assert master.popen.poll() is None
    master.signal(signal.SIGQUIT)
    assert master.wait(10) == 0


def test_broken_config_at_start_exits_non_zero_naming_the_problem(
    spawn: Spawn, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("oracle: lots\n")
    master = start_pool(spawn, bad)
    assert master.wait(10) == 2
    assert "bad.yml" in master.log() and "'oracle'" in master.log()


def test_hup_applies_an_edited_file_without_dropping_capacity(
    r: redis.Redis, spawn: Spawn, config: Path
) -> None:
    master = start_pool(spawn, config)
    wait_until(lambda: group_counts(master) == {"oracle": 2, "other,oracle": 1})
    old = set(workers_of(master))
    config.write_text("oracle: 3\nfresh: 1\n")
    master.signal(signal.SIGHUP)
    lowest = 99
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        counts = group_counts(master)
        lowest = min(lowest, sum(1 for t in workers_of(master).values() if t.endswith(" oracle")))
        if counts == {"oracle": 3, "fresh": 1} and not (set(workers_of(master)) & old):
            break
        time.sleep(0.005)
    assert group_counts(master) == {"oracle": 3, "fresh": 1}
    assert not set(workers_of(master)) & old  # every worker was replaced
    assert lowest >= 1, "capacity of [oracle] dropped to zero during the rolling restart"
    wait_until(lambda: len(registered(r)) == 4, 10)
    # a broken file on HUP keeps the old config
    config.write_text("oracle: [1, 2\n")
    master.signal(signal.SIGHUP)
    wait_until(lambda: "HUP: keeping the old config" in master.log())
    time.sleep(0.3)  # give a wrong reconcile the chance to happen
    wait_until(lambda: group_counts(master) == {"oracle": 3, "fresh": 1})
    assert_no_lingering_zombies(master.pid)


def test_quit_drains_busy_workers_then_exits(r: redis.Redis, spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "one.yml"
    config.write_text("oracle: 1\n")
    push(r, "oracle", {"class": "Sleepy", "args": [1.0, "q"]})
    master = start_pool(spawn, config)
    wait_until(lambda: strings(r, "test:started") == ["q"])
    master.signal(signal.SIGQUIT)
    assert master.wait(15) == 0, master.log()
    assert strings(r, "test:done") == ["q"]
    assert registered(r) == [] and failures(r) == []


def busy_pool(r: redis.Redis, spawn: Spawn, tmp_path: Path, *extra: str) -> tuple[Proc, list[int]]:
    config = tmp_path / "busy.yml"
    config.write_text("oracle: 2\nother: 1\n")
    push(r, "oracle", {"class": "Sleepy", "args": [60, "a"]})
    push(r, "oracle", {"class": "Sleepy", "args": [60, "b"]})
    push(r, "other", {"class": "Stubborn", "args": []})
    push(r, "oracle", {"class": "Echo", "args": ["queued"]})
    master = start_pool(spawn, config, "--shutdown-timeout", "5", *extra)
    wait_until(lambda: len(strings(r, "test:started")) == 3, 15)
    tree = [master.pid]
    for worker in children_of(master.pid):
        tree += [worker, *children_of(worker)]
    assert len(tree) == 1 + 3 + 3
    return master, tree


def assert_clean_shutdown(r: redis.Redis, master: Proc, tree: list[int], began: float) -> None:
    assert master.wait(10) == 0, master.log()
    assert time.monotonic() - began < 5.0, f"took {time.monotonic() - began:.1f}s"
    wait_until(lambda: not any(alive(p) for p in tree), 2)
    assert sorted(strings(r, "resque:queue:oracle")[:2]) == [
        '{"class":"Sleepy","args":[60,"a"]}',
        '{"class":"Sleepy","args":[60,"b"]}',
    ]
    assert strings(r, "resque:queue:oracle")[2] == '{"class":"Echo","args":["queued"]}'
    assert strings(r, "resque:queue:other") == ['{"class":"Stubborn","args":[]}']
    assert failures(r) == [] and registered(r) == []


def test_term_to_the_master_only_kubernetes(r: redis.Redis, spawn: Spawn, tmp_path: Path) -> None:
    master, tree = busy_pool(r, spawn, tmp_path)
    began = time.monotonic()
    master.signal(signal.SIGTERM)
    assert_clean_shutdown(r, master, tree, began)


def test_term_to_every_process_heroku(r: redis.Redis, spawn: Spawn, tmp_path: Path) -> None:
    master, tree = busy_pool(r, spawn, tmp_path)
    began = time.monotonic()
    for pid in tree:  # as Heroku does; one may already be gone by the time its turn comes
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    assert_clean_shutdown(r, master, tree, began)


def test_second_int_kills_at_once(r: redis.Redis, spawn: Spawn, tmp_path: Path) -> None:
    master, tree = busy_pool(r, spawn, tmp_path, "--shutdown-timeout", "25")
    began = time.monotonic()
    master.signal(signal.SIGINT)
    wait_until(lambda: "INT: shutting down" in master.log())
    master.signal(signal.SIGINT)
    assert master.wait(5) == 0
    assert time.monotonic() - began < 3
    wait_until(lambda: not any(alive(p) for p in tree), 2)
    queued = strings(r, "resque:queue:oracle") + strings(r, "resque:queue:other")
    assert len(queued) == 4 and failures(r) == [] and registered(r) == []


def test_winch_stops_workers_until_hup(spawn: Spawn, config: Path) -> None:
    master = start_pool(spawn, config, "--handle-winch")
    wait_until(lambda: len(workers_of(master)) == 3)
    master.signal(signal.SIGWINCH)
    wait_until(lambda: workers_of(master) == {}, 10)
    time.sleep(0.5)  # they must stay stopped, unlike Ruby's
    assert workers_of(master) == {}
    master.signal(signal.SIGHUP)
    wait_until(lambda: len(workers_of(master)) == 3, 10)


def test_usr2_and_cont_are_forwarded(r: redis.Redis, spawn: Spawn, config: Path) -> None:
    master = start_pool(spawn, config)
    wait_until(lambda: len(workers_of(master)) == 3)
    master.signal(signal.SIGUSR2)
    wait_until(lambda: all(t.endswith("Paused") for t in workers_of(master).values()))
    push(r, "oracle", {"class": "Echo", "args": ["held"]})
    master.signal(signal.SIGCONT)
    wait_until(lambda: strings(r, "test:done") == ['["held"]'])


def test_sigkilled_worker_is_replaced_and_its_job_put_back(
    r: redis.Redis, spawn: Spawn, tmp_path: Path
) -> None:
    config = tmp_path / "one.yml"
    config.write_text("oracle: 1\n")
    push(r, "oracle", {"class": "Sleepy", "args": [0.5, "k"]})
    master = start_pool(spawn, config)
    wait_until(lambda: strings(r, "test:started") == ["k"])
    [worker] = workers_of(master)
    [job_child] = children_of(worker)
    dead_id = next(w for w in registered(r) if f":{worker}:" in w)
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: dead_id not in registered(r), 3)  # no ghost in resque-web
    wait_until(lambda: not alive(job_child), 3)  # its job child does not linger
    wait_until(lambda: strings(r, "test:done") == ["k"], 10)  # put back, done by the replacement
    [replacement] = workers_of(master)
    assert replacement != worker
    assert failures(r) == []
    assert_no_lingering_zombies(master.pid)
    # a SIGKILL alone says nothing of memory: no guess (the OOM killer would show in the cgroup)
    assert f"reaped worker {worker} [oracle]: killed by SIGKILL after" in master.log()


def test_sigkilled_master_leaves_no_workers_behind(spawn: Spawn, config: Path) -> None:
    master = start_pool(spawn, config)
    wait_until(lambda: len(workers_of(master)) == 3)
    pids = list(workers_of(master))
    master.signal(signal.SIGKILL)
    master.wait(5)
    wait_until(lambda: not any(alive(p) for p in pids), 5)


def test_raising_after_prefork_backs_off_instead_of_storming(spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "one.yml"
    config.write_text("oracle: 1\n")
    master = spawn(
        "pool", "--config", str(config), "--app", "poolapp", env={"FAIL_AFTER_PREFORK": "1"}
    )
    wait_until(lambda: master.log().count("(boot failure)") >= 3, 10)
    time.sleep(2)  # count what happens over a fixed window
    spawned = master.log().count("spawned worker")
    assert spawned <= 8, f"{spawned} spawns in about 3 s: a respawn storm"
    assert "next spawn in" in master.log()
    assert master.popen.poll() is None
    assert_no_lingering_zombies(master.pid)


def test_custom_config_loader_is_polled(spawn: Spawn, tmp_path: Path) -> None:
    source = tmp_path / "counts.json"
    source.write_text('{"oracle": 1}')
    master = spawn(
        "pool", "--app", "jobapp", "--config-loader", "poolloader:load",
        env={"POOL_LOADER_FILE": str(source)},
    )  # fmt: skip
    wait_until(lambda: group_counts(master) == {"oracle": 1})
    source.write_text('{"oracle": 2, "other": 1}')
    wait_until(lambda: group_counts(master) == {"oracle": 2, "other": 1}, 10)
    source.write_text('{"oracle": "many"}')
    wait_until(lambda: "config loader: keeping the current config" in master.log(), 10)
    assert group_counts(master) == {"oracle": 2, "other": 1}


def test_daemon_pidfile_and_info(spawn: Spawn, config: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "pool.pid"
    logfile = tmp_path / "pool.log"
    launcher = start_pool(
        spawn, config, "--daemon", "--pidfile", str(pidfile), "--stdout", str(logfile)
    )
    assert launcher.wait(10) == 0  # the launching process returns at once
    wait_until(pidfile.exists)
    master_pid = int(pidfile.read_text())
    try:
        wait_until(lambda: title_of(master_pid).startswith("resque-pool-master[testapp]"))
        wait_until(lambda: logfile.exists() and logfile.read_text().count("started, queues") == 3)
        os.kill(master_pid, signal.SIGIO)
        wait_until(lambda: "INFO: worker" in logfile.read_text())
        os.kill(master_pid, signal.SIGTERM)
        wait_until(lambda: not alive(master_pid), 10)
        assert not pidfile.exists()
    finally:
        if alive(master_pid):
            os.killpg(os.getpgid(master_pid), signal.SIGKILL)


def test_pool_recovers_jobs_of_dead_workers_it_finds(
    r: redis.Redis, spawn: Spawn, tmp_path: Path
) -> None:
    """A worker of a SIGKILLed pool left its job in flight: the next pool puts it back."""
    import socket

    dead = f"{socket.gethostname()}:4194000:oracle"  # above pid_max: no such process
    payload = '{"class":"Echo","args":["recovered"]}'
    r.sadd("resque:workers", dead)
    r.hset("resque:workers:heartbeat", dead, "2026-11-28T06:57:33+00:00")
    r.hset(f"resque:inflight:{dead}", "oracle", payload)
    r.sadd("resque:inflight-workers", dead)
    config = tmp_path / "one.yml"
    config.write_text("other: 1\n")
    master = start_pool(spawn, config)
    wait_until(lambda: strings(r, "resque:queue:oracle") == [payload], 10)
    assert not r.exists(f"resque:inflight:{dead}")
    wait_until(lambda: dead not in registered(r), 5)  # unregistered right after the requeue
    wait_until(lambda: "prune: recovered dead workers" in master.log())  # logged once done


@pytest.mark.parametrize(
    ("flag", "worker_signal_seen"),
    [("--term-graceful", "SIGQUIT received"), ("--term-immediate", "SIGTERM received")],
)
def test_term_modes_that_exit_at_once(
    r: redis.Redis, spawn: Spawn, tmp_path: Path, flag: str, worker_signal_seen: str
) -> None:
    config = tmp_path / "one.yml"
    config.write_text("oracle: 1\n")
    master = start_pool(spawn, config, flag)
    wait_until(lambda: len(workers_of(master)) == 1)
    [worker] = workers_of(master)
    master.signal(signal.SIGTERM)
    assert master.wait(5) == 0
    wait_until(lambda: not alive(worker), 5)
    assert worker_signal_seen in master.log()


def test_term_graceful_wait_lets_jobs_finish(r: redis.Redis, spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "one.yml"
    config.write_text("oracle: 1\n")
    push(r, "oracle", {"class": "Sleepy", "args": [1.0, "g"]})
    master = start_pool(spawn, config, "--term-graceful-wait")
    wait_until(lambda: strings(r, "test:started") == ["g"])
    master.signal(signal.SIGTERM)
    assert master.wait(15) == 0
    assert strings(r, "test:done") == ["g"]


def test_spawn_delay_and_single_process_group(spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "three.yml"
    config.write_text("oracle: 3\n")
    master = start_pool(spawn, config, "--spawn-delay", "300", "--single-process-group")
    wait_until(lambda: len(workers_of(master)) == 3, 10)
    assert master.log().count("spawned worker") == 3
    for pid in workers_of(master):
        assert os.getpgid(pid) == os.getpgid(master.pid)
    started = sorted(psutil.Process(pid).create_time() for pid in workers_of(master))
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(started)), started


def test_lock_is_held_shared_while_the_pool_runs(
    spawn: Spawn, config: Path, tmp_path: Path
) -> None:
    import fcntl

    lock = tmp_path / "pool.lock"
    master = start_pool(spawn, config, "--lock", str(lock))
    wait_until(lambda: len(workers_of(master)) == 3)
    with open(lock) as f:
        with pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a deploy tool waits on this
        fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)  # another pool may share it
    master.signal(signal.SIGTERM)
    assert master.wait(10) == 0
    with open(lock) as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def state_of(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_ttin_and_ttou_change_every_group_by_one_until_hup(spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "two.yml"
    config.write_text("oracle: 1\nother: 2\n")
    master = start_pool(spawn, config)
    wait_until(lambda: group_counts(master) == {"oracle": 1, "other": 2})

    def send(signum: int, seen: str) -> None:
        """One at a time: signals of one kind sent faster than they are handled merge."""
        before = master.log().count(seen)
        master.signal(signum)
        wait_until(lambda: master.log().count(seen) > before)

    send(signal.SIGTTIN, "TTIN:")
    wait_until(lambda: group_counts(master) == {"oracle": 2, "other": 3}, 10)
    assert state_of(master.pid) != "T"  # not stopped, as the default action would
    for _ in range(2):
        send(signal.SIGTTOU, "TTOU:")
    wait_until(lambda: group_counts(master) == {"other": 1}, 10)
    send(signal.SIGTTOU, "TTOU:")
    wait_until(lambda: group_counts(master) == {}, 10)
    send(signal.SIGTTOU, "TTOU: every group is already at 0 workers")
    send(signal.SIGTTIN, "TTIN:")  # one worker in every group again, from 0
    wait_until(lambda: group_counts(master) == {"oracle": 1, "other": 1}, 10)
    master.signal(signal.SIGHUP)  # the config again
    wait_until(lambda: group_counts(master) == {"oracle": 1, "other": 2}, 10)
    master.signal(signal.SIGTERM)
    assert master.wait(10) == 0


def test_hup_with_the_file_emptied_keeps_the_workers(spawn: Spawn, config: Path) -> None:
    master = start_pool(spawn, config)
    wait_until(lambda: group_counts(master) == {"oracle": 2, "other,oracle": 1})
    before = set(workers_of(master))
    config.write_text("")  # a deploy rewriting it, caught half way
    master.signal(signal.SIGHUP)
    wait_until(lambda: "HUP: keeping the old config and workers" in master.log())
    assert "replacing every worker" not in master.log()
    time.sleep(0.3)  # give a wrong reconcile the chance to happen
    assert set(workers_of(master)) == before
