"""The pyresque command: enqueue, status, failures, and passwords kept out of its output."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from harness.redis_server import RedisServer, start_redis_server
from tests.helpers import APP_DIR, ROOT, Proc, title_of, wait_until
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


BAD_URLS = {
    "notaurl": "expected scheme://",
    "http://localhost:6379/0": "unknown scheme 'http://'",
    "redis://localhost:99999/0": "port 99999 is out of range",
    "redis://localhost:6379/abc": "database 'abc' in the path (/N) is not a number",
    "redis://u:hunter2@localhost:6379/-1": "database '-1' in the path (/N) is not a number",
    "redis ://:hunter2@localhost:1/0": "unknown scheme 'redis ://'",
    " redis://:hunter2@localhost:1/0": "unknown scheme ' redis://'",
}
EVERY_COMMAND = (
    ["work", "-q", "a", "--app", "jobapp"],
    ["enqueue", "-q", "a", "Echo"],
    ["status"],
    ["failures", "list"],
    ["failures", "retry", "0"],
    ["pool", "--app", "poolapp"],
)


def test_a_bad_redis_url_is_one_clear_line_and_exit_2(spawn: Spawn) -> None:
    for url, problem in BAD_URLS.items():
        for command in EVERY_COMMAND:
            code, out = run(spawn, *command, "--redis", url)
            assert code == 2, (command, url, out)
            assert out.count("is not a usable Redis URL") == 1, out
            assert problem in out and "Traceback" not in out, out
            assert "hunter2" not in out


def test_a_bad_url_in_the_environment_is_named_as_such(spawn: Spawn) -> None:
    for command in (["status"], ["pool", "--app", "poolapp"]):
        code, out = run(spawn, *command, env={"REDIS_URL": "redis://h:6379/abc"})
        assert code == 2, out
        assert "REDIS_URL 'redis://h:6379/abc' is not a usable Redis URL" in out


def test_a_database_the_server_lacks_is_exit_2(spawn: Spawn, redis_server: RedisServer) -> None:
    url = f"unix://{redis_server.socket_path}?db=99"
    for command in (["status"], ["enqueue", "-q", "a", "Echo"], ["work", "-q", "a", "--burst"]):
        code, out = run(spawn, *command, "--redis", url)
        assert code == 2, (command, out)
        assert "the server refused the URL's database number" in out, out
        assert "Traceback" not in out


@pytest.fixture(scope="module")
def locked_server() -> Iterator[RedisServer]:
    """A private server that wants the password ``sekrit``."""
    server = start_redis_server(password="sekrit")
    yield server
    server.stop()


def test_a_wrong_password_is_authentication_failed_not_unreachable(
    spawn: Spawn, locked_server: RedisServer
) -> None:
    path = locked_server.socket_path
    for url in (f"unix://:wrong@{path}?db=0", f"unix://{path}?db=0", f"unix://bob:x@{path}"):
        for command in (
            ["status"],
            ["enqueue", "-q", "a", "Echo"],
            ["failures", "list"],
            ["work", "-q", "a", "--app", "jobapp"],  # not a retry loop: the password is wrong
        ):
            started = time.monotonic()
            code, out = run(spawn, *command, "--redis", url)
            assert code == 2, (command, out)
            assert "authentication failed" in out and "unreachable" not in out, out
            assert "Traceback" not in out and "wrong" not in out.replace("***", "")
            assert time.monotonic() - started < 8  # at once, not after a retry loop
    code, out = run(spawn, "status", "--redis", f"unix://:sekrit@{path}?db=0")
    assert code == 0, out


def test_an_acl_refusal_is_authentication_failed(spawn: Spawn, locked_server: RedisServer) -> None:
    admin = locked_server.client()
    admin.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~nothing*", "+ping")
    code, out = run(spawn, "status", "--redis", f"unix://reader:pw@{locked_server.socket_path}")
    assert code == 2, out
    assert "authentication failed" in out and "no permissions" in out


def test_the_password_leaves_the_command_line_at_once(spawn: Spawn) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        for form in (
            ["--redis", f"redis://:hunter2@127.0.0.1:{port}/0"],
            [f"--redis=redis://hunter2@127.0.0.1:{port}/0"],
        ):
            proc = spawn("status", *form)
            cmdline = wait_until(lambda p=proc: "***" in title_of(p.pid) and title_of(p.pid))
            assert "hunter2" not in cmdline and "status" in cmdline, cmdline
            assert proc.popen.poll() is None  # still waiting on the silent server
            proc.stop()


def test_app_given_as_a_file_path_names_the_module_to_use(spawn: Spawn) -> None:
    for given in ("./jobapp.py", "jobapp.py", "apps/jobapp.py"):
        code, out = run(spawn, "work", "-q", "a", "--burst", "--app", given)
        assert code == 2, out
        assert "is a file path, not a module name: use the module name" in out, out
        assert "Traceback" not in out and "TypeError" not in out


def test_an_error_inside_the_app_shows_its_traceback(spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "brokenapp.py").write_text("import json\n\nimport no_such_dependency_here\n")
    env = {"PYTHONPATH": str(tmp_path)}
    code, out = run(spawn, "work", "-q", "a", "--burst", "--app", "brokenapp", env=env)
    assert code == 2, out
    assert "Traceback" in out and 'brokenapp.py", line 3' in out, out
    assert "--app brokenapp: importing it raised ModuleNotFoundError" in out


def test_work_without_any_app_warns_at_start(spawn: Spawn) -> None:
    code, out = run(spawn, "work", "-q", "a", "--burst", env={"PYRESQUE_APP": ""})
    assert code == 0, out
    assert "no app loaded (--app MODULE or $PYRESQUE_APP)" in out
    code, out = run(spawn, "work", "-q", "a", "--burst", "--allow-module", "jobapp")
    assert code == 0 and "no app loaded" not in out, out
    code, out = run(spawn, "work", "-q", "a", "--burst", "--app", "jobapp")
    assert code == 0 and "no app loaded" not in out, out


def three_failures(r: redis.Redis, spawn: Spawn) -> None:
    for arg in ("a", "b", "c"):
        push(r, "oracle", {"class": "Boom", "args": [arg]})
    assert work(spawn, "oracle", "--burst").wait() == 0
    assert len(failures(r)) == 3


def test_failures_retry_needs_indexes_or_all_like_remove(r: redis.Redis, spawn: Spawn) -> None:
    three_failures(r, spawn)
    for args in (["retry"], ["retry", "0", "--all"], ["remove"]):
        code, out = run(spawn, "failures", *args)
        assert code == 2, (args, out)
    assert r.llen("resque:queue:oracle") == 0 and len(failures(r)) == 3
    code, out = run(spawn, "failures", "retry")
    assert "give the indexes of the records to retry, or --all" in out


def test_negative_indexes_are_refused(r: redis.Redis, spawn: Spawn) -> None:
    three_failures(r, spawn)
    for args in (["remove", "-1"], ["retry", "-1"], ["list", "--start", "-2"]):
        code, out = run(spawn, "failures", *args)
        assert code == 2, (args, out)
        assert "is negative: indexes count from 0" in out, out
    assert len(failures(r)) == 3 and r.llen("resque:queue:oracle") == 0


def test_a_missing_index_changes_nothing(r: redis.Redis, spawn: Spawn) -> None:
    three_failures(r, spawn)
    for action in ("retry", "remove"):
        code, out = run(spawn, "failures", action, "0", "7")
        assert code == 2, out
        assert "no failure record at index 7 (there are 3: 0 to 2)" in out
    assert len(failures(r)) == 3 and r.llen("resque:queue:oracle") == 0
    assert all("retried_at" not in f for f in failures(r))


def test_retry_all_never_queues_a_job_twice(r: redis.Redis, spawn: Spawn) -> None:
    three_failures(r, spawn)
    code, out = run(spawn, "failures", "retry", "1", "1")
    assert code == 0, out
    assert strings(r, "resque:queue:oracle") == ['{"class":"Boom","args":["b"]}']
    code, out = run(spawn, "failures", "retry", "--all")
    assert code == 0, out
    assert "retried 2, skipped 1 already retried" in out
    assert sorted(strings(r, "resque:queue:oracle")) == [
        '{"class":"Boom","args":["a"]}',
        '{"class":"Boom","args":["b"]}',
        '{"class":"Boom","args":["c"]}',
    ]
    code, out = run(spawn, "failures", "retry", "0")
    assert code == 2 and "already retried: 0 (at " in out and "--again" in out, out
    assert r.llen("resque:queue:oracle") == 3
    code, out = run(spawn, "failures", "retry", "--again", "0")
    assert code == 0, out
    assert r.llen("resque:queue:oracle") == 4
    assert len(failures(r)) == 3  # retried records stay listed, as in resque-web


def test_enqueue_takes_the_queue_the_job_names(
    r: redis.Redis, spawn: Spawn, tmp_path: Path
) -> None:
    code, out = run(spawn, "enqueue", "--app", "jobapp", "Echo", "1")
    assert code == 0, out
    assert strings(r, "resque:queue:oracle") == ['{"class":"Echo","args":[1]}']
    code, out = run(spawn, "enqueue", "Echo", "2", env={"PYRESQUE_APP": ""})
    assert code == 2 and "give --queue, or --app MODULE" in out, out
    code, out = run(spawn, "enqueue", "--app", "jobapp", "Nope")
    assert code == 2 and "no job named 'Nope' is registered" in out and "Echo" in out, out
    (tmp_path / "anyqueue.py").write_text(
        "import pyresque\n\n@pyresque.job(name='Loose')\ndef loose() -> None:\n    pass\n"
    )
    env = {"PYTHONPATH": str(tmp_path)}
    code, out = run(spawn, "enqueue", "--app", "anyqueue", "Loose", env=env)
    assert code == 2 and "the job names no queue of its own: give --queue" in out, out
    assert strings(r, "resque:queue:oracle") == ['{"class":"Echo","args":[1]}']


def run_split(redis_server: RedisServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The command with stdout and stderr kept apart."""
    env = {**os.environ, "REDIS_URL": redis_server.url, "RESQUE_NAMESPACE": "resque"}
    env["PYTHONPATH"] = os.pathsep.join([str(APP_DIR), str(ROOT / "src")])
    return subprocess.run(
        [sys.executable, "-m", "pyresque", *args],
        env=env,
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


LOG_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d [A-Z]+ [a-z-]+\[apps\]\[\d+\]: .*"
)


def test_work_logs_to_stderr_in_the_one_format(r: redis.Redis, redis_server: RedisServer) -> None:
    push(r, "oracle", {"class": "Echo", "args": [1]})
    done = run_split(redis_server, "work", "-q", "oracle", "--burst", "--app", "jobapp", "-v")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines and all(LOG_LINE.fullmatch(line) for line in lines), lines
    assert any(" DEBUG pyresque-worker[apps][" in line for line in lines), lines
    assert "MAINT_NOTIFICATIONS" not in done.stderr
    done = run_split(
        redis_server, "work", "-q", "oracle", "--burst", "--app", "jobapp", "--log-json"
    )
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert records and {rec["role"] for rec in records} == {"pyresque-worker"}
    assert {"time", "level", "app", "pid", "logger", "message"} <= set(records[0])


def test_pool_lines_carry_time_and_level(spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "pool.yml"
    config.write_text("oracle: 1\n")
    pool = spawn("pool", "--app", "jobapp", "-c", str(config), "--appname", "apps")
    wait_until(lambda: "started, queues oracle" in pool.log())
    pool.signal(signal.SIGTERM)
    assert pool.wait(20) == 0
    lines = [line for line in pool.log().splitlines() if "[apps][" in line]
    assert any(" INFO resque-pool-manager[apps][" in line for line in lines), lines
    assert any(" INFO resque-pool-worker[apps][" in line for line in lines), lines
    assert all(LOG_LINE.fullmatch(line) for line in lines), lines


def test_a_valid_url_this_client_cannot_use_is_one_line(spawn: Spawn) -> None:
    code, out = run(spawn, "status", "--redis", "rediss+sentinel://:pw@n1:26379,n2:26379/m")
    assert code in (1, 2), out  # unsupported (2), or supported and unreachable (1)
    assert out.startswith("pyresque: error: ") and out.count("\n") == 1, out
    assert "Traceback" not in out and "pw@" not in out


def test_pool_takes_a_config_constant_from_its_app(
    r: redis.Redis, spawn: Spawn, tmp_path: Path
) -> None:
    (tmp_path / "constpoolapp.py").write_text("import jobapp  # noqa\n\nORACLE_WORKERS = 2\n")
    config = tmp_path / "pool.yml"
    config.write_text("oracle: <%= ORACLE_WORKERS %>\n")
    pool = spawn("pool", "--app", "constpoolapp", "-c", str(config),
                 env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    wait_until(lambda: pool.popen.poll() is not None or r.scard("resque:workers") == 2, 15)
    assert r.scard("resque:workers") == 2, pool.log()


def test_pool_without_any_app_warns_at_start(spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "pool.yml"
    config.write_text("oracle: 1\n")
    pool = spawn("pool", "-c", str(config), env={"PYRESQUE_APP": ""})
    wait_until(lambda: "started, queues oracle" in pool.log(), 15)
    assert "no app loaded (--app MODULE or $PYRESQUE_APP)" in pool.log()


def test_a_delayed_enqueue_takes_the_queue_the_job_names(r: redis.Redis, spawn: Spawn) -> None:
    code, out = run(spawn, "enqueue", "--app", "jobapp", "--in", "600", "Echo", "later")
    assert code == 0, out
    [timestamp] = r.zrange("resque:delayed_queue_schedule", 0, -1)
    [item] = strings(r, f"resque:delayed:{timestamp.decode()}")
    assert json.loads(item) == {"class": "Echo", "args": ["later"], "queue": "oracle"}


def test_status_shows_a_busy_record_it_cannot_parse_instead_of_failing(
    r: redis.Redis, spawn: Spawn
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    r.sadd("resque:workers", "otherhost:1:q")
    r.set("resque:worker:otherhost:1:q", deep)
    status = spawn("status")
    assert status.wait(20) == 0, status.log()
    assert "otherhost:1:q  working on None: (unreadable) [[[" in status.log()
    as_json = spawn("status", "--json")
    assert as_json.wait(20) == 0, as_json.log()


def test_an_index_error_in_a_command_is_a_bug_with_its_traceback(tmp_path: Path) -> None:
    """Only errors of ours become one line: an IndexError (a bug) keeps its traceback."""
    buggy = (
        "import sys\n"
        "import pyresque.cli.status as status\n"
        "def status_data(store):\n"
        "    return [][0]\n"
        "status.status_data = status_data\n"
        "from pyresque.cli.main import main\n"
        "sys.exit(main(['status', '--redis', 'redis://127.0.0.1:1/0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", buggy],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" in done.stderr and "IndexError: list index out of range" in done.stderr
    assert "pyresque: error:" not in done.stderr


def test_a_missing_failure_record_is_still_one_line(r: redis.Redis, spawn: Spawn) -> None:
    three_failures(r, spawn)
    for action in ("remove", "retry"):
        code, out = run(spawn, "failures", action, "999")
        assert code == 2, out
        assert out.strip() == (
            "pyresque: error: no failure record at index 999 (there are 3: 0 to 2)"
        ), out
    assert len(failures(r)) == 3


def test_resque_pool_is_pyresque_pool_with_its_own_name(spawn: Spawn) -> None:
    as_program = [
        sys.executable,
        "-c",
        "import sys; from pyresque.cli.pool import main; sys.exit(main())",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(APP_DIR), str(ROOT / "src")])}
    for args, code, line in (
        (
            ["--redis", "redis://h:6379/abc"],
            2,
            "error: --redis 'redis://h:6379/abc' is not a usable",
        ),
        (["--spawn-delay", "-5"], 2, "error: --spawn-delay -5.0: expected a number (0 or more)"),
        (
            ["--shutdown-timeout", "nan"],
            2,
            "error: --shutdown-timeout nan: expected a number of seconds",
        ),
        (["--no-such-option"], 2, "error: unrecognized arguments: --no-such-option"),
    ):
        done = subprocess.run([*as_program, *args], env=env, capture_output=True, text=True,
                              timeout=30, check=False, cwd=APP_DIR)  # fmt: skip
        assert done.returncode == code and "Traceback" not in done.stderr, done.stderr
        assert f"resque-pool: {line}" in done.stderr, done.stderr
        same, out = run(spawn, "pool", *args)
        assert same == code and f"pyresque pool: {line}" in out, out


def test_a_file_the_pool_cannot_write_is_one_line_not_redis(spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "pool.yml"
    config.write_text("oracle: 1\n")
    missing = tmp_path / "no-such-dir" / "pool.pid"
    code, out = run(spawn, "pool", "--app", "jobapp", "-c", str(config), "--pidfile", str(missing))
    assert code == 1, out
    assert f"pyresque pool: error: [Errno 2] No such file or directory: '{missing}'" in out, out
    assert "Redis" not in out and "Traceback" not in out, out
