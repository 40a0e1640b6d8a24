"""Each evaluation world scored with weights fitted *without its regime* (leave one regime out).

    .venv/bin/python bench/generalization/held_out_regimes.py [--worlds calm_customers:206 ...] \\
        [--train-out bench/out/calibration] [--out bench/out/generalization-held-out]

The default weights are fitted on training seeds 1-3 of every regime, so every evaluation world's
regime was seen in training (with other seeds). This check removes that advantage: for each world
`regime:seed`, bench/calibrate_weights.py fits the weights on the training worlds of the *other*
regimes only (`--exclude-regimes regime`, reusing its cached features), and the world is scanned
with those weights. Caveat: N-03/N-04 in the cached features used the default first-pass weights.

The training features (bench/out is not versioned) need no separate step: calibrate_weights.py
computes a training world's features when they are missing or were computed with another config
(its cache key), 16-36 s per world on the 2-core machine, so the first world of a fresh checkout
takes about 7 minutes longer. All seven worlds: about 15 minutes (docs/detection.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import DEFAULT_WORLDS, markdown, parse_world, run_suite  # noqa: E402

from kalasag.model import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="+", default=list(DEFAULT_WORLDS))
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--train-out", type=Path, default=ROOT / "bench" / "out" / "calibration",
                    help="bench/calibrate_weights.py --out (its cached training features)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "generalization-held-out")
    args = ap.parse_args()
    worlds = [parse_world(w) for w in args.worlds]
    rows = []
    for w in worlds:
        toml = args.out / f"weights-without-{w.regime}.toml"
        subprocess.run([sys.executable, str(ROOT / "bench" / "calibrate_weights.py"), "--out", str(args.train_out),
                        "--exclude-regimes", w.regime, "--write-toml", str(toml)],
                       check=True, stdout=subprocess.DEVNULL)
        summary = run_suite([w], args.scale, args.out / w.name, load_config(toml))
        rows.extend(summary["worlds"])
    (args.out / "results.json").write_text(json.dumps({"worlds": rows}, indent=2, default=float))
    text = markdown({"worlds": rows})  # per world (each scored by its own weights: no pooled calibration)
    print(text)
    (args.out / "held_out_regimes.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
