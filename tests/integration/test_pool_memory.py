"""Memory-aware pools: the limit, auto sizing, recycling, pressure, metrics and advice."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from pyresque.pool.memory import MB, measure_pool
from tests.cgroups import MemoryCgroup, create_memory_cgroup, remove_cgroup
from tests.helpers import Proc, children_of, wait_until
from tests.integration.test_pool import group_counts, workers_of
from tests.integration.test_worker import push, strings

Spawn = Callable[..., Proc]


@pytest.fixture
def cgroup_factory() -> Iterator[Callable[[int], MemoryCgroup | None]]:
    made: list[MemoryCgroup] = []

    def make(limit: int) -> MemoryCgroup | None:
        cgroup = create_memory_cgroup(limit, f"pyresque-test-{os.getpid()}-{len(made)}")
        if cgroup is not None:
            made.append(cgroup)
        return cgroup

    yield make
    for cgroup in made:
        remove_cgroup(cgroup)


def pool(spawn: Spawn, tmp_path: Path, config: str, *extra: str, **kw: object) -> Proc:
    path = tmp_path / "pool.yml"
    path.write_text(config)
    return spawn("pool", "--config", str(path), "--app", "jobapp", *extra, **kw)  # type: ignore[arg-type]


def test_limit_comes_from_a_real_cgroup(
    spawn: Spawn, tmp_path: Path, cgroup_factory: Callable[[int], MemoryCgroup | None]
) -> None:
    cgroup = cgroup_factory(300 * MB)
    if cgroup is None:
        pytest.skip("this machine does not let the tests create a memory cgroup")
    proc = pool(spawn, tmp_path, "", "--advise", preexec=cgroup.join)
    assert proc.wait(20) == 0, proc.log()
    assert re.search(rf"memory limit: 300\.0MB \(cgroup v{cgroup.version} memory\.", proc.log()), (
        proc.log()
    )


def test_limit_override_by_option_and_environment(spawn: Spawn, tmp_path: Path) -> None:
    proc = pool(spawn, tmp_path, "", "--advise", "--memory-limit", "512M")
    assert proc.wait(20) == 0
    assert "memory limit: 512.0MB (--memory-limit)" in proc.log()
    proc = pool(spawn, tmp_path, "", "--advise", env={"RESQUE_POOL_MEMORY_LIMIT": "1.5G"})
    assert proc.wait(20) == 0
    assert "memory limit: 1536.0MB (RESQUE_POOL_MEMORY_LIMIT)" in proc.log()
    proc = pool(spawn, tmp_path, "", "--advise", "--memory-limit", "lots")
    assert proc.wait(20) == 2
    assert "--memory-limit 'lots': expected a size such as 512M" in proc.log()


def test_advise_measures_a_worker_running_a_sample_job(spawn: Spawn, tmp_path: Path) -> None:
    proc = pool(
        spawn, tmp_path, "", "--advise", "--memory-limit", "1G",
        "--advise-job", "Leak", "--advise-args", '[30, "advice"]',
    )  # fmt: skip
    assert proc.wait(30) == 0, proc.log()
    worker = re.search(
        r"one worker:\s+([\d.]+)MB USS at its peak, running Leak \(3 runs\)", proc.log()
    )
    assert worker and float(worker.group(1)) >= 90  # three runs keep 3 x 30 MB
    fits = re.search(r"fit:\s+(\d+) workers", proc.log())
    assert fits and 5 <= int(fits.group(1)) <= 10


def test_auto_grows_to_what_fits(r: redis.Redis, spawn: Spawn, tmp_path: Path) -> None:
    roomy = pool(spawn, tmp_path, "'*': auto\n", "--memory-limit", "4G", "--max-workers", "3",
                 "--memory-interval", "0.1")  # fmt: skip
    wait_until(lambda: group_counts(roomy) == {"*": 3}, 15)
    assert "memory: auto [*] 0 -> 1" in roomy.log()  # it started small
    roomy.signal(15)
    assert roomy.wait(15) == 0
    # 90 MB: 32 MB headroom, the master's own ~25 MB; the 20 MB floor per worker fits one
    tight = pool(spawn, tmp_path, "'*': auto\n", "--memory-limit", "90M", "--max-workers", "8",
                 "--memory-interval", "0.1")  # fmt: skip
    wait_until(lambda: "memory: auto" in tight.log(), 10)
    wait_until(lambda: group_counts(tight).get("*", 0) >= 1, 10)
    for _ in range(20):  # sample the settled pool for two seconds
        sample = measure_pool(tight.pid, [(p, "*") for p in workers_of(tight)])
        assert len(workers_of(tight)) <= 3  # far below the 8 allowed: memory binds
        assert sample.total_pss <= 90 * MB
        time.sleep(0.1)


def test_metrics_line_and_status_memory(r: redis.Redis, spawn: Spawn, tmp_path: Path) -> None:
    push(r, "waiting", {"class": "Echo", "args": [1]})
    master = pool(spawn, tmp_path, "oracle: 2\n", "--metrics-interval", "0.3",
                  "--memory-limit", "1G")  # fmt: skip
    wait_until(lambda: "sample#workers=2" in master.log(), 10)
    line = next(x for x in master.log().splitlines() if "sample#workers=2" in x)
    assert re.search(r"source=\S+ sample#memory_total=[\d.]+MB sample#memory_limit=1024\.0MB", line)
    assert "sample#queue.waiting=1" in line
    assert len(re.findall(r"sample#worker\.\d+\.uss=[\d.]+MB", line)) == 2
    status = spawn("status", "--json")
    assert status.wait(20) == 0
    data = json.loads(status.log())
    assert len(data["workers"]) == 2
    assert all(w["memory"]["uss"] > MB for w in data["workers"])


def test_max_jobs_per_worker_replaces_the_worker(
    r: redis.Redis, spawn: Spawn, tmp_path: Path
) -> None:
    for i in range(7):
        push(r, "oracle", {"class": "Echo", "args": [i]})
    master = pool(spawn, tmp_path, "oracle: 1\n", "--max-jobs-per-worker", "3",
                  env={"FORK_PER_JOB": "false"})  # fmt: skip
    wait_until(lambda: len(strings(r, "test:done")) == 7, 15)
    pids = strings(r, "test:pids")
    assert [pids.count(p) for p in dict.fromkeys(pids)] == [3, 3, 1]
    assert "backoff" not in master.log()


def test_max_worker_memory_recycles_a_leaky_worker(
    r: redis.Redis, spawn: Spawn, tmp_path: Path
) -> None:
    for i in range(10):
        push(r, "oracle", {"class": "Leak", "args": [10, f"m{i}"]})
    master = pool(spawn, tmp_path, "oracle: 1\n", "--max-worker-memory", "45M",
                  "--memory-interval", "0.05", "--memory-limit", "4G",
                  env={"FORK_PER_JOB": "false"})  # fmt: skip
    wait_until(lambda: len(strings(r, "test:done")) == 10, 20)
    assert "> --max-worker-memory" in master.log()
    assert len(set(strings(r, "test:pids"))) >= 2


def test_leaky_jobs_near_the_limit_never_wake_the_oom_killer(
    r: redis.Redis,
    spawn: Spawn,
    tmp_path: Path,
    cgroup_factory: Callable[[int], MemoryCgroup | None],
) -> None:
    limit = 220 * MB
    cgroup = cgroup_factory(limit)
    if cgroup is None:
        pytest.skip("this machine does not let the tests create a memory cgroup")
    jobs = 40
    for i in range(jobs):
        push(r, "oracle", {"class": "Leak", "args": [8, f"j{i}"]})
    master = pool(spawn, tmp_path, "oracle: 2\n", "--memory-interval", "0.05",
                  env={"FORK_PER_JOB": "false"}, preexec=cgroup.join)  # fmt: skip
    wait_until(lambda: "memory limit 220.0MB (cgroup" in master.log(), 10)
    # 40 x 8 MB = 320 MB leaked in all: far past the limit unless workers are retired in time
    wait_until(lambda: len(set(strings(r, "test:done"))) == jobs, 60)
    assert cgroup.oom_kills() == 0, master.log()
    assert "retiring the largest worker" in master.log()
    assert master.popen.poll() is None
    assert all(p in children_of(master.pid) for p in workers_of(master))


def test_advise_applies_the_max_workers_cap_and_says_so(spawn: Spawn, tmp_path: Path) -> None:
    proc = pool(spawn, tmp_path, "", "--advise", "--memory-limit", "64G", "--max-workers", "4")
    assert proc.wait(30) == 0, proc.log()
    assert re.search(r"fit:\s+4 workers", proc.log()), proc.log()
    assert "decided by:   the --max-workers cap 4" in proc.log()


def test_advise_with_a_job_it_cannot_run_says_why_instead_of_advising(
    spawn: Spawn, tmp_path: Path
) -> None:
    proc = pool(spawn, tmp_path, "", "--advise", "--advise-job", "NoSuchJob")
    assert proc.wait(30) == 2, proc.log()
    assert "no job named 'NoSuchJob' is registered" in proc.log()
    assert "the sample worker failed" in proc.log()
    assert "fit:" not in proc.log()
