"""Detection quality on held-out simulated worlds: every seed x regime (a front end of the suite).

    .venv/bin/python bench/detection.py --seeds 101 102 --regimes baseline calm_customers --scale 1.0

The worlds are the cross product of --seeds and --regimes; everything else (simulate, scan with the
default configuration, evaluate next to the plain published rule, Brier score and reliability) is
bench/generalization/suite.py, whose own command line (bench/generalization/run.py) takes
`regime:seed` pairs and produces the tables of docs/detection.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "generalization"))

from suite import World, markdown, run_suite  # noqa: E402

from kalasag.simulate import REGIMES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[201])
    ap.add_argument("--regimes", nargs="+", default=["baseline"])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "detection")
    args = ap.parse_args()
    if bad := [r for r in args.regimes if r not in REGIMES]:
        sys.exit(f"error: unknown regime(s) {', '.join(bad)} (choose from {', '.join(REGIMES)})")
    worlds = [World(regime, seed) for regime in args.regimes for seed in args.seeds]
    print(markdown(run_suite(worlds, args.scale, args.out)))


if __name__ == "__main__":
    main()
