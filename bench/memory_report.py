"""How bench/memory.py reports: the tables per phase, the details, and the verdict on the targets."""

from __future__ import annotations

from common import median
from memory_measure import Result, Snapshot

TARGET_LINE = (
    "targets: pyresque total PSS ≤ 60% of RQ's preloading pool's, ≤ 50% of RQ's default pool's"
    " and of Celery's"
)


def print_table(results: list[Result], phase: str) -> None:
    base = next((r for r in results if r.system.key == "pyresque"), None)
    print(
        f"{'system':38} | {'total PSS (MB)':>14} | {'median worker USS (MB)':>22} | "
        f"{'ratio vs pyresque default':>25}"
    )
    print(f"{'-' * 38}-+-{'-' * 14}-+-{'-' * 22}-+-{'-' * 25}")
    for r in results:
        snap: Snapshot = getattr(r, phase)
        ratio = (
            f"{snap.total_pss / getattr(base, phase).total_pss:.2f}x" if base is not None else "n/a"
        )
        print(
            f"{r.system.label:38} | {snap.total_pss:14.1f} | {snap.worker_uss:22.1f} | {ratio:>25}"
        )


def print_details(results: list[Result], per_process: bool) -> None:
    print(
        f"{'system / phase':44} | {'procs':>5} | {'RSS sum':>7} | {'master PSS/USS':>14} | "
        f"{'workers PSS':>11} | {'worker USS min/med/max':>22} | {'worker dirty':>12} | "
        f"{'children PSS':>12}"
    )
    for r in results:
        for phase in ("idle", "peak", "after"):
            snap: Snapshot = getattr(r, phase)
            master = snap.role("master")
            workers = snap.role("worker")
            children = snap.role("child")
            uss = sorted(p.uss for p in workers)
            m = f"{master[0].pss:.1f}/{master[0].uss:.1f}" if master else "-"
            spread = f"{uss[0]:.1f}/{median(uss):.1f}/{uss[-1]:.1f}" if uss else "-"
            dirty = median([p.private_dirty for p in workers])
            kids = f"{len(children)}: {sum(p.pss for p in children):.1f}"
            print(
                f"{r.system.key + ' / ' + phase:44} | {len(snap.procs):5} | {snap.total_rss:7.1f} | "
                f"{m:>14} | {sum(p.pss for p in workers):11.1f} | {spread:>22} | {dirty:12.1f} | "
                f"{kids:>12}"
            )
            if per_process:
                for p in snap.procs:
                    print(
                        f"    {p.role:6} {p.pid:>7} pss {p.pss:6.1f} uss {p.uss:6.1f} "
                        f"dirty {p.private_dirty:6.1f} anon {p.anonymous:6.1f} rss {p.rss:6.1f}  "
                        f"{p.title}"
                    )


# (system, name, the most pyresque's total PSS may be as a share of that system's)
COMPARED = (
    ("rq", "RQ (preloaded)", 0.6),
    ("rq-nopreload", "RQ (no preload)", 0.5),
    ("celery", "Celery", 0.5),
)


def verdict(results: list[Result], phase: str) -> tuple[str, bool | None]:
    """pyresque's total PSS as a share of each RQ and Celery pool measured; None if either is
    missing (the target needs at least one RQ pool and the Celery pool)."""
    by_key = {r.system.key: r for r in results}
    base = by_key.get("pyresque")
    if base is None:
        return "pyresque not measured", None
    parts = []
    ok = True
    for key, name, target in COMPARED:
        other = by_key.get(key)
        if other is None:
            continue
        ratio = getattr(base, phase).total_pss / getattr(other, phase).total_pss
        passed = ratio <= target
        parts.append(f"{ratio:.0%} of {name} {'PASS' if passed else 'FAIL'}")
        ok = ok and passed
    have_rq = "rq" in by_key or "rq-nopreload" in by_key
    if not have_rq or "celery" not in by_key:
        return ", ".join(parts) + " (RQ or Celery not measured)", None
    return ", ".join(parts), ok
