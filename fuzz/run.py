"""Run one fuzz target for N minutes: ``python fuzz/run.py TARGET --minutes N``.

``--replay FILE`` runs the target once on a saved input. Inputs that grew coverage are kept in ``fuzz/corpus/TARGET`` (seeded from ``fuzz/seeds``), so a
second run starts where the first stopped; a crash is written to ``fuzz/crashes/TARGET``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent

sys.path.insert(0, str(HERE))
with atheris.instrument_imports(include=["pyresque", "targets", "yaml", "croniter"]):
    import targets

    for _target in targets.TARGETS.values():  # import what each target reads, instrumented
        _target(b"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(targets.TARGETS))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--replay", metavar="FILE", help="run the target once on FILE and stop")
    args, rest = parser.parse_known_args()
    if args.replay:
        targets.TARGETS[args.target](Path(args.replay).read_bytes())
        print(f"{args.replay}: no crash")
        return
    corpus = HERE / "corpus" / args.target
    crashes = HERE / "crashes" / args.target
    seeds = HERE / "seeds" / args.target
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    dirs = [str(corpus)] + ([str(seeds)] if seeds.is_dir() else [])
    argv = [
        sys.argv[0],
        f"-max_total_time={int(args.minutes * 60)}",
        f"-artifact_prefix={crashes}/",
        "-timeout=10",  # a hang is a crash
        "-rss_limit_mb=1024",
        "-print_final_stats=1",
        *rest,
        *dirs,
    ]
    atheris.Setup(argv, targets.TARGETS[args.target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
