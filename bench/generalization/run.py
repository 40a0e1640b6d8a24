"""Detection on held-out simulated worlds that differ in seed and regime (issue 3, §3).

    .venv/bin/python bench/generalization/run.py                       # the seven default worlds
    .venv/bin/python bench/generalization/run.py --worlds baseline:201 calm_customers:206 --scale 1.0 \\
        --out bench/out/generalization --config my.toml --markdown table.md

Each world (`regime:seed`) is simulated (reused when `OUT/<regime>-<seed>/world` already holds it),
scanned with the default configuration (or `--config`), and evaluated against its labels: per side
precision, recall, F1, average precision, the plain published rule's F1 and the ratio, the Brier
score, and a reliability table pooled over the worlds. Writes `OUT/results.json` and prints the
markdown recorded in docs/detection.md (also to `--markdown`).

Never tune on these worlds: the default weights are fitted on training seeds 1-3
(bench/calibrate_weights.py); these seeds (201+) are never used for fitting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import DEFAULT_WORLDS, markdown, parse_world, run_suite  # noqa: E402

from kalasag.model import ConfigError, load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="+", default=list(DEFAULT_WORLDS), help="regime:seed, e.g. baseline:201")
    ap.add_argument("--scale", type=float, default=1.0, help="world size (1.0 is about 300,000 transfers)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "generalization")
    ap.add_argument("--config", type=Path, default=None, help="a config merged over the defaults")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the markdown tables here")
    args = ap.parse_args(argv)
    try:
        worlds = [parse_world(w) for w in args.worlds]
        config = load_config(args.config)
    except (ValueError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.scale <= 0:
        print("error: --scale must be positive", file=sys.stderr)
        return 2
    summary = run_suite(worlds, args.scale, args.out, config)
    text = markdown(summary)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
