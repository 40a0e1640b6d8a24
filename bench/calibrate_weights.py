"""Calibrate the default scoring weights on a *training* simulated world.

    .venv/bin/python bench/calibrate_weights.py --seed 1 --scale 1.0

Fits an L2-regularised logistic regression per side on the indicator strengths (and the core rule)
of every account, against the world's labels, and prints a `[scoring.weights]` block. The numbers
in src/kalasag/model/default_config.toml came from this script on the seeds recorded in
docs/detection.md; evaluation always uses other (held-out) seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from kalasag import indicators as ind
from kalasag import ingest
from kalasag import network as net
from kalasag.engine import connect
from kalasag.model import POSITIVE_ROLES, load_config
from kalasag.simulate import simulate_world

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, nargs="+", default=[1])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--C", type=float, default=0.5)
    args = ap.parse_args()
    config = load_config()
    rows = {"sender": [], "receiver": []}
    for seed in args.seed:
        d = ROOT / "bench" / "out" / f"calib-{seed}-{args.scale}"
        if not (d / "labels.csv").exists():
            simulate_world(d, seed=seed, scale=args.scale, progress=False)
        eng = connect()
        res = ingest.ingest(eng, d / "transfers.csv.gz", config=config)
        ev = ind.compute_evidence(eng, res.transfers, config)
        ev = net.network_evidence(eng, res.transfers, ev, config)
        labels = pd.read_csv(d / "labels.csv", dtype=str)
        labels["y"] = labels["role"].isin(POSITIVE_ROLES).astype(int)
        for side in ("sender", "receiver"):
            t = ev.sender if side == "sender" else ev.receiver
            cols = [c for c in t.columns if c.endswith("_strength")] + ["core_rule"]
            df = eng.fetch(t.select("account_id", *cols))
            df = df.merge(labels[labels.side == side][["account_id", "y"]], on="account_id", how="left").fillna({"y": 0})
            rows[side].append(df)
    slug_to_id = {i.slug: i.id for i in ind.INDICATORS.values()}
    print("[scoring.weights]")
    for side in ("sender", "receiver"):
        df = pd.concat(rows[side], ignore_index=True)
        cols = [c for c in df.columns if c.endswith("_strength") or c == "core_rule"]
        X = df[cols].astype(float).to_numpy()
        y = df["y"].to_numpy()
        lr = LogisticRegression(C=args.C, max_iter=2000).fit(X, y)
        print(f"# {side}: intercept {lr.intercept_[0]:.2f}, {int(y.sum())} positives of {len(y)}")
        for c, w in sorted(zip(cols, lr.coef_[0]), key=lambda kv: -kv[1]):
            name = "core_rule" if c == "core_rule" else slug_to_id[c.removesuffix("_strength")]
            print(f'"{name}.{side}" = {np.round(w, 2)}')


if __name__ == "__main__":
    main()
