"""The dashboard's pages, actions and /metrics over HTTP (Starlette's test client) against a real
Redis holding data written the way Ruby Resque and the pyresque worker write it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from pyresque.store.operations import Store
from pyresque.web.app import create_app
from pyresque.wire.keys import Keys
from tests.integration.web_seed import SCRIPT, failure, push, seed_job_metrics, seed_ruby


def client_for(r: redis.Redis, **options: object) -> TestClient:
    store = Store(r, Keys("resque"))
    return TestClient(create_app("redis://:sekrit@localhost/0", "resque", store=store, **options))


@pytest.fixture
def web(r: redis.Redis) -> Iterator[TestClient]:
    with client_for(r) as client:
        yield client


def csrf(client: TestClient, path: str = "/failed") -> str:
    page = client.get(path).text
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_ruby_written_data_renders_on_every_page(r: redis.Redis, web: TestClient) -> None:
    seed_ruby(r)
    push(r, "oracle", "Sleepy", 1, "queued")
    overview = web.get("/").text
    assert "vm:15355:oracle,other" in overview and "Sleepy" in overview
    assert re.search(r'data-queue="oracle">1<', overview)
    workers = web.get("/workers").text
    assert "vm:15355:oracle,other" in workers and "working" in workers
    assert ">3<" in workers and ">1<" in workers  # processed and failed per worker
    failed = web.get("/failed").text
    for text in (
        "Oracle::BoomError",
        "app/jobs.rb:40:in `perform&#39;",
        "Resque::PruneDeadWorkerDirtyExit",
    ):
        assert text in failed
    assert "Sleepy" in web.get("/working").text
    assert "&#34;queued&#34;" in web.get("/queues/oracle").text
    stats = web.get("/stats").text
    assert "resque:failed" in stats and "redis_version" in stats
    for page in ("/", "/workers", "/working", "/failed", "/stats", "/pools", "/jobs", "/metrics"):
        response = web.get(page)
        assert response.status_code == 200, page
        assert "sekrit" not in response.text, page


def test_failed_filters_by_queue_and_class(r: redis.Redis, web: TestClient) -> None:
    seed_ruby(r)
    by_class = web.get("/failed", params={"class": "Boom"}).text
    assert "Oracle::BoomError" in by_class and "DirtyExit" not in by_class
    by_queue = web.get("/failed", params={"queue": "other"}).text
    assert "uninitialized constant Py" in by_queue and "Oracle::BoomError" not in by_queue
    assert '<h1>Failed <span class="muted">1</span>' in by_queue


def test_a_script_payload_renders_inert(r: redis.Redis, web: TestClient) -> None:
    push(r, "evil", SCRIPT, SCRIPT)
    r.rpush("resque:failed", failure("evil", SCRIPT, SCRIPT, error=SCRIPT))
    r.sadd("resque:workers", "h:1:evil")
    r.set(
        "resque:worker:h:1:evil",
        json.dumps(
            {"queue": "evil", "run_at": "x", "payload": {"class": SCRIPT, "args": [SCRIPT]}}
        ),
    )
    for page in ("/", "/queues/evil", "/failed", "/working", "/workers"):
        text = web.get(page).text
        assert "<script>window" not in text, page
        assert "&lt;script&gt;window" in text, page


def test_queue_pages_through_a_long_list(r: redis.Redis, web: TestClient) -> None:
    for i in range(120):
        push(r, "bulk", "Echo", i)
    first = web.get("/queues/bulk").text
    assert "1\u201350 of 120" in first and "[49]" in first and "[50]" not in first
    last = web.get("/queues/bulk", params={"start": 100}).text
    assert "101\u2013120 of 120" in last and "[119]" in last and "next »" not in last


def test_retry_needs_the_csrf_token_and_the_shown_record(r: redis.Redis, web: TestClient) -> None:
    r.rpush("resque:failed", failure("q1", "Echo", "again"))
    index_item = "0:" + re.search(r'name="item" value="0:(\w+)"', web.get("/failed").text).group(1)
    no_token = web.post("/actions/retry", data={"item": index_item}, follow_redirects=False)
    assert no_token.status_code == 403
    stale = web.post(
        "/actions/retry", data={"csrf": csrf(web), "item": "0:000000000000"}, follow_redirects=False
    )
    assert stale.status_code == 303 and r.llen("resque:queue:q1") == 0
    done = web.post(
        "/actions/retry",
        data={"csrf": csrf(web), "item": index_item, "next": "/failed"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/failed"
    assert r.lrange("resque:queue:q1", 0, -1) == [b'{"class":"Echo","args":["again"]}']
    assert "retried_at" in json.loads(r.lindex("resque:failed", 0))


def test_bulk_remove_clear_and_pause(r: redis.Redis, web: TestClient) -> None:
    r.rpush("resque:failed", *(failure("q", "Echo", i) for i in range(5)))
    page = web.get("/failed").text
    items = re.findall(r'type="checkbox" name="item" value="([^"]+)"', page)
    assert len(items) == 5
    web.post(
        "/actions/bulk", data={"csrf": csrf(web), "bulk": "remove", "item": [items[1], items[3]]}
    )
    assert [json.loads(x)["payload"]["args"] for x in r.lrange("resque:failed", 0, -1)] == [
        [0],
        [2],
        [4],
    ]
    web.post("/actions/retry-all", data={"csrf": csrf(web)})
    assert r.llen("resque:queue:q") == 3
    web.post("/actions/clear", data={"csrf": csrf(web)})
    assert r.llen("resque:failed") == 0
    web.post("/actions/pause", data={"csrf": csrf(web)})
    assert r.get("resque:pause-all-workers") == b"true"
    assert "All workers are paused" in web.get("/").text
    web.post("/actions/resume", data={"csrf": csrf(web)})
    assert r.get("resque:pause-all-workers") is None


def test_read_only_hides_and_refuses_every_action(r: redis.Redis) -> None:
    r.rpush("resque:failed", failure("q", "Echo", 1))
    with client_for(r, read_only=True) as web:
        page = web.get("/failed").text
        assert "Retry" not in page and 'method="post"' not in page
        token = web.cookies.get("pyresque_csrf")
        assert web.post("/actions/clear", data={"csrf": token or "x"}).status_code == 403
    assert r.llen("resque:failed") == 1


def test_basic_auth(r: redis.Redis) -> None:
    with client_for(r, auth="ops:s3cret") as web:
        assert web.get("/").status_code == 401
        assert web.get("/metrics", auth=("ops", "wrong")).status_code == 401
        assert web.get("/", auth=("ops", "s3cret")).status_code == 200


def test_job_metrics_page_and_prometheus(r: redis.Redis, web: TestClient) -> None:
    push(r, "mail", "Mailer", 1)
    seed_job_metrics(r, "Mailer", [3, 4, 4, 40, 700], failed=1)
    jobs = web.get("/jobs").text
    row = re.search(r"Mailer</a></td>(.*?)</tr>", jobs, re.S).group(1)
    cells = re.findall(r'class="r">([^<]*)<', row)
    assert cells[:2] == ["5", "1"]  # processed, failed
    assert cells[3].endswith("ms") and cells[4].endswith("ms")  # p50 and p95
    series = web.get("/api/jobs", params={"class": "Mailer"}).json()
    assert sum(series["processed"]) == 5
    text = web.get("/metrics").text
    assert 'pyresque_queue_length{queue="mail"} 1.0' in text
    assert 'pyresque_job_processed_total{class="Mailer"} 5.0' in text
    assert 'pyresque_job_duration_seconds_bucket{class="Mailer",le="0.005"} 3.0' in text
    assert 'pyresque_job_duration_seconds_count{class="Mailer"} 5.0' in text
    assert 'pyresque_workers{state="idle"} 0.0' in text


def test_live_json_records_a_sample_for_the_charts(r: redis.Redis, web: TestClient) -> None:
    push(r, "a", "Echo", 1)
    live = web.get("/api/live").json()
    assert live["queues"] == {"a": 1} and live["working"] == 0
    series = web.get("/api/series").json()
    assert series["queues"]["a"][-1] == 1 and len(series["minute"]) == 60


def test_live_json_answers_a_read_only_redis_user(r: redis.Redis) -> None:
    """The overview's sample for the charts is a write; a dashboard that may only read (an ACL
    user without write commands) still answers, and says once why no samples are kept."""
    push(r, "a", "Echo", 1)
    r.acl_setuser("reader", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@read"])
    kwargs = r.connection_pool.connection_kwargs
    reader = redis.Redis(unix_socket_path=kwargs["path"], username="reader", password="pw")
    with client_for(reader) as web:
        first = web.get("/api/live")
        second = web.get("/api/live")
    assert first.status_code == second.status_code == 200
    assert first.json()["queues"] == {"a": 1}
    assert r.keys("resque:metrics:*") == []


def test_mounted_under_a_prefix_in_another_asgi_app(r: redis.Redis) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    host = Starlette(routes=[Mount("/resque", create_app(store=Store(r, Keys("resque"))))])
    with TestClient(host) as web:
        page = web.get("/resque/").text
        assert 'href="/resque/failed"' in page and "/resque/static/app.js" in page
        assert web.get("/resque/static/uPlot.iife.min.js").status_code == 200


def test_wsgi_app_serves_the_same_pages(r: redis.Redis) -> None:
    import httpx2 as httpx

    from pyresque.web.app import wsgi_app

    push(r, "w", "Echo", 1)
    app = wsgi_app(store=Store(r, Keys("resque")))
    transport = httpx.WSGITransport(app=app, script_name="/resque")  # as a dispatcher mounts it
    with httpx.Client(transport=transport, base_url="http://t") as web:
        page = web.get("/").text  # the dispatcher passed SCRIPT_NAME=/resque, PATH_INFO=/
        assert 'data-queue="w">1<' in page and 'href="/resque/workers"' in page


def test_stats_lists_only_the_namespace_keys_even_with_glob_characters(r: redis.Redis) -> None:
    r.rpush("we*rd:queue:a", "x")
    r.rpush("weXrd:queue:b", "x")
    store = Store(r, Keys("we*rd"))
    assert store.dashboard.namespace_keys(100) == [("we*rd:queue:a", "list", 1)]


def test_pages_refuse_framing_and_actions_only_redirect_home(web: TestClient) -> None:
    page = web.get("/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example/"):
        done = web.post(
            "/actions/pause", data={"csrf": csrf(web), "next": target}, follow_redirects=False
        )
        assert done.headers["location"] == "/", target


def test_redis_down_answers_503_without_the_password(tmp_path: Path) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis.Redis(unix_socket_path=str(tmp_path / "nothing.sock"), retry=Retry(NoBackoff(), 0))
    app = create_app("redis://:sekrit@localhost/0", store=Store(dead, Keys("resque")))
    with TestClient(app, raise_server_exceptions=False) as web:
        page = web.get("/")
    assert page.status_code == 503
    assert "Redis is unavailable at redis://:***@localhost/0" in page.text
    assert "sekrit" not in page.text
