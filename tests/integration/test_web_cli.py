"""``pyresque web`` refusing an open bind without auth, and ``pyresque status --watch``."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable

import pytest
import redis

from tests.helpers import Proc, wait_until
from tests.integration.web_seed import push

Spawn = Callable[..., Proc]


def test_web_refuses_a_public_bind_without_auth(spawn: Spawn) -> None:
    proc = spawn("web", "--bind", "0.0.0.0:0")
    assert proc.wait() == 2
    assert "--auth user:password" in proc.log()


def test_web_auth_from_the_environment_must_be_well_formed(spawn: Spawn) -> None:
    proc = spawn("web", "--bind", "0.0.0.0:0", env={"PYRESQUE_WEB_AUTH": "nocolon"})
    assert proc.wait() == 2
    assert "user:password" in proc.log()


@pytest.mark.parametrize("as_json", [False, True])
def test_web_logs_in_the_format_of_every_pyresque_process(spawn: Spawn, as_json: bool) -> None:
    pytest.importorskip("uvicorn", reason="the 'web' extra")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = spawn("web", "--bind", f"127.0.0.1:{port}", *(["--log-json"] if as_json else []))
    wait_until(lambda: "serving the dashboard" in proc.log(), 15)
    [line] = [line for line in proc.log().splitlines() if "serving the dashboard" in line]
    if as_json:
        record = json.loads(line)
        assert record["role"] == "pyresque-web" and record["level"] == "info", record
    else:
        assert re.match(
            r"\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d INFO pyresque-web\[.*\]\[\d+\]: ", line
        )


def depth_in_last_frame(log: str, queue: str) -> str | None:
    for line in log.rsplit("\x1b[H", 1)[-1].splitlines():
        if line.startswith(queue + " "):
            return line.split()[1]
    return None


def test_status_watch_redraws_in_place(r: redis.Redis, spawn: Spawn) -> None:
    push(r, "watched", "Echo", 1)
    proc = spawn("status", "--watch")
    wait_until(lambda: depth_in_last_frame(proc.log(), "watched") == "1", 10)
    push(r, "watched", "Echo", 2)
    wait_until(lambda: depth_in_last_frame(proc.log(), "watched") == "2", 10)
    log = proc.log()
    assert log.startswith("\x1b[?1049h")  # the alternate screen: the shell's comes back after
    assert "workers 0: 0 busy, 0 idle" in log
