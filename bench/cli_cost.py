"""What a CLI library would cost: an idle worker's private memory and ``pyresque --help``'s start-up.

The command line's module is imported by every ``pyresque work`` process, so a CLI framework is
imported by every worker a pool runs for days. Measured from outside:

- memory: an idle ``pyresque work`` on a private redis-server, once with an app module that imports
  nothing and once with one that imports ``click`` (what building the commands on click would add);
  USS (``Private_Clean + Private_Dirty``) and PSS from ``/proc/<pid>/smaps_rollup``, medians of
  several runs, alternating;
- start-up: the median wall time of ``python -m pyresque --help``, and of a bare interpreter with
  and without ``import click``, so the difference is what click adds to every start.

Run from the repository root with the virtualenv active::

    python bench/cli_cost.py            # 5 rounds of each
    python bench/cli_cost.py --rounds 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
PROBES = {"argparse (as shipped)": "", "argparse + import click": "import click\n"}


def smaps(pid: int) -> tuple[int, int]:
    """(USS, PSS) of one process in bytes."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0]) * 1024
    return fields["Private_Clean"] + fields["Private_Dirty"], fields["Pss"]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"cli_cost: timed out waiting for {what}")
        time.sleep(0.05)


def idle_worker(tmp: Path, url: str, client: redis.Redis, probe: str) -> tuple[int, int]:
    """USS and PSS of one idle worker whose app holds ``probe``, once it has settled."""
    (tmp / "probeapp.py").write_text(probe)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT / "src")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyresque", "work", "-q", "idle", "--app", "probeapp"],
        env={**env, "REDIS_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: client.scard("resque:workers") == 1, 20, "the worker to register")
        time.sleep(2.0)  # past the start-up's allocations: the idle state, as a pool holds it
        return smaps(proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)
        wait_for(lambda: client.scard("resque:workers") == 0, 20, "the worker to leave")


def wall_time(argv: list[str], rounds: int) -> float:
    """Median seconds of ``argv`` run to completion."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        sock = tmp / "redis.sock"
        server = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for(sock.exists, 10, "redis-server")
            url = f"unix://{sock}?db=0"
            client = redis.Redis.from_url(url)
            samples: dict[str, list[tuple[int, int]]] = {k: [] for k in PROBES}
            for _ in range(args.rounds):
                for label, probe in PROBES.items():
                    samples[label].append(idle_worker(tmp, url, client, probe))
        finally:
            server.terminate()
            server.wait(10)
    print(f"idle `pyresque work`, medians of {args.rounds} runs:")
    for label, got in samples.items():
        uss = statistics.median(u for u, _ in got) / 1048576
        pss = statistics.median(p for _, p in got) / 1048576
        print(f"  {label:<26} USS {uss:6.2f} MB  PSS {pss:6.2f} MB")
    bare = wall_time([sys.executable, "-c", "pass"], args.rounds * 3)
    click = wall_time([sys.executable, "-c", "import click"], args.rounds * 3)
    helped = wall_time([sys.executable, "-m", "pyresque", "--help"], args.rounds * 3)
    print(f"start-up, medians of {args.rounds * 3} runs:")
    print(f"  python -m pyresque --help   {helped * 1000:6.1f} ms")
    print(f"  import click adds           {(click - bare) * 1000:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
