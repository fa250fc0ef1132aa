"""The ceiling for one worker process: LPOP pre-filled payloads in a loop, decode, call the job.

Run by throughput.py as a subprocess (``python bareloop.py KEY``, REDIS_URL in the environment).
No reservation, no acknowledgement, no stats, no hooks: one LPOP round trip per job, then
``json.loads`` and a direct call of the same no-op function the workers run (which writes the same
first/last timing marks). Prints how many jobs it ran.
"""

from __future__ import annotations

import json
import os
import sys

import benchjobs
import redis


def main() -> int:
    key = sys.argv[1]
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    jobs = {
        "Bench::Noop": benchjobs.noop,
        "Bench::Sleep": benchjobs.sleep,
        "Bench::Spin": benchjobs.spin,
    }
    done = 0
    while (raw := client.lpop(key)) is not None:
        payload = json.loads(raw)
        jobs[payload["class"]](*payload["args"])
        done += 1
    print(done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
