"""The command line never changes what it was asked quietly (issue 25): broken JSON, queue names no
worker can read, argument counts a job cannot take, and a namespace with nothing in it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis

from harness.redis_server import RedisServer
from tests.helpers import APP_DIR, ROOT


def pyresque(
    redis_server: RedisServer, *args: str, namespace: str = "resque"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_server.url, "RESQUE_NAMESPACE": namespace}
    env["PYTHONPATH"] = os.pathsep.join([str(APP_DIR), str(ROOT / "src")])
    env.pop("PYRESQUE_APP", None)
    return subprocess.run(
        [sys.executable, "-m", "pyresque", *args],
        env=env,
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("arg", ["{bad", "[1,", '"unterminated', ' {"a": NaN}'])
def test_broken_json_is_refused_not_sent_as_a_string(
    r: redis.Redis, redis_server: RedisServer, arg: str
) -> None:
    done = pyresque(redis_server, "enqueue", "-q", "mail", "Echo", arg)
    assert done.returncode == 2, done.stderr
    assert "starts like JSON but is not JSON" in done.stderr
    assert r.llen("resque:queue:mail") == 0


def test_plain_words_are_still_strings(r: redis.Redis, redis_server: RedisServer) -> None:
    done = pyresque(redis_server, "enqueue", "-q", "mail", "Echo", "plain", "2026-01-01", "NaN")
    assert done.returncode == 0, done.stderr
    assert (
        r.lindex("resque:queue:mail", 0) == b'{"class":"Echo","args":["plain","2026-01-01","NaN"]}'
    )


@pytest.mark.parametrize("queue", ["*", "a,b", "!mail", "ma il", "mail*"])
@pytest.mark.parametrize("later", [[], ["--in", "60"]], ids=["now", "later"])
def test_a_queue_no_worker_could_read_is_refused(
    r: redis.Redis, redis_server: RedisServer, queue: str, later: list[str]
) -> None:
    done = pyresque(redis_server, "enqueue", "--queue", queue, *later, "Echo", "1")
    assert done.returncode == 2, done.stderr
    assert "queue name" in done.stderr
    assert r.dbsize() == 0


def test_an_argument_count_the_job_cannot_take_is_refused(
    r: redis.Redis, redis_server: RedisServer
) -> None:
    done = pyresque(redis_server, "enqueue", "--app", "cliapp", "Welcome", "1", '"t"', "3")
    assert done.returncode == 2, done.stderr
    assert "Welcome(user_id: 'int', template: 'str' = 'default')" in done.stderr
    assert "too many positional arguments" in done.stderr
    done = pyresque(
        redis_server, "enqueue", "--app", "cliapp", "-q", "mail", "--in", "5", "Welcome"
    )
    assert done.returncode == 2 and "missing a required argument" in done.stderr, done.stderr
    assert r.dbsize() == 0
    done = pyresque(redis_server, "enqueue", "--app", "cliapp", "Welcome", "7")
    assert done.returncode == 0, done.stderr
    assert r.lindex("resque:queue:mail", 0) == b'{"class":"Welcome","args":[7]}'


def test_status_of_an_empty_namespace_says_so_and_lists_the_others(
    r: redis.Redis, redis_server: RedisServer
) -> None:
    r.sadd("resque:queues", "mail")
    r.sadd("shop:workers", "h:1:q")
    done = pyresque(redis_server, "status", namespace="nc-typo")
    assert done.returncode == 0, done.stderr
    assert (
        "namespace 'nc-typo' is empty; namespaces with Resque keys here: resque, shop"
        in done.stderr
    )
    done = pyresque(redis_server, "status", "--json", namespace="nc-typo")
    assert "is empty" in done.stderr and done.stdout.startswith("{")
    done = pyresque(redis_server, "status", namespace="resque")
    assert "empty" not in done.stderr, done.stderr
