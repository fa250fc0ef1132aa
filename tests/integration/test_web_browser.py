"""The dashboard as a person uses it: headless Debian chromium (driven by Playwright) against
``pyresque web`` and a real pool working real jobs.

One browser, one pool and one web server for the module; each test seeds its own data. Screenshots
go to ``test-artifacts/screenshots`` (kept out of git).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from harness.redis_server import RedisServer
from pyresque.pool.memory import read_usage
from pyresque.pool.publisher import GroupState, MasterView, PoolPublisher, WorkerState
from pyresque.store.operations import Store
from pyresque.wire.keys import Keys
from tests.helpers import ROOT, Proc, children_of, wait_until
from tests.integration.web_seed import SCRIPT, failure, push, seed_job_metrics

CHROMIUM = os.environ.get("PYRESQUE_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the Python Playwright package")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    url: str
    r: redis.Redis
    store: Store
    master: Proc
    page: Any

    def open(self, path: str) -> Any:
        self.page.goto(self.url + path)
        return self.page

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def publish_pool(site_store: Store, master: Proc) -> None:
    """What the master will publish once it calls the publisher: built here from the real
    processes (their pids and memory) so the pools page shows this very pool."""
    workers = []
    for pid in sorted(children_of(master.pid)):
        usage = read_usage(pid)
        workers.append(
            WorkerState(
                pid, "oracle", "running", usage.uss if usage else 0, usage.pss if usage else 0
            )
        )
    view = MasterView(
        host=socket.gethostname(),
        pid=master.pid,
        app="testapp",
        config_source="resque-pool.yml",
        started_at=time.time() - 120,
        groups=(GroupState("oracle", 2, len(workers)), GroupState("flaky", 1, 0, backoff=6.4)),
        workers=tuple(workers),
        memory_limit=2 << 30,
        restarts=3,
    )
    PoolPublisher(site_store, period=60).tick(time.time(), view)


def echo_jobs_recorded(r: redis.Redis) -> int:
    """Echo jobs in the per-job metrics: the sum of their duration buckets, every minute."""
    return sum(
        int(count)
        for key in r.scan_iter("resque:metrics:jobs:*")
        for field, count in r.hgetall(key).items()
        if field.startswith(b"Echo|h")
    )


def seed_history(r: redis.Redis) -> None:
    """An hour of per-minute samples, as running pools leave them, for the charts."""
    now_minute = int(time.time()) // 60
    for i in range(60, 0, -1):
        minute = now_minute - i
        wave = (1 + math.sin(i / 6)) / 2
        depths = {"oracle": round(40 * wave), "mail": i // 3}
        r.hset(f"resque:metrics:queues:{minute}", mapping=depths)
        busy = round(2 * wave)
        r.hset(f"resque:metrics:workers:{minute}", mapping={"busy": busy, "idle": 2 - busy})
        r.expire(f"resque:metrics:queues:{minute}", 7200)
        r.expire(f"resque:metrics:workers:{minute}", 7200)


@pytest.fixture(scope="module")
def site(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    r = redis_server.client()
    r.flushall()
    tmp = tmp_path_factory.mktemp("web")
    config = tmp / "resque-pool.yml"
    config.write_text("oracle: 2\n")
    env = {"REDIS_URL": redis_server.url, "RESQUE_NAMESPACE": "resque"}
    port = free_port()
    master = Proc(
        ["pool", "--config", str(config), "--app", "jobapp", "--appname", "testapp"],
        env,
        tmp / "pool.log",
    )
    web = Proc(["web", "--bind", f"127.0.0.1:{port}"], env, tmp / "web.log")
    store = Store(r, Keys("resque"))
    try:
        wait_until(lambda: r.scard("resque:workers") == 2, 20)
        url = f"http://127.0.0.1:{port}"

        def serving() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return False

        wait_until(serving, 20)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            yield Site(url, r, store, master, page)
            browser.close()
    finally:
        web.stop()
        master.stop()
        r.close()


def test_overview_numbers_go_live_as_the_pool_works(site: Site) -> None:
    seed_history(site.r)
    push(site.r, "mail", "Mailers::Welcome", 7)
    page = site.open("/")
    assert page.locator("h2", has_text="Queues").is_visible()
    before = int(page.locator('.card [data-live="processed"]').inner_text())
    for i in range(5):
        push(site.r, "oracle", "Echo", f"live-{i}")
    push(site.r, "oracle", "Sleepy", 30, "shown-working")  # busy until the pool stops
    # no reload: the page's script polls and the number changes in place
    page.wait_for_function(
        f"() => Number(document.querySelector('.card [data-live=\"processed\"]').textContent) >= {before + 5}"
    )
    page.wait_for_function(
        "() => document.querySelector('.working')?.textContent.includes('Sleepy')"
    )
    push(site.r, "appeared", SCRIPT, 1)  # a new queue joins the table without a reload
    page.wait_for_selector('#queues td[data-queue="appeared"]')
    assert page.evaluate("() => window.__pwned") is None
    page.wait_for_selector("#chart-queues canvas")
    page.wait_for_selector("#chart-rate canvas")
    polls = page.evaluate("() => window.pyresqueLivePolls")
    page.wait_for_function(f"() => window.pyresqueLivePolls >= {polls + 3}")  # a few points
    site.shot("overview")


def test_failed_retry_runs_the_job_and_script_stays_inert(site: Site) -> None:
    site.r.rpush("resque:failed", failure("oracle", SCRIPT, SCRIPT, error=SCRIPT))
    site.r.rpush("resque:failed", failure("oracle", "Echo", "retried-in-browser"))
    push(site.r, "evil", SCRIPT, SCRIPT)
    page = site.open("/failed")
    assert page.locator(".failure .class", has_text="<script>").count() >= 1  # shown as text
    page.locator("summary").first.click()
    assert "jobs.py:1:in `perform'" in page.locator(".failure pre").first.inner_text()
    item = page.locator(".failure", has_text="retried-in-browser")
    item.locator("button.retry").click()
    page.wait_for_load_state()
    assert page.locator(".failure", has_text="retried-in-browser").locator(".retried").is_visible()
    wait_until(lambda: b'["retried-in-browser"]' in site.r.lrange("test:done", 0, -1), 15)
    site.shot("failed")
    site.open("/queues/evil")
    assert page.locator("td", has_text="<script>").count() >= 1
    for path in ("/failed", "/queues/evil"):
        site.open(path)
        assert page.evaluate("() => window.__pwned") is None


def test_pools_page_and_every_other_page(site: Site) -> None:
    publish_pool(site.store, site.master)
    page = site.open("/pools")
    assert page.locator(".pool h2", has_text="testapp on").is_visible()
    assert page.locator("tr.backoff", has_text="respawn in 6.4 s").is_visible()
    assert page.locator(".pool-workers tbody tr").count() == 2
    site.shot("pools")
    for i in range(6):  # run by the pool; the workers' CYCLE calls record them
        push(site.r, "oracle", "Echo", f"jobstats-{i}")
    wait_until(lambda: echo_jobs_recorded(site.r) >= 6, 15)
    seed_job_metrics(site.r, "Reports::Monthly", [2, 3, 3, 8, 30, 120], failed=1)
    page = site.open("/jobs")
    echo = page.locator("table.jobstats tr", has_text="Echo")
    assert int(echo.locator("td").nth(1).inner_text()) >= 6
    row = page.locator("table.jobstats tr", has_text="Reports::Monthly")
    assert row.locator("td").nth(1).inner_text() == "6"
    page.wait_for_selector("#chart-latency canvas")
    row.locator("a").click()
    page.wait_for_selector("table.histogram")
    bars = page.locator("table.histogram tbody tr", has_text="\u2264 5 ms")
    assert bars.locator("td").nth(1).inner_text() == "2"
    site.shot("jobs")
    page = site.open("/workers")
    assert page.locator("table.workers tbody tr").count() == 2
    assert page.locator("table.workers tbody tr td", has_text=" s").count() >= 2  # heartbeat ages
    page = site.open("/stats")
    assert page.locator("table.keys td", has_text="resque:workers").count() >= 1
    assert page.locator("table.info th", has_text="redis_version").is_visible()
    page = site.open("/working")
    assert page.locator("h1", has_text="Working").is_visible()


def test_pause_and_resume_from_the_page(site: Site) -> None:
    page = site.open("/")
    page.locator("#pause-toggle").click()
    page.wait_for_selector(".banner")
    assert site.r.get("resque:pause-all-workers") == b"true"
    page.locator("#pause-toggle").click()
    page.wait_for_load_state()
    assert page.locator(".banner").count() == 0
    assert site.r.get("resque:pause-all-workers") is None
    assert json.loads(page.evaluate("() => JSON.stringify(document.cookie)")) == ""  # HttpOnly
