"""What the Sentry and OpenTelemetry integrations cost: one in-process worker draining no-op jobs,
with neither integration, with each, and (with ``--baseline``) the same worker from another
source tree, to show that with both off the path between jobs is what it was.

    python bench/observability.py [--jobs N] [--repeat R] [--baseline SRC]

``--baseline``: a ``src`` directory of another tree (``git archive main | tar -x -C /tmp/main``,
then ``--baseline /tmp/main/src``), run as "off (baseline)". Modes run interleaved, each round in
turn, so drift hits them alike; the summary shows medians of the steady rate (``throughput.py``'s:
between the first and the last job's end) and each mode's ratio to "off". Sentry runs without
tracing, then with it (a span per job), its transport serializing each envelope; OpenTelemetry with the
SDK's batching processor and an exporter that serializes each span (``benchsentry.py``,
``benchotel.py``). With fork per job (``--fork``) each job child also flushes before it exits.

Prints figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass

from _common import (
    BENCH_DIR,
    PLACEMENT_HELP,
    PLACEMENTS,
    PYRESQUE_QUEUE_KEY,
    CpuAccount,
    PrivateRedis,
    Proc,
    install_sigterm_handler,
    median,
    placement,
    private_redis,
    pyresque_argv,
    read_marks,
    worker_env,
)
from throughput import MODES, prefill, verify


@dataclass(frozen=True)
class Setting:
    label: str
    apps: tuple[str, ...] = ()  # apps the worker loads besides benchjobs
    src: str | None = None  # another source tree's src directory
    env: tuple[tuple[str, str], ...] = ()


def run(server: PrivateRedis, setting: Setting, n: int, fork: bool) -> float | None:
    """One burst worker over ``n`` no-op jobs: its steady jobs/s (None, with the log, if wrong)."""
    client = server.client()
    client.flushall()
    mode = MODES["pyresque-fork" if fork else "pyresque-inproc"]
    prefill(client, mode, n, "noop")
    fd, marks_path = tempfile.mkstemp(prefix="bench-marks-")
    os.close(fd)
    extra = {"BENCH_MARKS": marks_path, **dict(setting.env)}
    if setting.src:
        extra["PYTHONPATH"] = os.pathsep.join((str(BENCH_DIR), setting.src))
    argv = pyresque_argv(in_process=not fork, burst=True)
    for app in setting.apps:
        argv += ["--app", app]
    proc = Proc(argv, worker_env(server.url, **extra), "observe", server.worker_cpus)
    try:
        code = proc.wait(60 + n * 0.05)
        problems = [] if code == 0 else [f"worker exit status {code}"]
        problems += verify(client, mode, n, proc)
        marks = read_marks(marks_path)
        if problems or 0 not in marks or n - 1 not in marks:
            print(f"  {setting.label}: {problems or 'no timing marks'}\n{proc.log_tail()}")
            return None
        return (n - 1) / (marks[n - 1][0] - marks[0][0])
    finally:
        proc.stop()
        with contextlib.suppress(OSError):
            os.unlink(marks_path)
        if client.llen(PYRESQUE_QUEUE_KEY):
            client.delete(PYRESQUE_QUEUE_KEY)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", "-n", type=int, default=5000, help="no-op jobs per run (5000)")
    p.add_argument("--repeat", "-r", type=int, default=5, help="rounds; medians shown (5)")
    p.add_argument("--baseline", metavar="SRC", help="another tree's src/ to run as a mode")
    p.add_argument("--fork", action="store_true", help="fork per job instead of in-process")
    p.add_argument("--transport", choices=("tcp", "unix"), default="tcp")
    p.add_argument("--cpus", choices=PLACEMENTS, default="split", help=PLACEMENT_HELP)
    args = p.parse_args(argv)
    install_sigterm_handler()
    settings = [Setting("off")]
    if args.baseline:
        settings.append(Setting("off (baseline)", src=os.path.abspath(args.baseline)))
    settings += [
        Setting("Sentry on", ("benchsentry",)),
        Setting("OpenTelemetry on", ("benchotel",)),
    ]
    rates: dict[str, list[float]] = {s.label: [] for s in settings}
    with private_redis(args.transport, placement(args.cpus)) as server:
        print(f"observability: one {'forking' if args.fork else 'in-process'} worker, {args.jobs} "
              f"no-op jobs a run, {server.describe()}")  # fmt: skip
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        cpu = CpuAccount()
        for rnd in range(args.repeat):
            print(f"round {rnd + 1}/{args.repeat}:")
            for setting in settings:
                rate = run(server, setting, args.jobs, args.fork)
                if rate is not None:
                    rates[setting.label].append(rate)
                    print(f"  {setting.label:<18} {rate:8.0f} jobs/s")
                sys.stdout.flush()
        off = median(rates["off"]) if rates["off"] else None
        print("\nSUMMARY (median of rounds)")
        for setting in settings:
            got = rates[setting.label]
            if not got:
                print(f"  {setting.label:<18} no good run")
                continue
            m = median(got)
            ratio = f"{m / off:6.3f} x off" if off else ""
            print(
                f"  {setting.label:<18} {m:8.0f} jobs/s [{min(got):.0f}..{max(got):.0f}]  "
                f"{1e6 / m:7.1f} us/job  {ratio}"
            )
        print(cpu.report(server))
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - started:.0f} s")
    sys.exit(code)
