"""What the Sentry and OpenTelemetry integrations cost: one in-process worker draining no-op jobs,
with neither integration, with each, and (with ``--baseline``) the same worker from another
source tree, to show that with both off the path between jobs is what it was.

    python bench/observability.py [--jobs N] [--repeat R] [--baseline SRC] [--direct]

``--baseline``: a ``src`` directory of another tree (``git archive main | tar -x -C /tmp/main``,
then ``--baseline /tmp/main/src``), run as "off (baseline)". Modes run interleaved, each round in
turn, so drift hits them alike; the summary shows medians of the steady rate (``throughput.py``'s:
between the first and the last job's end) and each mode's ratio to "off". Sentry runs
without tracing, then with it (a span per job), its transport serializing each envelope;
OpenTelemetry with the SDK's batching processor and an exporter that serializes each span (``benchsentry.py``,
``benchotel.py``). With fork per job (``--fork``) each job child also flushes before it exits.

``--direct``: no worker and no Redis: a process per setting loads the same apps and measures the
CPU time (the process's, its exporter threads' included, once they flushed) of
``perform_with_job_hooks`` (the job's own path in the process that runs it: worker hooks, job
hooks, the no-op job) over ``--jobs`` calls: the integrations' own cost per job, without the noise
of the round trips, and less sensitive than wall time to other work on the machine.

Prints figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from common import (
    BENCH_DIR,
    PYRESQUE_QUEUE_KEY,
    CpuAccount,
    PrivateRedis,
    Proc,
    add_cpus_argument,
    add_transport_argument,
    install_sigterm_handler,
    load_average,
    median,
    placement,
    private_redis,
    pyresque_argv,
    read_marks,
    worker_env,
)
from throughput_modes import MODES, prefill, verify


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


DIRECT = """
import sys, time
sys.path.insert(0, {bench!r})
for app in {apps!r}:
    __import__(app)
import benchjobs
from pyresque.jobs.job import Job
from pyresque.jobs.registry import default_registry
from pyresque.wire.protocol import decode_payload
from pyresque.worker.hooks import default_hooks
from pyresque.worker.runner import perform_with_job_hooks

job = Job("bench", decode_payload('{{"class":"Bench::Noop","args":[1,10]}}'),
          default_registry().resolve("Bench::Noop"))
hooks = default_hooks()
for _ in range(200):
    perform_with_job_hooks(job, hooks)
started = time.process_time()
for _ in range({n}):
    perform_with_job_hooks(job, hooks)
for flush in [getattr(m, "flush", None) for m in map(sys.modules.get, {apps!r})]:
    if flush is not None:
        flush()  # the exporter's work for these jobs, in its thread, counted too
print((time.process_time() - started) / {n} * 1e6)
"""


def run_direct(setting: Setting, n: int) -> float | None:
    """Microseconds a job's path takes in a process with ``setting``'s apps (None if it failed)."""
    env = worker_env("redis://127.0.0.1:1/0", **dict(setting.env))
    if setting.src:
        env["PYTHONPATH"] = os.pathsep.join((str(BENCH_DIR), setting.src))
    code = DIRECT.format(bench=str(BENCH_DIR), apps=["benchjobs", *setting.apps], n=n)
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=BENCH_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"  {setting.label}: failed\n{done.stderr[-2000:]}")
        return None
    return float(done.stdout.split()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", "-n", type=int, default=5000, help="no-op jobs per run (5000)")
    p.add_argument("--repeat", "-r", type=int, default=5, help="rounds; medians shown (5)")
    p.add_argument("--baseline", metavar="SRC", help="another tree's src/ to run as a mode")
    p.add_argument("--fork", action="store_true", help="fork per job instead of in-process")
    p.add_argument("--direct", action="store_true", help="time the job's path alone, no Redis")
    add_transport_argument(p)
    add_cpus_argument(p)
    args = p.parse_args(argv)
    install_sigterm_handler()
    settings = [Setting("off")]
    if args.baseline:
        settings.append(Setting("off (baseline)", src=os.path.abspath(args.baseline)))
    settings += [
        Setting("Sentry, errors", ("benchsentry",), env=(("BENCH_SENTRY_TRACES", "0"),)),
        Setting("Sentry, tracing", ("benchsentry",)),
        Setting("OpenTelemetry", ("benchotel",)),
    ]
    if args.direct:
        return direct(settings, args.jobs, args.repeat)
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


def direct(settings: list[Setting], n: int, repeat: int) -> int:
    print(f"observability --direct: {n} calls of perform_with_job_hooks a run, no Redis, CPU time")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    times: dict[str, list[float]] = {s.label: [] for s in settings}
    for rnd in range(repeat):
        print(f"round {rnd + 1}/{repeat}:")
        for setting in settings:
            us = run_direct(setting, n)
            if us is not None:
                times[setting.label].append(us)
                print(f"  {setting.label:<18} {us:8.1f} us/job")
    off = median(times["off"]) if times["off"] else None
    print("\nSUMMARY (median of rounds)")
    for setting in settings:
        got = times[setting.label]
        if got:
            extra = f"{median(got) - off:+7.1f} us/job vs off" if off is not None else ""
            print(f"  {setting.label:<18} {median(got):8.1f} us/job "
                  f"[{min(got):.1f}..{max(got):.1f}]  {extra}")  # fmt: skip
    print(f"load average {load_average():.2f} (other work on the machine skews these figures)")
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - started:.0f} s")
    sys.exit(code)
