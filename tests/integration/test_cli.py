"""The pyresque command: enqueue, status, failures, and passwords kept out of its output."""

from __future__ import annotations

import json
from collections.abc import Callable

import redis

from tests.helpers import Proc, wait_until
from tests.integration.test_worker import failures, push, strings, work

Spawn = Callable[..., Proc]


def run(spawn: Spawn, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = spawn(*args, env=env)
    code = proc.wait(20)
    return code, proc.log()


def test_enqueue_writes_a_ruby_compatible_payload(r: redis.Redis, spawn: Spawn) -> None:
    code, out = run(
        spawn, "enqueue", "--queue", "oracle", "Echo", "1", '"two"', '{"k":3.5}', "plain"
    )
    assert code == 0, out
    assert strings(r, "resque:queue:oracle") == [
        '{"class":"Echo","args":[1,"two",{"k":3.5},"plain"]}'
    ]
    assert r.smembers("resque:queues") == {b"oracle"}


def test_status_shows_queues_workers_and_stats(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", {"class": "Sleepy", "args": [30, "s"]})
    push(r, "later", {"class": "Echo", "args": [1]})
    r.set("resque:stat:processed", 7)
    r.set("resque:stat:failed", 2)
    proc = work(spawn, "oracle")
    wait_until(lambda: strings(r, "test:started") == ["s"])
    code, out = run(spawn, "status", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["queues"] == [{"name": "later", "size": 1}, {"name": "oracle", "size": 0}]
    [worker] = data["workers"]
    assert worker["id"].endswith(f":{proc.pid}:oracle")
    assert worker["job"]["payload"] == {"class": "Sleepy", "args": [30, "s"]}
    assert (data["processed"], data["failed"]) == (7, 2)
    code, text = run(spawn, "status")
    assert code == 0
    assert f':{proc.pid}:oracle  working on oracle: Sleepy [30, "s"]' in text
    assert "Processed: 7  Failed: 2" in text


def test_failures_list_retry_remove_clear(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "oracle", {"class": "Boom", "args": ["a"]})
    push(r, "oracle", {"class": "Boom", "args": ["b"]})
    push(r, "oracle", {"class": "Boom", "args": ["c"]})
    assert work(spawn, "oracle", "--burst").wait() == 0
    code, out = run(spawn, "failures", "list")
    assert code == 0
    assert 'Boom  jobapp.BoomError: boom: ["a"]' in out and "3 failure record(s)" in out
    code, out = run(spawn, "failures", "retry", "1")
    assert code == 0, out
    assert strings(r, "resque:queue:oracle") == ['{"class":"Boom","args":["b"]}']
    assert "retried_at" in failures(r)[1] and "retried_at" not in failures(r)[0]
    code, out = run(spawn, "failures", "remove", "0")
    assert code == 0, out
    assert [f["payload"]["args"] for f in failures(r)] == [["b"], ["c"]]  # type: ignore[index]
    code, out = run(spawn, "failures", "remove", "9")
    assert code == 2 and "no failure record at index 9" in out
    code, out = run(spawn, "failures", "list", "--json")
    assert [f["payload"]["args"] for f in json.loads(out)] == [["b"], ["c"]]
    code, out = run(spawn, "failures", "clear")
    assert code == 0 and failures(r) == []


def test_unreachable_redis_is_a_clear_error_without_the_password(spawn: Spawn) -> None:
    url = "redis://user:hunter2@127.0.0.1:1/0"
    for args in (["status"], ["enqueue", "-q", "x", "Echo"], ["failures", "list"]):
        code, out = run(spawn, *args, "--redis", url)
        assert code == 1
        assert "Redis unreachable at redis://user:***@127.0.0.1:1/0" in out
        assert "hunter2" not in out


def test_work_without_queues_is_a_clear_error(spawn: Spawn) -> None:
    code, out = run(spawn, "work", "--app", "jobapp", env={"QUEUES": "", "QUEUE": ""})
    assert code == 2
    assert "no queues given" in out


def test_work_with_a_missing_app_is_a_clear_error(spawn: Spawn) -> None:
    code, out = run(spawn, "work", "-q", "a", "--app", "no_such_module_here")
    assert code == 2
    assert "--app no_such_module_here: cannot import it" in out
