"""Memory limits from cgroup files and /proc, and the pure sizing rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyresque.errors import ConfigError
from pyresque.pool.governor import MemoryGovernor, WorkerView
from pyresque.pool.memory import (
    MB,
    MemoryLimit,
    OomWatch,
    PoolMemory,
    Usage,
    WorkerMemory,
    cgroup_limit,
    oom_kill_count,
    parse_size,
    read_usage,
    read_worker_usage,
)
from pyresque.pool.sizing import (
    FootprintTracker,
    Retirements,
    SizingPolicy,
    auto_counts,
    default_headroom,
    retirements,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512M", 512 * MB),
        ("512MB", 512 * MB),
        ("512MiB", 512 * MB),
        ("1.5G", 1536 * MB),
        ("1048576", MB),
        ("64k", 65536),
        (" 2g ", 2048 * MB),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-1M", "12X", "M"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="expected a size such as 512M"):
        parse_size(text, "--memory-limit")


def mountinfo(v2: Path | None, v1: Path | None) -> str:
    lines = []
    if v2:
        lines.append(f"30 23 0:26 / {v2} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate")
    if v1:
        lines.append(f"31 23 0:27 / {v1} rw,nosuid - cgroup cgroup rw,memory")
    lines.append("32 23 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu")
    return "\n".join(lines) + "\n"


def test_cgroup_v2_takes_the_tightest_limit_on_the_path(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "a" / "memory.max").write_text(f"{300 * MB}\n")
    (tmp_path / "a" / "b" / "memory.max").write_text("max\n")
    limit = cgroup_limit("0::/a/b\n", mountinfo(tmp_path, None))
    assert limit is not None and limit.bytes == 300 * MB
    assert limit.source.startswith("cgroup v2 memory.max")


def test_cgroup_v2_unlimited_is_none(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "memory.max").write_text("max\n")
    assert cgroup_limit("0::/a\n", mountinfo(tmp_path, None)) is None


def test_cgroup_v1_limit_and_its_unlimited_value(tmp_path: Path) -> None:
    (tmp_path / "job").mkdir()
    (tmp_path / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (tmp_path / "job" / "memory.limit_in_bytes").write_text(f"{512 * MB}\n")
    proc = "4:memory:/job\n0::/\n"
    limit = cgroup_limit(proc, mountinfo(None, tmp_path))
    assert limit is not None and limit.bytes == 512 * MB
    assert "cgroup v1 memory.limit_in_bytes" in limit.source
    (tmp_path / "job" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_limit(proc, mountinfo(None, tmp_path)) is None


def test_no_cgroup_mounts_means_no_cgroup_limit() -> None:
    assert cgroup_limit("0::/\n", "") is None


def test_read_usage_of_this_process() -> None:
    usage = read_usage(os.getpid())
    assert usage is not None
    assert 0 < usage.uss <= usage.pss <= usage.rss
    assert read_usage(2**22 + 12345) is None


def worker(pid: int, uss: int, job: int = 0, pss: int | None = None) -> WorkerMemory:
    own = Usage(uss * MB, (pss if pss is not None else uss) * MB, uss * MB)
    return WorkerMemory(pid, "q", own, Usage(job * MB, job * MB, job * MB))


def sample(master: int, *workers: WorkerMemory) -> PoolMemory:
    return PoolMemory(Usage(master * MB, master * MB, master * MB), workers)


def policy(limit: int = 512, headroom: int = 52, **kw: int) -> SizingPolicy:
    return SizingPolicy(limit * MB, headroom * MB, **kw)


def test_default_headroom() -> None:
    assert default_headroom(512 * MB) == 512 * MB // 10
    assert default_headroom(100 * MB) == 32 * MB


@pytest.mark.parametrize(
    ("current", "used", "footprint", "measured", "kw", "expected"),
    [
        ({"*": 0}, 30, 20, False, {}, {"*": 1}),  # starts at min_workers before measuring
        ({"*": 1}, 50, 20, True, {}, {"*": 2}),  # at most doubles per decision
        ({"*": 8}, 200, 20, True, {}, {"*": 16}),  # room 260 MB / 20 = 13 more, capped at 2x
        ({"*": 16}, 400, 20, True, {}, {"*": 19}),  # room 60 MB: 3 more
        ({"*": 16}, 500, 20, True, {}, {"*": 14}),  # 40 MB over: 2 fewer
        ({"*": 4}, 100, 20, True, {"max_workers": 5}, {"*": 5}),
        ({"*": 2}, 600, 20, True, {"min_workers": 2}, {"*": 2}),  # never below min_workers
    ],
)
def test_auto_counts(
    current: dict[str, int],
    used: int,
    footprint: int,
    measured: bool,
    kw: dict[str, int],
    expected: dict[str, int],
) -> None:
    got = auto_counts(
        list(current), current, used=used * MB, footprint=footprint * MB,
        policy=policy(**kw), measured=measured,
    )  # fmt: skip
    assert got == expected


def test_several_auto_groups_share_the_room_in_file_order() -> None:
    got = auto_counts(
        ["a", "b", "c"], {"a": 4, "b": 4, "c": 4}, used=300 * MB, footprint=20 * MB,
        policy=policy(), measured=True,
    )  # fmt: skip
    # room 160 MB = 8 more, 20 in all: 7, 7, 6
    assert got == {"a": 7, "b": 7, "c": 6}


def test_footprint_tracker_keeps_the_recent_peak_with_a_floor() -> None:
    tracker = FootprintTracker(window=2, floor=20 * MB)
    assert not tracker.measured and tracker.footprint == 20 * MB
    tracker.observe(sample(30, worker(1, 50), worker(2, 10)))
    assert tracker.footprint == 50 * MB
    tracker.observe(sample(30, worker(1, 30)))
    tracker.observe(sample(30, worker(1, 25)))
    assert tracker.footprint == 30 * MB  # the 50 MB peak has left the window


def test_no_retirement_below_the_soft_limit() -> None:
    got = retirements(sample(30, worker(1, 100), worker(2, 200)), policy(), set(), None)
    assert got.stop == () and got.kill_jobs == ()


def test_max_worker_memory_retires_each_worker_over_it() -> None:
    got = retirements(
        sample(30, worker(1, 100, job=30), worker(2, 50), worker(3, 129)),
        policy(limit=4096, headroom=100), set(), 128 * MB,
    )  # fmt: skip
    assert got.stop == (1, 3)


def test_pressure_retires_the_largest_running_worker_once() -> None:
    s = sample(40, worker(1, 150), worker(2, 200), worker(3, 80))  # 470 > 512 - 52
    got = retirements(s, policy(), set(), None)
    assert got.stop == (2,) and got.kill_jobs == ()
    assert retirements(s, policy(), {2}, None, retiring_for_memory=True).stop == ()
    assert retirements(s, policy(), {2}, None).stop == (1,)  # stopping for another reason


def test_near_the_hard_limit_the_largest_job_is_killed() -> None:
    s = sample(40, worker(1, 150, job=100), worker(2, 200))  # 490 > 512 - 26
    got = retirements(s, policy(), set(), None)
    assert got.kill_jobs == (1,)
    assert any("killing the job" in r for r in got.reasons)


def test_read_worker_usage_sums_its_job_children() -> None:
    usage = read_worker_usage(os.getpid())
    assert usage is not None
    assert usage.total == usage.worker + usage.job
    assert read_worker_usage(2**22 + 12345) is None


def test_the_metrics_line_keeps_one_token_per_queue_whatever_its_name() -> None:
    governor = MemoryGovernor(
        MemoryLimit(512 * MB, "test"),
        policy(),
        app_name="app",
        queue_depths=lambda: {"my queue": 3, "a=b": 1, "mail": 2},
    )
    line = governor.metrics_line(sample(10, worker(7, 30)), 1)
    pairs = dict(token.split("=") for token in line.split(" "))
    assert pairs["sample#queue.my%20queue"] == "3"
    assert pairs["sample#queue.a%3Db"] == "1"
    assert pairs["sample#queue.mail"] == "2"


def test_oom_kill_count_from_cgroup_v2_and_v1(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n")
    assert oom_kill_count("0::/a\n", mountinfo(tmp_path, None)) == 2
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n"
    )
    assert oom_kill_count("4:memory:/job\n", mountinfo(None, tmp_path)) == 5
    assert oom_kill_count("0::/gone\n", mountinfo(tmp_path, None)) is None
    assert oom_kill_count("", "") is None


def test_oom_watch_explains_one_sigkill_per_oom_kill() -> None:
    counts = iter([4, 4, 6, 6, 6, None])
    watch = OomWatch(lambda: next(counts))  # 4 at the start
    assert not watch.claim()  # still 4: a SIGKILL from someone else
    assert watch.claim()  # 6: two OOM kills, this death is one
    assert watch.claim()  # ... and this one the other
    assert not watch.claim()  # none left
    assert not watch.claim()  # no counter readable: never a guess


def test_the_governor_samples_on_time_sizes_auto_and_names_workers_to_retire() -> None:
    gb = 1024 * MB
    governor = MemoryGovernor(
        MemoryLimit(64 * gb, "test"),
        SizingPolicy(64 * gb, gb, min_workers=1, max_workers=4),
        interval=5.0,
        max_worker_memory=1 * MB,  # this test process is far bigger: it must retire
        metrics_interval=0,
    )
    me = [WorkerView(os.getpid(), "q", stopping=False)]
    first = governor.tick(0.0, me, ["q"])
    assert first.stop == (os.getpid(),)
    assert governor.target("q") == 2  # one running, measured: at most doubled
    assert governor.tick(1.0, me, ["q"]) == Retirements()  # only the cheap RSS check is due
    assert governor.next_at() == 2.0
    assert governor.tick(5.0, me, ["q"]).stop == (os.getpid(),)  # the next full sample
