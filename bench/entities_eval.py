"""Evaluate entity resolution, households and entity-level alerts on simulated worlds.

    .venv/bin/python bench/entities_eval.py --seed 4 5 --scale 1.0
    .venv/bin/python bench/entities_eval.py --seed 6 --scale 0.5 --regime many_accounts

For each world: simulate (cached in bench/out/), scan (account scores and alerts), resolve
entities, build entity and household alerts, and score them against labels.csv with
`kalasag.entities.evaluate_entities`. Prints one JSON line per world and writes
bench/out/entities_eval.json. Seeds 1–3 were used while tuning; report held-out seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from kalasag import ingest
from kalasag.engine import connect
from kalasag.entities import entity_alerts, evaluate_entities, household_alerts, resolve
from kalasag.model import load_config
from kalasag.pipeline.scan import scan
from kalasag.simulate import simulate_world

ROOT = Path(__file__).resolve().parents[1]
KEYS = (
    "records", "entities", "multi_account_entities", "link_precision", "link_recall", "households_multi",
    "household_pair_precision_group", "operations_multi_account", "operations_in_one_entity",
    "operations_in_one_household", "operations_in_one_alert",
)


def run_world(seed: int, scale: float, regime: str, threads: int) -> dict:
    d = ROOT / "bench" / "out" / f"entities-{regime}-{seed}-{scale}"
    if not (d / "labels.csv").exists():
        simulate_world(d, seed=seed, scale=scale, regime=regime, progress=False)
    config = load_config()
    eng = connect(threads=threads)
    res_dir = d / "scan"
    sr = scan(d / "transfers.csv.gz", res_dir, config=config, engine=eng, quiet=True, write_report=False)
    scores = pd.read_parquet(res_dir / "scores.parquet")
    alerts = sr.alerts
    ing = ingest.ingest(eng, d / "transfers.csv.gz", config=config)
    t0 = time.perf_counter()
    res = resolve(eng, ing.transfers, config)
    seconds = time.perf_counter() - t0
    ea = entity_alerts(res.entities, alerts, scores, config)
    ha = household_alerts(res.entities, alerts, scores, config)
    labels = pd.read_csv(d / "labels.csv")
    both = pd.concat([ea[["accounts"]], ha[["accounts"]]], ignore_index=True)
    ev = evaluate_entities(res.entities, labels, alerts=both)
    out = {"seed": seed, "scale": scale, "regime": regime, "resolve_seconds": round(seconds, 1),
           "account_alerts": int(len(alerts)), "entity_alerts": int(len(ea)), "household_alerts": int(len(ha))}
    out.update({k: (round(ev[k], 4) if isinstance(ev.get(k), float) else ev.get(k)) for k in KEYS})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, nargs="+", default=[4, 5])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--regime", default="baseline")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for seed in args.seed:
        row = run_world(seed, args.scale, args.regime, args.threads)
        print(json.dumps(row), flush=True)
        rows.append(row)
    path = ROOT / "bench" / "out" / "entities_eval.json"
    prev = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(prev + rows, indent=1))


if __name__ == "__main__":
    main()
