"""Evaluate entity resolution, households and entity-level alerts on simulated worlds.

    .venv/bin/python bench/entities_eval.py --seed 4 5 --scale 1.0
    .venv/bin/python bench/entities_eval.py --seed 6 7 --scale 0.5 --regime many_accounts
    .venv/bin/python bench/entities_eval.py --seed 1 --config my.toml --tag try1   # development

For each world: simulate (cached in bench/out/), `kalasag scan` it (which writes entities.csv,
entity_alerts.csv and household_alerts.csv), then `kalasag.evaluate.evaluate` the run directory
against labels.csv — exactly what `kalasag evaluate RUN_DIR labels.csv` prints. Prints one JSON
line per world (with the missed operations) and appends to bench/out/entities_eval.json; with
--markdown, also prints the rows of the table in docs/entities.md.

Seeds: develop on 1–3 and 8–11 (training worlds); report held-out seeds only (docs/entities.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kalasag.engine import connect
from kalasag.evaluate import ENTITIES_MARKDOWN_HEADER, entities_markdown_row, evaluate
from kalasag.model import load_config
from kalasag.pipeline.scan import scan
from kalasag.simulate import simulate_world

ROOT = Path(__file__).resolve().parents[1]
KEYS = (
    "records", "entities", "multi_account_entities", "link_precision", "link_recall", "households_multi",
    "household_pair_precision", "operations_multi_account", "operations_in_one_entity",
    "operations_in_one_household", "operations_in_one_alert", "operations_missed_split",
    "operations_missed_not_alerted", "operations_missed",
)


def run_world(seed: int, scale: float, regime: str, threads: int, config_path: Path | None, tag: str) -> tuple[dict, dict]:
    d = ROOT / "bench" / "out" / f"entities-{regime}-{seed}-{scale}"
    if not (d / "labels.csv").exists():
        simulate_world(d, seed=seed, scale=scale, regime=regime, progress=False)
    config = load_config(config_path) if config_path else load_config()
    eng = connect(threads=threads)
    run_dir = d / f"scan{'-' + tag if tag else ''}"
    sr = scan(d / "transfers.csv.gz", run_dir, config=config, engine=eng, quiet=True, write_report=False)
    result = evaluate(run_dir, d / "labels.csv")
    ev = result["entities"]
    c = sr.run["counts"]
    out = {"seed": seed, "scale": scale, "regime": regime, "tag": tag,
           "entities_seconds": round(sr.run["timings"].get("entities", 0.0), 1),
           "account_alerts": sum(c["alerts"].values()), "entity_alerts": c["entity_alerts"],
           "household_alerts": c["household_alerts"]}
    out.update({k: (round(ev[k], 4) if isinstance(ev.get(k), float) else ev.get(k)) for k in KEYS})
    return out, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, nargs="+", default=[4, 5])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--regime", default="baseline")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", type=Path, default=None, help="TOML merged over the default config")
    ap.add_argument("--tag", default="", help="suffix of the scan directory (keeps runs of other configs apart)")
    ap.add_argument("--markdown", action="store_true", help="print the docs/entities.md table rows")
    args = ap.parse_args()
    rows, md = [], []
    for seed in args.seed:
        row, result = run_world(seed, args.scale, args.regime, args.threads, args.config, args.tag)
        print(json.dumps(row), flush=True)
        rows.append(row)
        md.append(entities_markdown_row(result, f"{args.regime}, seed {seed}, scale {args.scale:g}"))
    if args.markdown:
        print(ENTITIES_MARKDOWN_HEADER)
        print("\n".join(md))
    path = ROOT / "bench" / "out" / "entities_eval.json"
    prev = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(prev + rows, indent=1))


if __name__ == "__main__":
    main()
