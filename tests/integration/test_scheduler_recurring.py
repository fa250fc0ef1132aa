"""``pyresque scheduler`` end to end: recurring cron/every schedules from a file, delayed jobs from
the command line, ``pyresque schedule list``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.helpers import APP_DIR, ROOT, Proc, wait_until

SCHEDULE = """
every_second:
  every: 1s
  class: SomeJob
  queue: fast
  args: [1, "x"]
  description: "every second"
each_second_by_cron:
  cron: "* * * * * * UTC"
  class: CronJob
  queue: cron
  args:
    k: 2.5
production:
  only_in_production:
    every: 1s
    class: ProdJob
    queue: prod
staging:
  only_in_staging:
    every: 1s
    class: StagingJob
    queue: staging
"""


def _pyresque(redis_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"REDIS_URL": redis_url, "RESQUE_NAMESPACE": "resque", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "pyresque", *args],
        env={**env, "PATH": "/usr/bin:/bin"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_recurring_schedules_fire_from_the_file(
    r: redis.Redis, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    schedule = tmp_path / "schedule.yml"
    schedule.write_text(SCHEDULE)
    env = {"RACK_ENV": "production", "RESQUE_SCHEDULER_INTERVAL": "0.2"}
    proc = spawn("scheduler", "--schedule", str(schedule), env=env, name="sched")
    wait_until(lambda: r.llen("resque:queue:fast") >= 2, timeout=10)
    wait_until(lambda: r.llen("resque:queue:cron") >= 2, timeout=10)
    wait_until(lambda: r.llen("resque:queue:prod") >= 1, timeout=10)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert r.lindex("resque:queue:fast", 0) == b'{"class":"SomeJob","args":[1,"x"]}'
    assert r.lindex("resque:queue:cron", 0) == b'{"class":"CronJob","args":[{"k":2.5}]}'
    assert not r.exists("resque:queue:staging")
    assert r.sismember("resque:queues", "fast")
    last = r.hgetall("resque:delayed:last_enqueued_at")
    assert set(last) == {b"every_second", b"each_second_by_cron", b"only_in_production"}


def test_a_restarted_scheduler_runs_a_missed_tick_once_not_a_burst(
    r: redis.Redis, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    schedule = tmp_path / "schedule.yml"
    schedule.write_text("hourly:\n  cron: '0 * * * *'\n  class: Hourly\n  queue: h\n")
    # the last run was three hours ago: three ticks were missed while no scheduler ran
    r.hset("resque:delayed:last_enqueued_at", "hourly", "2000-01-01 00:00:00 +0000")
    proc = spawn("scheduler", "--schedule", str(schedule), name="sched")
    wait_until(lambda: r.llen("resque:queue:h") >= 1, timeout=10)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert r.llen("resque:queue:h") == 1


def test_enqueue_in_from_the_command_line_reaches_its_queue(
    r: redis.Redis, spawn: Callable[..., Proc], redis_server: object
) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    done = _pyresque(url, "enqueue", "-q", "later", "--in", "1", "Later", "7", cwd=APP_DIR)
    assert done.returncode == 0, done.stderr
    assert r.zcard("resque:delayed_queue_schedule") == 1
    item = r.lindex(f"resque:delayed:{int(r.zrange('resque:delayed_queue_schedule', 0, 0)[0])}", 0)
    assert item == b'{"class":"Later","args":[7],"queue":"later"}'
    proc = spawn("scheduler", name="sched")
    wait_until(lambda: r.llen("resque:queue:later") == 1, timeout=10)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert r.lindex("resque:queue:later", 0) == b'{"class":"Later","args":[7]}'
    assert r.zcard("resque:delayed_queue_schedule") == 0


def test_schedule_list_shows_file_and_dynamic_entries(
    r: redis.Redis, tmp_path: Path, redis_server: object
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "resque-schedule.yml").write_text(SCHEDULE)
    # a dynamic schedule as Ruby's set_schedule(..., persist: true) writes it
    r.hset(
        "resque:persistent_schedules",
        "dyn",
        '{"class":"SomeJob","every":"3s","queue":"dynq","args":{"h":1}}',
    )
    url = redis_server.url  # type: ignore[attr-defined]
    done = _pyresque(url, "schedule", "list", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert set(rows) == {"every_second", "each_second_by_cron", "dyn"}
    assert rows["dyn"]["source"] == "dynamic"
    assert rows["dyn"]["args"] == [{"h": 1}]
    assert rows["each_second_by_cron"]["when"] == "cron * * * * * * UTC"


def test_hup_reloads_the_schedule_file(
    r: redis.Redis, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    schedule = tmp_path / "schedule.yml"
    schedule.write_text("one:\n  every: 1s\n  class: One\n  queue: one\n")
    proc = spawn("scheduler", "--schedule", str(schedule), name="sched")
    wait_until(lambda: r.llen("resque:queue:one") >= 1, timeout=10)
    schedule.write_text("two:\n  every: 1s\n  class: Two\n  queue: two\n")
    proc.signal(signal.SIGHUP)
    wait_until(lambda: r.llen("resque:queue:two") >= 1, timeout=10)
    settled = r.llen("resque:queue:one")
    wait_until(lambda: r.llen("resque:queue:two") >= 2, timeout=10)
    assert r.llen("resque:queue:one") == settled  # "one" is gone from the schedule
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


def test_enqueue_in_refuses_a_negative_delay_and_a_past_at_says_now(
    r: redis.Redis, redis_server: object
) -> None:
    """``enqueue --in -5`` printed "delayed to … at <past time>" and queued at once (issue 25)."""
    url = redis_server.url  # type: ignore[attr-defined]
    done = _pyresque(url, "enqueue", "-q", "later", "--in", "-5", "Later", "7", cwd=APP_DIR)
    assert done.returncode == 2 and "0 or more" in done.stderr, done.stderr
    assert r.llen("resque:queue:later") == 0 and r.zcard("resque:delayed_queue_schedule") == 0
    done = _pyresque(url, "enqueue", "-q", "later", "--at", "1000000000", "Later", "7", cwd=APP_DIR)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("enqueued to later now (") and "not in the future" in done.stdout
    assert r.llen("resque:queue:later") == 1
    done = _pyresque(url, "enqueue", "-q", "later", "--in", "60", "Later", "8", cwd=APP_DIR)
    [second] = [int(m) for m in r.zrange("resque:delayed_queue_schedule", 0, -1)]
    assert "delayed to later until " in done.stdout and f"(epoch {second})" in done.stdout


def test_schedule_list_reads_when_the_running_scheduler_fires(
    r: redis.Redis, spawn: Callable[..., Proc], tmp_path: Path, redis_server: object
) -> None:
    """An ``every`` entry's next run was recomputed from now on each call, so it moved; now the
    master scheduler publishes its times, and ``list`` says when it can only estimate."""
    schedule = tmp_path / "schedule.yml"
    schedule.write_text("hourly:\n  every: 1h\n  class: Echo\n")
    proc = spawn("scheduler", "--schedule", str(schedule), name="sched")
    wait_until(lambda: r.exists("resque:schedule:next"), timeout=10)
    published = float(r.hget("resque:schedule:next", "hourly") or 0)
    url = redis_server.url  # type: ignore[attr-defined]
    args = ("schedule", "list", "--json", "--schedule", str(schedule), "--app", "jobapp")
    done = _pyresque(url, *args, cwd=APP_DIR)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    expected = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(published))
    assert (row["next_run"], row["next_run_from"]) == (expected, "scheduler")
    assert row["queue"] == "oracle"  # the registered job's queue, not "(job queue)"
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    r.delete("resque:schedule:next")  # as when it expires with no scheduler running
    done = _pyresque(url, *args[:-2], cwd=APP_DIR)
    [row] = json.loads(done.stdout)
    assert row["next_run_from"] == "estimate" and row["queue"] is None
    done = _pyresque(url, "schedule", "list", "--schedule", str(schedule), cwd=APP_DIR)
    assert "no scheduler running: estimated" in done.stdout, done.stdout
