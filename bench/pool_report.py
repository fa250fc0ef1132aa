"""What bench/pool.py reports: the figures of every measurement, the table, the targets."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from common import median

TARGET_REPLACEMENT = 0.100
TARGET_IDLE_TERM = 1.0
TARGET_MASTER_CPU = 1.0  # % of one core


@dataclass
class Results:
    startup: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    idle_term: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    idle_leftovers: dict[tuple[str, int], int] = field(default_factory=dict)
    replace_job: dict[tuple[str, str], list[float | None]] = field(default_factory=dict)
    replace_registered: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    replace_notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    busy_term: dict[str, list[float | None]] = field(default_factory=dict)
    busy_notes: dict[str, str] = field(default_factory=dict)
    master_cpu: dict[str, list[float]] = field(default_factory=dict)
    workers_cpu: dict[str, list[float]] = field(default_factory=dict)


def fmt_seconds(values: list[float] | list[float | None], unit: str = "s", none: str = "") -> str:
    """Median [min-max]; runs that gave no figure (None) are counted apart, as ``none``."""
    if not values:
        return "-"
    nums = [float(v) for v in values if v is not None]
    missing = len(values) - len(nums)
    scale, digits = (1000.0, 0) if unit == "ms" else (1.0, 2)
    text = ""
    if nums:
        text = f"{median(nums) * scale:.{digits}f} {unit}"
        if len(nums) > 1:
            text += f" [{min(nums) * scale:.{digits}f}-{max(nums) * scale:.{digits}f}]"
    if missing:
        text += (", " if text else "") + f"{missing}/{len(values)} {none}"
    return text


def fmt_pct(values: list[float]) -> str:
    if not values:
        return "-"
    text = f"{median(values):.2f} %"
    if len(values) > 1:
        text += f" [{min(values):.2f}-{max(values):.2f}]"
    return text


def meets(values: list[float] | list[float | None], limit: float) -> str:
    if not values:
        return "not measured"
    if any(v is None for v in values):
        return "MISSED"
    return "ok" if median([float(v) for v in values if v is not None]) < limit else "MISSED"


Row = tuple[str, str, list[str]]  # what was measured, its target, one cell per system


def print_table(args: argparse.Namespace, res: Results, systems: tuple[str, ...]) -> None:
    """The table of every measurement, then pyresque's targets and what went wrong."""
    print_rows(table_rows(args, res, systems), systems)
    print()
    print(f"medians [min-max] over {args.runs} runs; CPU in % of one core")
    print_notes(args, res, systems)


def table_rows(args: argparse.Namespace, res: Results, systems: tuple[str, ...]) -> list[Row]:
    rows: list[Row] = []
    for n in args.sizes:
        cells = [fmt_seconds(res.startup.get((s, n), [])) for s in systems]
        rows.append((f"(a) start -> {n} workers registered", "", cells))
    late = f"not within {args.replace_cap:.0f} s"
    for variant, when in (("now", "pushed right after the kill"), ("gone", "pushed once it died")):
        cells = [fmt_seconds(res.replace_job.get((s, variant), []), "ms", late) for s in systems]
        rows.append((f"(b) kill -9 idle worker -> job starts ({when})", "< 100 ms", cells))
    merged = [
        fmt_seconds(
            res.replace_registered.get((s, "now"), [])
            + res.replace_registered.get((s, "gone"), []),
            "ms",
        )
        for s in systems
    ]
    rows.append(("(b) kill -9 idle worker -> replacement registered", "", merged))
    for n in args.sizes:
        cells = [fmt_seconds(res.idle_term.get((s, n), [])) for s in systems]
        rows.append((f"(c) TERM -> master exit, idle, {n} workers", "< 1 s", cells))
    busy = f"> {args.busy_cap:.0f} s, killed"
    cells = [fmt_seconds(res.busy_term.get(s, []), "s", busy) for s in systems]
    rows.append((f"(c) TERM -> master exit, {args.busy_size} workers in 60 s jobs", "", cells))
    cells = [fmt_pct(res.master_cpu.get(s, [])) for s in systems]
    rows.append((f"(d) master CPU, idle, {args.cpu_size} workers", "< 1 %", cells))
    cells = [fmt_pct(res.workers_cpu.get(s, [])) for s in systems]
    rows.append((f"    its workers' CPU together, idle, {args.cpu_size} workers", "", cells))
    return rows


def print_rows(rows: list[Row], systems: tuple[str, ...]) -> None:
    width = max(len(row[0]) for row in rows)
    cols = [max(len(s), *(len(row[2][i]) for row in rows)) for i, s in enumerate(systems)]
    header = f"{'':{width}}  {'target':9}" + "".join(
        f"  {s:{c}}" for s, c in zip(systems, cols, strict=True)
    )
    print(header.rstrip())
    print("-" * len(header))
    for label, target, cells in rows:
        line = f"{label:{width}}  {target:9}"
        line += "".join(f"  {cell:{c}}" for cell, c in zip(cells, cols, strict=True))
        print(line.rstrip())


def print_notes(args: argparse.Namespace, res: Results, systems: tuple[str, ...]) -> None:
    """pyresque's targets met or missed, then the notes and warnings of the runs."""
    if "pyresque" in systems:
        idle = [meets(res.idle_term.get(("pyresque", n), []), TARGET_IDLE_TERM) for n in args.sizes]
        idle_verdict = (
            "not measured"
            if all(v == "not measured" for v in idle)
            else ("ok" if all(v == "ok" for v in idle) else "MISSED")
        )
        checks = [
            ("replacement < 100 ms", meets(res.replace_job.get(("pyresque", "now"), []), 0.1)),
            ("idle TERM -> exit < 1 s", idle_verdict),
            (
                "master idle CPU < 1 % of a core",
                meets(res.master_cpu.get("pyresque", []), TARGET_MASTER_CPU),  # type: ignore[arg-type]
            ),
        ]
        print("pyresque targets: " + "; ".join(f"{name}: {v}" for name, v in checks))
    for system, note in res.busy_notes.items():
        print(f"busy TERM, {system}: {note}")
    for (system, variant), notes in sorted(res.replace_notes.items()):
        for note in notes:
            print(f"replacement, {system}, job {variant}: {note}")
    for (system, n), left in sorted(res.idle_leftovers.items()):
        if left:
            print(f"WARNING: {system}, {n} workers: {left} processes alive after the master exited")
