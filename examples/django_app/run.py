"""Run the example shop end to end with one command::

    pip install -e '.[django,test]'                 # once, from the repository root
    python examples/django_app/run.py               # SQLite in a temporary directory
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python examples/django_app/run.py

It creates the tables (``manage.py migrate``), starts the worker pool exactly as the Procfile does
(``manage.py resque_pool``, two workers from ``config/resque-pool.yml``), places five orders through
the view (``POST /orders/``, Django's test client: no web server needed), waits until the jobs have
confirmed all of them, prints which worker process confirmed each, and stops the pool with TERM.
Redis is found or started as in ``examples/quickstart.py`` (a namespace of its own, removed at the
end); on PostgreSQL the example's table is dropped at the end (``migrate orders zero``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for quickstart's Redis helpers
sys.path.insert(0, str(HERE))

import redis  # noqa: E402
from quickstart import EmbeddedRedis, QuickstartError, answering, delete_namespace, say, wait_until  # noqa: E402

ORDERS = 5


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=HERE, env=env, check=True)


def place_orders_and_wait(env: dict[str, str]) -> None:
    """In this process: Django set up against the same database and Redis as the pool."""
    os.environ.update(env)
    import django

    django.setup()
    from django.test import Client
    from orders.models import Order

    client = Client()
    ids = []
    for i in range(ORDERS):
        response = client.post("/orders/", {"email": f"buyer{i}@example.com"}, "application/json")
        ids.append(response.json()["id"])
        say(f"==> POST /orders/ -> {response.status_code} {response.json()}")

    def confirmed() -> bool:
        return Order.objects.filter(pk__in=ids, status="confirmed").count() == len(ids)

    wait_until(confirmed, 20, f"{len(ids)} orders to be confirmed")
    for order in Order.objects.filter(pk__in=ids).order_by("pk"):
        say(f"==> order {order.pk} {order.status} in process {order.confirmed_by}")


def run(env: dict[str, str]) -> None:
    manage("migrate", "--no-input", "-v", "0", env=env)
    say("==> starting the pool: python manage.py resque_pool")
    pool = subprocess.Popen(
        [sys.executable, "manage.py", "resque_pool"], cwd=HERE, env=env, start_new_session=True
    )
    try:
        place_orders_and_wait(env)
    finally:
        say(f"==> sending TERM to the pool master ({pool.pid})")
        pool.send_signal(signal.SIGTERM)
        try:
            pool.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(pool.pid, signal.SIGKILL)
            raise QuickstartError("the pool did not stop within 30 s of TERM") from None
        if env["DATABASE_URL"].startswith("postgres"):
            from django.db import connections

            connections.close_all()
            manage("migrate", "orders", "zero", "-v", "0", env=env)


def main() -> int:
    url = os.environ.get("REDIS_URL") or "redis://localhost:6379/0"
    namespace = f"pyresque-shop-{uuid.uuid4().hex[:8]}"
    embedded = None
    with tempfile.TemporaryDirectory(prefix="pyresque-shop-") as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "shop.settings",
            "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/shop.sqlite3",
            "RESQUE_NAMESPACE": namespace,
        }
        try:
            if not answering(url):
                embedded = EmbeddedRedis()
                embedded.start()
                url = embedded.url
            env["REDIS_URL"] = url
            run(env)
            say("==> done")
            return 0
        except (QuickstartError, subprocess.CalledProcessError) as exc:
            say(f"run.py: error: {exc}", sys.stderr)
            return 1
        finally:
            if embedded is not None:
                embedded.stop()
            else:
                delete_namespace(redis.Redis.from_url(url), namespace)


if __name__ == "__main__":
    sys.exit(main())
