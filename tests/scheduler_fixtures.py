"""What Ruby resque-scheduler 5.0.0 wrote to Redis (``tests/fixtures/resque-scheduler-5.0.0``).

The directory is a copy of ``shared/fixtures/resque-scheduler-5.0.0``: ``observed.json`` holds, per
scenario, each Ruby call with the Redis commands it sent, and key dumps (every key as
``{type, ttl, value}``; sets sorted, zsets ``[member, score]``, hashes in HGETALL order). These
helpers replay Ruby's commands on our server and dump our keys in the same shape, so a golden
test compares like with like.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import redis

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "resque-scheduler-5.0.0"


@cache
def observed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURE_DIR / "observed.json").read_text("utf-8"))
    return data


def scenario(name: str) -> dict[str, Any]:
    found: dict[str, Any] = observed()[name]
    return found


def call(scenario_name: str, source: str) -> dict[str, Any]:
    """The one call of a scenario whose Ruby source text is ``source``."""
    matches = [c for c in scenario(scenario_name)["calls"] if c["call"] == source]
    assert len(matches) == 1, f"{len(matches)} calls {source!r} in {scenario_name}"
    return matches[0]


def replay(r: redis.Redis, calls: list[dict[str, Any]]) -> None:
    """Send each call's Redis commands, as Ruby sent them (MULTI/EXEC/WATCH skipped)."""
    for c in calls:
        for command in c.get("redis", []):
            if command[0] not in ("MULTI", "EXEC", "WATCH"):
                r.execute_command(*command)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _score(score: float) -> str:
    return str(int(score)) if score == int(score) else repr(score)


def dump_keys(r: redis.Redis, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every key as the fixture dumps it (TTLs of -1 kept; other TTLs as they are)."""
    out: dict[str, Any] = {}
    for raw in sorted(r.keys("*")):
        key = _text(raw)
        if key in skip:
            continue
        kind = _text(r.type(key))
        value: Any
        if kind == "string":
            value = _text(r.get(key))
        elif kind == "list":
            value = [_text(v) for v in r.lrange(key, 0, -1)]
        elif kind == "set":
            value = sorted(_text(v) for v in r.smembers(key))
        elif kind == "zset":
            value = [[_text(m), _score(s)] for m, s in r.zrange(key, 0, -1, withscores=True)]
        else:
            value = {_text(k): _text(v) for k, v in r.hgetall(key).items()}
        out[key] = {"type": kind, "ttl": int(r.ttl(key)), "value": value}
    return out


def lock_script_shas(scenario_name: str) -> set[str]:
    """The SHA1s of the scripts Ruby's scheduler ran (EVALSHA in its MONITOR lines)."""
    shas: set[str] = set()
    for phase in scenario(scenario_name)["monitor_timeline"]:
        for line in phase.get("monitor", []) + phase.get("monitor_head", []):
            shas.update(re.findall(r'"evalsha" "([0-9a-f]{40})"', line))
    return shas


def ruby_lock_scripts(scenario_name: str = "s3_scheduler_moves_due_items") -> list[str]:
    """The Lua texts Ruby's scheduler loaded (SCRIPT LOAD in its MONITOR lines): acquire, then
    refresh."""
    texts: list[str] = []
    for phase in scenario(scenario_name)["monitor_timeline"]:
        for line in phase.get("monitor", []) + phase.get("monitor_head", []):
            match = re.match(r'^sched\w*: "script" "load" (".*")$', line)
            if match and (text := json.loads(match.group(1))) not in texts:
                texts.append(text)
    return texts
