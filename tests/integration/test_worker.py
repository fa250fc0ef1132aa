"""A real worker process against a real Redis: jobs, failures, bad input, hooks, registry."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from collections.abc import Callable

import pytest
import redis

import pyresque
from tests.helpers import Proc, children_of, title_of, wait_until

Spawn = Callable[..., Proc]


def push(r: redis.Redis, queue: str, payload: str | dict[str, object]) -> None:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    r.sadd("resque:queues", queue)
    r.rpush(f"resque:queue:{queue}", text)


def strings(r: redis.Redis, key: str) -> list[str]:
    return [v.decode() for v in r.lrange(key, 0, -1)]


def failures(r: redis.Redis) -> list[dict[str, object]]:
    return [json.loads(v) for v in r.lrange("resque:failed", 0, -1)]


def work(spawn: Spawn, queues: str, *extra: str, env: dict[str, str] | None = None) -> Proc:
    return spawn("work", "--queues", queues, "--app", "jobapp", *extra, env=env)


def registered(r: redis.Redis) -> list[str]:
    return sorted(w.decode() for w in r.smembers("resque:workers"))


def test_burst_worker_runs_jobs_in_strict_priority_order(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "low", {"class": "Echo", "args": ["low-1"]})
    push(r, "high", {"class": "Echo", "args": ["high-1"]})
    push(r, "low", {"class": "Echo", "args": ["low-2"]})
    push(r, "high", {"class": "Echo", "args": ["high-2"]})
    proc = work(spawn, "high,low", "--burst")
    assert proc.wait() == 0, proc.log()
    assert strings(r, "test:done") == ['["high-1"]', '["high-2"]', '["low-1"]', '["low-2"]']
    assert r.get("resque:stat:processed") == b"4"
    assert registered(r) == []


def test_fork_mode_runs_each_job_in_its_own_child(r: redis.Redis, spawn: Spawn) -> None:
    for i in range(3):
        push(r, "oracle", {"class": "Echo", "args": [i]})
    proc = work(spawn, "oracle", "--burst")
    assert proc.wait() == 0, proc.log()
    pids = strings(r, "test:pids")
    assert len(set(pids)) == 3 and str(proc.pid) not in pids


def test_in_process_mode_runs_jobs_in_the_worker(r: redis.Redis, spawn: Spawn) -> None:
    for i in range(3):
        push(r, "oracle", {"class": "Echo", "args": [i]})
    proc = work(spawn, "oracle", "--burst", env={"FORK_PER_JOB": "false"})
    assert proc.wait() == 0, proc.log()
    assert strings(r, "test:pids") == [str(proc.pid)] * 3


def test_failing_job_becomes_a_failure_record_and_the_worker_goes_on(
    r: redis.Redis, spawn: Spawn
) -> None:
    push(r, "oracle", {"class": "Boom", "args": ["x", 42]})
    push(r, "oracle", {"class": "Echo", "args": ["after"]})
    proc = work(spawn, "oracle", "--burst")
    assert proc.wait() == 0, proc.log()
    [record] = failures(r)
    assert list(record) == [
        "failed_at",
        "payload",
        "exception",
        "error",
        "backtrace",
        "worker",
        "queue",
    ]
    assert record["payload"] == {"class": "Boom", "args": ["x", 42]}
    assert record["exception"] == "jobapp.BoomError"
    assert record["error"] == 'boom: ["x",42]'
    assert any("jobapp.py" in line and "in `perform'" in line for line in record["backtrace"])  # type: ignore[union-attr]
    assert re.fullmatch(rf"[^:]+:{proc.pid}:oracle", str(record["worker"]))
    assert record["queue"] == "oracle"
    assert strings(r, "test:on_failure") == ['BoomError: boom: ["x",42]']
    assert strings(r, "test:done") == ['["after"]']
    assert r.get("resque:stat:failed") == b"1"
    assert r.get("resque:stat:processed") == b"2"


def test_bad_payloads_become_clear_failures(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", "{not json")
    push(r, "oracle", {"class": "Echo", "args": {"a": 1}})
    push(r, "oracle", {"class": "os.system", "args": ["touch /tmp/pwned-by-payload"]})
    push(r, "oracle", {"args": [1]})
    push(r, "oracle", {"class": "Echo", "args": ["survivor"]})
    proc = work(spawn, "oracle", "--burst")
    assert proc.wait() == 0, proc.log()
    got = [(f["exception"], f["error"]) for f in failures(r)]
    assert [g[0] for g in got] == [
        "pyresque.errors.PayloadError",
        "pyresque.errors.PayloadError",
        "pyresque.errors.UnknownJobClass",
        "pyresque.errors.PayloadError",
    ]
    assert "not valid JSON" in str(got[0][1])
    assert "'args' must be a list" in str(got[1][1])
    assert "no job named 'os.system'" in str(got[2][1])
    assert "no 'class'" in str(got[3][1])
    assert failures(r)[0]["payload"] == "{not json"
    assert not os.path.exists("/tmp/pwned-by-payload")
    assert strings(r, "test:done") == ['["survivor"]']


def test_alias_and_allowed_import_path(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", {"class": "Mailers::Welcome", "args": ["ruby-name"]})
    push(r, "oracle", {"class": "importable.jobs.record", "args": ["by-path"]})
    proc = work(spawn, "oracle", "--burst", "--allow-module", "importable")
    assert proc.wait() == 0, proc.log()
    assert strings(r, "test:done") == ['["ruby-name"]', '["by-path"]']
    assert failures(r) == []


def test_job_hooks_nest_and_fire_in_resque_order(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", {"class": "Hooked", "args": [False]})
    push(r, "oracle", {"class": "Hooked", "args": [True]})
    push(r, "oracle", {"class": "Skipped", "args": []})
    proc = work(spawn, "oracle", "--burst")
    assert proc.wait() == 0, proc.log()
    assert strings(r, "test:events") == [
        "before", "around_a:enter", "around_b:enter", "perform",
        "around_b:exit", "around_a:exit", "after",
        "before", "around_a:enter", "around_b:enter", "perform",
        "on_failure:hooked failure",
    ]  # fmt: skip
    assert [f["payload"] for f in failures(r)] == [{"class": "Hooked", "args": [True]}]
    assert r.get("resque:stat:processed") == b"3"


def test_worker_hooks_run_at_their_moments(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", {"class": "Echo", "args": [1]})
    proc = work(spawn, "oracle", "--burst")
    assert proc.wait() == 0, proc.log()
    [child_pid] = strings(r, "test:pids")
    assert strings(r, "test:worker_hooks") == [
        "before_first_fork",
        "before_fork:Echo",
        f"after_fork:Echo:{child_pid}",
        "queue_empty",
        "worker_exit",
    ]


def test_job_child_enqueues_on_its_own_connection(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", {"class": "Enqueuer", "args": [20]})
    proc = work(spawn, "oracle", "--burst")
    assert proc.wait() == 0, proc.log()
    assert len(strings(r, "test:done")) == 20
    assert failures(r) == []


def test_job_that_kills_its_process_is_retried_then_failed(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", {"class": "KillSelf", "args": ["k"]})
    push(r, "oracle", {"class": "Echo", "args": ["next"]})
    proc = work(spawn, "oracle", "--burst", env={"RESQUE_MAX_DELIVERIES": "3"})
    assert proc.wait() == 0, proc.log()
    assert strings(r, "test:started") == ["k", "k", "k"]
    [record] = failures(r)
    assert record["exception"] == "Resque::DirtyExit"
    assert re.fullmatch(
        r"Child process received unhandled signal pid \d+ SIGKILL \(signal 9\)",
        str(record["error"]),
    )
    assert record["backtrace"] == []
    assert strings(r, "test:on_failure")[0].startswith("DirtyExit: Child process received")
    assert len(strings(r, "test:on_failure")) == 1
    assert r.get("resque:stat:failed") is None
    assert strings(r, "test:done") == ['["next"]']
    assert r.hlen("resque:redeliveries") == 0


@pytest.mark.parametrize("mode", ["fork", "in-process"])
def test_job_that_exits_its_process_is_retried_then_fails(
    r: redis.Redis, spawn: Spawn, mode: str
) -> None:
    """Like a segfault or an OOM kill: put back, counted, failed at the third death (in both
    modes: in-process, the pool's master recovers the job of the worker that died)."""
    push(r, "oracle", {"class": "ExitCode", "args": [5]})
    if mode == "fork":
        proc = work(spawn, "oracle", "--burst")
        assert proc.wait() == 0, proc.log()
    else:
        config = spawn_config(r)
        proc = spawn("pool", "--config", config, "--app", "jobapp", env={"FORK_PER_JOB": "false"})
        wait_until(lambda: r.llen("resque:failed") == 1, 20)
    assert len(strings(r, "test:attempts")) == 3
    [record] = failures(r)
    assert record["exception"] == "Resque::DirtyExit"
    assert str(record["error"]).endswith(
        "Child process exited with status 5 before reporting a result"
        if mode == "fork"
        else "died: exited with status 5"
    )


def test_busy_worker_is_visible_like_a_ruby_worker(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", {"class": "Sleepy", "args": [30, "s"]})
    proc = work(spawn, "oracle,other", env={"RESQUE_HEARTBEAT_INTERVAL": "1"})
    wait_until(lambda: strings(r, "test:started") == ["s"])
    [worker_id] = registered(r)
    assert re.fullmatch(rf"[^:]+:{proc.pid}:oracle,other", worker_id)
    busy = json.loads(r.get(f"resque:worker:{worker_id}") or b"null")
    assert list(busy) == ["queue", "run_at", "payload"]
    assert busy["queue"] == "oracle"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", busy["run_at"])
    assert busy["payload"] == {"class": "Sleepy", "args": [30, "s"]}
    started = (r.get(f"resque:worker:{worker_id}:started") or b"").decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}", started)
    beat = (r.hget("resque:workers:heartbeat", worker_id) or b"").decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", beat)
    # the parent keeps heartbeating while the child works
    wait_until(lambda: r.hget("resque:workers:heartbeat", worker_id).decode() != beat, 5)
    assert re.match(r"resque-\d+\.\d+\.\d+: Forked \d+ at \d+$", title_of(proc.pid))
    [child] = children_of(proc.pid)
    assert re.match(
        r"resque-\d+\.\d+\.\d+: Processing oracle since \d+ \[Sleepy\]$", title_of(child)
    )
    held = r.hgetall(f"resque:inflight:{worker_id}")
    assert held.pop(b"oracle") == b'{"class":"Sleepy","args":[30,"s"]}'
    assert list(held) == [b""] and held[b""]  # the reservation's token
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    for key in (
        f"resque:worker:{worker_id}",
        f"resque:worker:{worker_id}:started",
        f"resque:inflight:{worker_id}",
    ):
        assert not r.exists(key), key
    assert registered(r) == [] and not r.hexists("resque:workers:heartbeat", worker_id)


def test_idle_multi_queue_worker_wakes_on_enqueue_instead_of_polling(
    r: redis.Redis, spawn: Spawn
) -> None:
    # INTERVAL=30 rules out the poll: only the wake-up can deliver the job in time.
    proc = work(spawn, "oracle,other", env={"INTERVAL": "30"})
    wait_until(lambda: title_of(proc.pid).endswith("Waiting for oracle,other"), 5)
    wait_until(lambda: r.pubsub_numsub("resque:wakeup")[0][1] == 1, 5)
    # let the idle back-off grow well past its first short polls
    wait_until(
        lambda: int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)) >= 5, 5
    )
    pyresque.Client(r, namespace="resque").enqueue_to("other", "Echo", "woken")
    wait_until(lambda: strings(r, "test:done") == ['["woken"]'], 3)


def test_idle_single_queue_worker_blocks_and_takes_a_ruby_push_at_once(
    r: redis.Redis, spawn: Spawn
) -> None:
    """A plain RPUSH (what Ruby's enqueue does, with no wake-up) reaches a blocked worker."""
    proc = work(spawn, "oracle", env={"INTERVAL": "30"})

    def blocked_clients(r: redis.Redis) -> list[str]:  # this worker's (the server is shared)
        mine = f"pyresque-blmove-{socket.gethostname()}:{proc.pid}:"
        return [c["cmd"] for c in r.client_list() if c.get("name", "").startswith(mine)]

    wait_until(lambda: blocked_clients(r) == ["blmove"], 5)
    assert r.pubsub_numsub("resque:wakeup")[0][1] == 0
    push(r, "oracle", {"class": "Echo", "args": ["from ruby"]})
    wait_until(lambda: strings(r, "test:done") == ['["from ruby"]'], 3)
    [worker_id] = registered(r)
    assert not r.exists(f"resque:landing:{worker_id}")
    # a signal abandons the blocking command: the worker exits at once, nothing is left behind
    wait_until(lambda: blocked_clients(r) == ["blmove"], 5)
    proc.signal(signal.SIGQUIT)
    assert proc.wait(5) == 0
    assert registered(r) == [] and not r.exists(f"resque:landing:{worker_id}")
    wait_until(lambda: blocked_clients(r) == [], 2)  # its blocking connection is closed


def test_star_worker_finds_queues_as_they_appear(r: redis.Redis, spawn: Spawn) -> None:
    proc = work(spawn, "*", env={"INTERVAL": "30"})
    wait_until(lambda: title_of(proc.pid).endswith("Waiting for *"), 5)
    wait_until(lambda: r.pubsub_numsub("resque:wakeup")[0][1] == 1, 5)
    pyresque.Client(r, namespace="resque").enqueue_to("brand-new", "Echo", "new queue")
    wait_until(lambda: strings(r, "test:done") == ['["new queue"]'], 3)


def test_exclusions_and_globs(r: redis.Redis, spawn: Spawn) -> None:
    for q in ("mail_a", "mail_b", "mail_spam", "other"):
        push(r, q, {"class": "Echo", "args": [q]})
    proc = work(spawn, "mail_*,!mail_spam", "--burst")
    assert proc.wait() == 0, proc.log()
    assert strings(r, "test:done") == ['["mail_a"]', '["mail_b"]']
    assert r.llen("resque:queue:mail_spam") == 1 and r.llen("resque:queue:other") == 1


def spawn_config(r: redis.Redis) -> str:
    """A pool config file of one worker on ``oracle``, in a fresh temporary directory."""
    import tempfile

    path = os.path.join(tempfile.mkdtemp(prefix="pyresque-pool-"), "resque-pool.yml")
    with open(path, "w") as f:
        f.write("oracle: 1\n")
    return path
