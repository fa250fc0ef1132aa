"""The pool master's own options (``resque-pool`` / ``pyresque pool``), declared once.

The workers' settings (``--warm-child``, ``--max-jobs-per-worker``, ``--no-gc-freeze``, the
connection) are declared with :class:`~pyresque.settings.worker.WorkerSettings`; these are the
master's: where its config and app come from, the master as a process, shutdown, memory. The
parser of the pool command and the table in docs/configuration.md are made from this tuple;
``pyresque.cli.pool`` turns the parsed values into :class:`~pyresque.pool.options.PoolOptions`.
"""

from __future__ import annotations

from dataclasses import replace

from pyresque.settings.declare import COUNT, NUMBER, SECONDS, Flag


def _pool_flags(*flags: Flag) -> tuple[Flag, ...]:
    """``flags`` as options of the pool command, each filling the value its long name names (a
    switch is False until given)."""
    return tuple(
        replace(
            flag,
            commands=("pool",),
            dest=next(n for n in flag.names if n.startswith("--"))[2:].replace("-", "_"),
            default=False if flag.const is True else flag.default,
        )
        for flag in flags
    )


POOL_OPTIONS: tuple[Flag, ...] = _pool_flags(
    # where the config and the app come from
    Flag(
        ("--config", "-c"),
        "config file (default: $RESQUE_POOL_CONFIG, resque-pool.yml, config/resque-pool.yml)",
        metavar="FILE",
        env=("RESQUE_POOL_CONFIG",),
        shown="see above",
    ),
    Flag(("--appname", "-a"), "app name in titles and log lines", shown="the directory's name"),
    Flag(
        ("--environment", "-E"),
        "config section to use",
        metavar="NAME",
        env=("RACK_ENV", "RAILS_ENV", "RESQUE_ENV"),
    ),
    Flag(
        ("--app",),
        "module to preload in the master (repeatable; or $PYRESQUE_APP)",
        repeat=True,
        metavar="MODULE",
        env=("PYRESQUE_APP",),
    ),
    Flag(
        ("--allow-module",),
        "let payloads name jobs by import path under PREFIX",
        repeat=True,
        metavar="PREFIX",
    ),
    Flag(
        ("--config-loader",),
        "callable(environment) -> {queues: count}, polled about once a second",
        metavar="MODULE:CALLABLE",
    ),
    Flag(
        ("--config-loader-throttle",),
        "call the config loader at most this often",
        kind=SECONDS,
        default=0.0,
        metavar="SECONDS",
    ),
    # the master as a process
    Flag(("--pidfile", "-p"), "write the master's pid to this file", metavar="FILE"),
    Flag(("--lock",), "hold a shared lock on FILE while running", metavar="FILE"),
    Flag(("--daemon", "-d"), "run in the background", const=True),
    Flag(("--stdout", "-o"), "with --daemon: log file for stdout", metavar="FILE"),
    Flag(("--stderr", "-e"), "with --daemon: log file for stderr", metavar="FILE"),
    Flag(
        ("--spawn-delay", "-s"),
        "milliseconds between spawning missing workers",
        kind=NUMBER,
        default=0.0,
        metavar="MS",
    ),
    Flag(
        ("--single-process-group",),
        "keep workers in the master's process group",
        const=True,
        shown="own groups",
    ),
    # what TERM means and how long a shutdown may take
    Flag(
        ("--term-graceful-wait",),
        "TERM acts as QUIT: wait for every job to finish",
        const=True,
        exclusive="term",
    ),
    Flag(
        ("--term-graceful",),
        "TERM: QUIT the workers and exit at once",
        const=True,
        exclusive="term",
    ),
    Flag(
        ("--term-immediate",),
        "TERM: TERM the workers and exit at once",
        const=True,
        exclusive="term",
    ),
    Flag(
        ("--shutdown-timeout",),
        "TERM/INT: everything is gone before this (default 25, under the platforms' 30)",
        kind=SECONDS,
        default=25.0,
        metavar="SECONDS",
    ),
    Flag(
        ("--kill-timeout",),
        "kill a stopping worker after this long (default 60)",
        kind=SECONDS,
        default=60.0,
        metavar="SECONDS",
    ),
    # how workers are made and replaced
    Flag(
        ("--handle-winch",),
        "WINCH stops every worker until HUP (implied by --daemon)",
        const=True,
    ),
    Flag(
        ("--no-preload",),
        "import the app in each worker instead of once in the master",
        const=True,
        shown="preload",
    ),
    Flag(
        ("--no-scheduler",),
        "do not run the scheduler (delayed jobs, retries, recurring schedules) in this pool",
        const=True,
        shown="runs one",
    ),
    Flag(
        ("--metrics-port",),
        "serve Prometheus /metrics on this port (needs the web extra)",
        kind=COUNT,
        metavar="PORT",
        shown="off",
    ),
    # the memory limit, auto sizing and retirements
    Flag(
        ("--memory-limit",),
        "the pool's memory limit, e.g. 512M (default: $RESQUE_POOL_MEMORY_LIMIT, "
        "the cgroup's limit, else physical memory)",
        metavar="SIZE",
        env=("RESQUE_POOL_MEMORY_LIMIT",),
        shown="see `auto`",
    ),
    Flag(
        ("--memory-headroom",),
        "memory kept free under the limit (default 10% of it, at least 32M)",
        metavar="SIZE",
    ),
    Flag(("--min-workers",), "least workers per auto group", kind=COUNT, default=1, metavar="N"),
    Flag(
        ("--max-workers",),
        "most workers per auto group (default 8 per core)",
        kind=COUNT,
        metavar="N",
        shown="8 per core",
    ),
    Flag(
        ("--max-worker-memory",),
        "retire a worker (after its job) whose USS, job included, exceeds this",
        metavar="SIZE",
    ),
    Flag(
        ("--memory-interval",),
        "how often to measure USS/PSS of every process (default 5; a cheap RSS check runs "
        "every second and measures at once near the limit)",
        kind=SECONDS,
        default=5.0,
        metavar="SECONDS",
    ),
    Flag(
        ("--metrics-interval",),
        "how often to log the sample# metrics line (0: never; default 60)",
        kind=SECONDS,
        default=60.0,
        metavar="SECONDS",
    ),
    # logging and advice
    Flag(("--log-json",), "one JSON object per log line", const=True),
    Flag(
        ("--advise",),
        "load the app, measure a worker, print how many fit the memory limit",
        const=True,
    ),
    Flag(("--advise-job",), "with --advise: a sample job", default="", metavar="CLASS"),
    Flag(("--advise-args",), "its arguments (a list)", default="[]", metavar="JSON"),
    Flag(("-v", "--verbose"), "debug logging", const=True),
)
