"""Detection quality on held-out simulated worlds, next to the plain published rule.

    .venv/bin/python bench/detection.py --seeds 101 --regimes baseline --scale 1.0

Simulates each (seed, regime) world, scans it with the default configuration, evaluates the alerts
against the world's labels and prints a markdown section for docs/detection.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kalasag.evaluate import evaluate, to_markdown
from kalasag.pipeline import scan
from kalasag.simulate import simulate_world

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[101])
    ap.add_argument("--regimes", nargs="+", default=["baseline"])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "detection")
    args = ap.parse_args()
    sections = []
    for regime in args.regimes:
        for seed in args.seeds:
            d = args.out / f"{regime}-{seed}"
            t0 = time.perf_counter()
            world = simulate_world(d / "world", seed=seed, scale=args.scale, regime=regime, progress=False)
            scan(world.files["transfers"], d / "run", quiet=True, write_report=False)
            result = evaluate(d / "run", world.files["labels"])
            (d / "evaluation.json").write_text(json.dumps(result, indent=2, default=float))
            title = f"{regime}, seed {seed}, {world.n_transfers:,} transfers ({time.perf_counter() - t0:.0f} s)"
            sections.append(to_markdown(result, title))
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
