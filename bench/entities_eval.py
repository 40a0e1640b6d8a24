"""Evaluate entity resolution, households and entity-level alerts on simulated worlds.

    .venv/bin/python bench/entities_eval.py --seed 4 5 --scale 1.0
    .venv/bin/python bench/entities_eval.py --seed 6 7 --scale 0.5 --regime many_accounts
    .venv/bin/python bench/entities_eval.py --seed 1 --config my.toml --tag try1   # development
    .venv/bin/python bench/entities_eval.py --seed 1 --config my.toml --tag try2 --entities-only base
        # development: re-run only the entity step on the scores and alerts of scan-base

For each world: simulate (cached in bench/out/), `kalasag scan` it (which writes entities.csv,
entity_alerts.csv and household_alerts.csv), then `kalasag.evaluate.evaluate` the run directory
against labels.csv — exactly what `kalasag evaluate RUN_DIR labels.csv` prints. Prints one JSON
line per world (with the missed operations) and appends to bench/out/entities_eval.json; with
--markdown, also prints the rows of the table in docs/entities.md.

Seeds: develop on the training worlds (many_accounts 1–3, 8–10 at scale 0.5; baseline 1–3, 8–9 at
scale 1); report held-out seeds only (4–7, 12–15, 21–26, 31–36, and the fresh 41–48 / 41–44 of
27 Nov 2026: docs/entities.md §5). Every seed up to 48 has now been read: the next fresh
evaluation needs seeds above 48.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kalasag.engine import connect
from kalasag.evaluate import ENTITIES_MARKDOWN_HEADER, entities_markdown_row, evaluate
from kalasag.model import ConfigError, load_config
from kalasag.pipeline.scan import scan
from kalasag.simulate import simulate_world

ROOT = Path(__file__).resolve().parents[1]
KEYS = (
    "records", "entities", "multi_account_entities", "link_precision", "link_recall", "households_multi",
    "household_pair_precision", "operations_multi_account", "operations_in_one_entity",
    "operations_in_one_household", "operations_in_one_alert", "operations_missed_split",
    "operations_missed_not_alerted", "operations_missed",
)
PAID_KEYS = ("paid_operations_multi_account", "paid_operations_in_one_alert")


def entities_only(transfers: Path, base_dir: Path, run_dir: Path, config, eng) -> dict:
    """Re-run only the entity step of `kalasag scan` (resolve, entity and household alerts) on the
    scores and alerts of an earlier scan in `base_dir`; write its files to `run_dir`."""
    import time

    import pandas as pd

    from kalasag import entities as ent
    from kalasag.ingest import ingest

    run_dir.mkdir(parents=True, exist_ok=True)
    if not (base_dir / "scores.parquet").exists():
        raise SystemExit(f"{base_dir}: no scores.parquet (run the full scan with that tag first)")
    link = run_dir / "scores.parquet"
    if link.is_symlink() and not link.exists():      # left dangling by an earlier run
        link.unlink()
    if not link.exists():
        link.symlink_to((base_dir / "scores.parquet").resolve())
    alerts = pd.read_csv(base_dir / "alerts.csv", dtype={"account_id": str})
    scores = eng.con.read_parquet(str(base_dir / "scores.parquet"))
    t0 = time.perf_counter()
    er = ent.resolve(eng, ingest(eng, transfers, config=config).transfers, config)
    eng.write(er.entities, run_dir / "entities.csv")
    er.households.to_csv(run_dir / "households.csv", index=False)
    ea = ent.entity_alerts(er.entities, alerts, scores, config)
    ha = ent.household_alerts(er.entities, alerts, scores, config)
    ea.to_csv(run_dir / "entity_alerts.csv", index=False)
    ha.to_csv(run_dir / "household_alerts.csv", index=False)
    return {"entities": time.perf_counter() - t0, "alerts": len(alerts), "entity_alerts": len(ea),
            "household_alerts": len(ha)}


def load(config_path: Path | None, tries: int = 30):
    """The config; retried for a few minutes while the shared default config is mid-edit (other rooms)."""
    import time

    for i in range(tries):
        try:
            return load_config(config_path) if config_path else load_config()
        except ConfigError:
            if i == tries - 1:
                raise
            time.sleep(10)


def run_world(seed: int, scale: float, regime: str, threads: int, config, tag: str,
              base_tag: str | None = None) -> tuple[dict, dict]:
    d = ROOT / "bench" / "out" / f"entities-{regime}-{seed}-{scale}"
    if not (d / "labels.csv").exists():
        simulate_world(d, seed=seed, scale=scale, regime=regime, progress=False)
    eng = connect(threads=threads)
    run_dir = d / f"scan{'-' + tag if tag else ''}"
    if base_tag is not None:
        base = d / f"scan{'-' + base_tag if base_tag else ''}"
        r = entities_only(d / "transfers.csv.gz", base, run_dir, config, eng)
        timing, n_alerts, n_ea, n_ha = r["entities"], r["alerts"], r["entity_alerts"], r["household_alerts"]
    else:
        sr = scan(d / "transfers.csv.gz", run_dir, config=config, engine=eng, quiet=True, write_report=False)
        c = sr.run["counts"]
        timing, n_alerts = sr.run["timings"].get("entities", 0.0), sum(c["alerts"].values())
        n_ea, n_ha = c["entity_alerts"], c["household_alerts"]
    result = evaluate(run_dir, d / "labels.csv")
    ev = result["entities"]
    out = {"seed": seed, "scale": scale, "regime": regime, "tag": tag,
           "entities_seconds": round(timing, 1),
           "account_alerts": n_alerts, "entity_alerts": n_ea, "household_alerts": n_ha}
    out.update({k: (round(ev[k], 4) if isinstance(ev.get(k), float) else ev.get(k)) for k in KEYS})
    out.update({k: ev.get(k) for k in PAID_KEYS})
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
    ap.add_argument("--entities-only", metavar="BASE_TAG", default=None,
                    help="re-run only the entity step on the scores and alerts of the scan with this tag ('' = untagged)")
    args = ap.parse_args()
    rows, md = [], []
    config = load(args.config)
    for seed in args.seed:
        row, result = run_world(seed, args.scale, args.regime, args.threads, config, args.tag,
                                args.entities_only)
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
