"""The dashboard with big data: each page's and /metrics' response time.

Seeds 100,000 queued jobs (over 10 queues), 10,000 failure records, 200 registered workers (half of
them busy), 8 hours of per-job metrics for 20 job classes, an hour of samples and 3 published
pools, then times each page through a real ``pyresque web`` server over TCP (median and p95 of
``--rounds`` requests). Goals: pages under 200 ms, /metrics under 100 ms.

    python bench/web.py [--rounds 20] [--transport tcp|unix]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

import redis
from common import (
    SRC,
    Proc,
    add_transport_argument,
    free_port,
    median,
    percentile,
    private_redis,
)

from pyresque.wire.jobmetrics import bucket_of

QUEUED, FAILURES, WORKERS, CLASSES = 100_000, 10_000, 200, 20
PAGES = [
    "/",
    "/queues/q0",
    "/queues/q0?start=9950",
    "/workers",
    "/working",
    "/failed",
    "/failed?start=9950",
    "/failed?class=Job7",
    "/stats",
    "/pools",
    "/jobs?hours=1",
    "/jobs?hours=8",
    "/api/live",
    "/api/series",
    "/metrics",
]


def seed(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    for q in range(10):
        pipe.sadd("resque:queues", f"q{q}")
        for i in range(QUEUED // 10):
            pipe.rpush(f"resque:queue:q{q}", f'{{"class":"Job{i % CLASSES}","args":[{i},"x"]}}')
        pipe.execute()
    for i in range(FAILURES):
        record = {
            "failed_at": "2026/11/28 06:57:33 UTC",
            "payload": {"class": f"Job{i % CLASSES}", "args": [i]},
            "exception": "RuntimeError",
            "error": f"boom {i}",
            "backtrace": [f"app/jobs.py:{n}:in `perform'" for n in range(20)],
            "worker": "host:1:q0",
            "queue": f"q{i % 10}",
        }
        pipe.rpush("resque:failed", json.dumps(record, separators=(",", ":")))
    pipe.execute()
    for w in range(WORKERS):
        wid = f"host{w % 5}:{1000 + w}:q{w % 10}"
        pipe.sadd("resque:workers", wid)
        pipe.set(f"resque:worker:{wid}:started", "2026-11-28 06:57:33 +0000")
        pipe.hset("resque:workers:heartbeat", wid, "2026-11-28T06:57:33+00:00")
        pipe.set(f"resque:stat:processed:{wid}", w * 10)
        if w % 2:
            busy = {
                "queue": "q0",
                "run_at": "2026-11-28T06:57:33Z",
                "payload": {"class": "Job1", "args": [w]},
            }
            pipe.set(f"resque:worker:{wid}", json.dumps(busy))
    pipe.set("resque:stat:processed", 12_345_678)
    pipe.set("resque:stat:failed", 10_000)
    now_minute = int(time.time()) // 60
    for m in range(now_minute - 480, now_minute + 1):
        fields: dict[str, int] = {}
        for c in range(CLASSES):
            fields[f"Job{c}|f"] = 1
            fields[f"Job{c}|ms"] = 30 * (c + 1) * 7
            fields[f"Job{c}|h{bucket_of((c + 1) * 7)}"] = 30
        pipe.hset(f"resque:metrics:jobs:{m}", mapping=fields)
        if m > now_minute - 60:
            pipe.hset(f"resque:metrics:queues:{m}", mapping={f"q{q}": 10_000 for q in range(10)})
            pipe.hset(f"resque:metrics:workers:{m}", mapping={"busy": 100, "idle": 100})
    for p in range(3):
        state = {
            "id": f"host{p}:{p + 1}", "host": f"host{p}", "pid": p + 1, "app": "shop",
            "config_source": "resque-pool.yml", "started_at": time.time(), "memory_limit": 2 << 30,
            "restarts": p, "groups": [{"name": f"q{g}", "desired": 4, "running": 4, "backoff": 0} for g in range(10)],
            "workers": [{"pid": 100 + i, "group": f"q{i % 10}", "state": "running", "uss": 30 << 20, "pss": 40 << 20} for i in range(40)],
        }  # fmt: skip
        pipe.set(f"resque:pool:host{p}:{p + 1}", json.dumps(state), ex=600)
        pipe.zadd("resque:pools", {f"host{p}:{p + 1}": time.time()})
    pipe.execute()


def get(port: int, path: str) -> tuple[float, int]:
    """Time one HTTP/1.0 GET over a fresh TCP connection (as a browser's first request)."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    elapsed = time.perf_counter() - start
    status = int(b"".join(chunks[:1]).split(b" ", 2)[1])
    return elapsed * 1000, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    add_transport_argument(parser)
    args = parser.parse_args()
    with private_redis(args.transport) as server:
        r = server.client()
        t0 = time.perf_counter()
        seed(r)
        print(f"seeded in {time.perf_counter() - t0:.1f} s: {server.describe()}")
        print(f"{QUEUED} queued jobs, {FAILURES} failures, {WORKERS} workers, {CLASSES} classes")
        port = free_port()
        env = {**os.environ, "REDIS_URL": server.url, "PYTHONPATH": str(SRC)}
        web = Proc(
            [sys.executable, "-m", "pyresque", "web", "--bind", f"127.0.0.1:{port}"], env, "web"
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    get(port, "/favicon.ico")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            print(f"{'page':<26} {'first ms':>9} {'median ms':>10} {'p95 ms':>8}  goal")
            for path in PAGES:
                first, _ = get(port, path)  # cold: templates compiled, caches filled
                times = []
                for _ in range(args.rounds):
                    ms, status = get(port, path)
                    assert status == 200, (path, status)
                    times.append(ms)
                goal = 100 if path == "/metrics" else 200
                mark = "ok" if median(times) < goal else "OVER"
                print(
                    f"{path:<26} {first:>9.1f} {median(times):>10.1f} {percentile(times, 95):>8.1f}  <{goal} {mark}"
                )
        finally:
            web.stop()


if __name__ == "__main__":
    main()
