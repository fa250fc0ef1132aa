"""How many confirmed enqueues a Redis failover loses, and the window they fall in.

A master, a replica and three sentinels (harness/sentinels.py). Writers enqueue numbered jobs as
fast as they can through a ``redis+sentinel://`` URL, retrying an enqueue that raised, and note
when each call returned. Mid-stream one fault: ``failover`` (SENTINEL FAILOVER), ``kill`` (SIGKILL
of the master; its supervisor restarts it, and it comes back as a replica), or ``freeze`` (SIGSTOP
of the master for longer than the sentinels' down-after, so they promote the replica, then
SIGCONT: the old master takes writes again until the sentinels demote it). Once the writers have
written through the new master for a while, every confirmed id missing from the queue is lost; the
window is from the first to the last lost confirmation, relative to the fault.

    python bench/failover.py [--trials 3] [--faults failover,kill,freeze] [--modes async,durable]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

from common import install_sigterm_handler

from harness.ledger import Feeder, jobs_in
from harness.sentinels import start_sentinel_cluster
from pyresque.store.connection import connect


def trial(fault: str, mode: str) -> tuple[int, int, str, float]:
    """(confirmed, lost, window, seconds until writes flowed again) of one fault."""
    cluster = start_sentinel_cluster()
    url = cluster.url + ("?wait=1&wait_timeout=200" if mode == "durable" else "")
    try:
        feeder = Feeder(url, depth=1 << 30)
        feeder.start()
        time.sleep(1.0)
        fault_at = time.monotonic()
        if fault == "failover":
            cluster.failover()
        elif fault == "kill":
            old, _new = cluster.kill_master()
            cluster.restart_server(old)
        else:
            threading.Thread(target=cluster.freeze_master, args=(4.0,), daemon=True).start()
            time.sleep(4.5)
        mark = len(feeder.confirmed)
        deadline = time.monotonic() + 60
        while len(feeder.confirmed) < mark + 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        flowing = time.monotonic() - fault_at
        time.sleep(2.0)  # let the sentinels demote an old master that came back
        feeder.finish()
        queued, _in_flight, _failed = jobs_in(connect(cluster.url))
        missing = sorted(set(feeder.confirmed) - set(queued))
        times = [feeder.confirmed_at[i] - fault_at for i in missing]
        window = f"{min(times):+.3f} .. {max(times):+.3f} s" if times else "-"
        return len(feeder.confirmed), len(missing), window, flowing
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--faults", default="failover,kill,freeze")
    p.add_argument("--modes", default="async,durable")
    args = p.parse_args(argv)
    install_sigterm_handler()
    print(
        "# reproduce: python bench/failover.py " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    print(
        f"{'fault':9} {'mode':8} {'confirmed':>9} {'lost':>5}  lost window vs fault  flowing again"
    )
    for fault in args.faults.split(","):
        for mode in args.modes.split(","):
            flows = []
            for _ in range(args.trials):
                confirmed, lost, window, flowing = trial(fault, mode)
                flows.append(flowing)
                print(f"{fault:9} {mode:8} {confirmed:9} {lost:5}  {window:20}  {flowing:.1f} s")
            print(
                f"{fault:9} {mode:8} median time until writes flowed again "
                f"{statistics.median(flows):.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
