"""An app that only enqueues needs no C extension of the worker's: without the ``worker`` extra
(hiredis, psutil, setproctitle), ``import pyresque`` and enqueueing work, and the commands that
run jobs say in one line what to install.

The extra's modules are made unimportable in a fresh interpreter (``sys.modules[name] = None``
makes ``import name`` raise ``ModuleNotFoundError``), as in an environment that never installed
them.
"""

from __future__ import annotations

import subprocess
import sys

import redis

from harness.redis_server import RedisServer

WITHOUT_WORKER_EXTRA = (
    "import sys\nfor name in ('psutil', 'setproctitle', 'hiredis'):\n    sys.modules[name] = None\n"
)


def run_python(code: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_WORKER_EXTRA + code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_enqueue_needs_no_worker_extra(redis_server: RedisServer, r: redis.Redis) -> None:
    done = run_python(
        "import pyresque\n"
        "pyresque.enqueue_to('mail', 'Mailer', 42)\n"
        "from pyresque.cli.main import main\n"
        "sys.exit(main(['enqueue', '--queue', 'mail', 'Mailer', '43']))\n",
        redis_server.url,
    )
    assert done.returncode == 0, done.stderr
    assert r.lrange("resque:queue:mail", 0, -1) == [
        b'{"class":"Mailer","args":[42]}',
        b'{"class":"Mailer","args":[43]}',
    ]


def test_work_and_pool_without_the_extra_say_what_to_install(redis_server: RedisServer) -> None:
    for argv, prog in ((["work", "-q", "mail"], "pyresque"), (["pool"], "pyresque pool")):
        done = run_python(
            f"from pyresque.cli.main import main\nsys.exit(main({argv!r}))\n", redis_server.url
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"{prog}: error: {argv[0]} needs "), done.stderr
        assert done.stderr.strip().endswith("pip install 'pyresque[worker]'"), done.stderr
        assert "Traceback" not in done.stderr
    done = run_python(
        "from pyresque.cli.main import pool_main\nsys.exit(pool_main([]))\n", redis_server.url
    )
    assert done.returncode == 2 and done.stderr.startswith("resque-pool: error: pool needs ")
