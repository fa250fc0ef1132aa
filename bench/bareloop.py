"""The ceiling for one worker process: LPOP pre-filled payloads in a loop, decode, call the job.

Run by throughput.py as a subprocess (``python bareloop.py KEY``, REDIS_URL in the environment).
With ``--block`` (pools.py's pool of two) it takes each job with ``BRPOP KEY 0.2`` instead, as a
worker sharing its queue with others would, and exits when that times out. No reservation, no acknowledgement, no stats, no hooks: one LPOP round trip per job, then
``json.loads`` and a direct call of the same no-op function the workers run (which writes the same
first/last timing marks). Prints how many jobs it ran.
"""

from __future__ import annotations

import json
import os
import sys

import benchjobs
import redis


def take(client: redis.Redis, key: str, block: bool) -> bytes | None:
    if not block:
        return client.lpop(key)  # type: ignore[return-value]
    popped = client.brpop([key], 0.2)
    return None if popped is None else popped[1]  # type: ignore[index]


def main() -> int:
    block = "--block" in sys.argv[1:]
    key = next(a for a in sys.argv[1:] if a != "--block")
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    jobs = {
        "Bench::Noop": benchjobs.noop,
        "Bench::Sleep": benchjobs.sleep,
        "Bench::Spin": benchjobs.spin,
    }
    done = 0
    while (raw := take(client, key, block)) is not None:
        payload = json.loads(raw)
        jobs[payload["class"]](*payload["args"])
        done += 1
    print(done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
