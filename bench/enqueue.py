"""Enqueue rate: one ``enqueue_to`` per job vs ``enqueue_many`` (one script call per 1,000 jobs),
against a private redis-server on its unix socket. Prints jobs/s, medians of --repeat runs, and the ratio.

    python bench/enqueue.py [--jobs 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import private_redis

import pyresque
from pyresque.store.connection import connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with private_redis("unix") as server:
        client = pyresque.Client(connect(server.url), namespace="bench")
        single: list[float] = []
        bulk: list[float] = []
        for _ in range(args.repeat):
            client.redis.flushall()
            began = time.perf_counter()
            for i in range(args.jobs):
                client.enqueue_to("bench", "Bench::Noop", i, args.jobs)
            single.append(args.jobs / (time.perf_counter() - began))
            client.redis.flushall()
            began = time.perf_counter()
            with client.batch() as batch:
                for i in range(args.jobs):
                    batch.enqueue_to("bench", "Bench::Noop", i, args.jobs)
            bulk.append(args.jobs / (time.perf_counter() - began))
            assert client.redis.llen("bench:queue:bench") == args.jobs
    one, many = statistics.median(single), statistics.median(bulk)
    print(f"enqueue_to, one call per job : {one:10,.0f} jobs/s (median of {args.repeat})")
    print(f"batch / enqueue_many         : {many:10,.0f} jobs/s ({many / one:.1f}x)")


if __name__ == "__main__":
    main()
