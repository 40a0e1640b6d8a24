"""Time and memory of entity resolution on about N account records (default 1,000,000).

    nice .venv/bin/python bench/entities_scale.py --records 1000000 --threads 2 [--memory-limit 4GB] [--evaluate]

Simulates a Parquet world big enough to hold N account records (about 49,000 records per unit of
simulator scale, so 1M records ≈ scale 20.5 ≈ 6.2M transfers, written in parts to keep memory
flat), ingests it, runs `kalasag.entities.resolve` and prints one JSON line: records, entities,
links, households, seconds per stage, and the peak resident memory of the process (DuckDB runs
in-process, so this includes it). The world is cached under bench/out/.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from kalasag import ingest
from kalasag.engine import connect
from kalasag.entities import resolve
from kalasag.model import load_config
from kalasag.simulate import simulate_world

ROOT = Path(__file__).resolve().parents[1]
RECORDS_PER_SCALE = 49_000


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory limit, e.g. 8GB")
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--evaluate", action="store_true", help="also score the links against labels.csv")
    args = ap.parse_args()
    scale = round(args.records / RECORDS_PER_SCALE, 2)
    parts = max(1, int(round(scale / 3.4)))
    d = ROOT / "bench" / "out" / f"entities-scale-{args.seed}-{scale}"
    t0 = time.perf_counter()
    if not (d / "labels.csv").exists():
        simulate_world(d, seed=args.seed, scale=scale, fmt="parquet", parts=parts, progress=False)
    t_sim = time.perf_counter() - t0
    config = load_config()
    eng = connect(threads=args.threads, memory_limit=args.memory_limit, temp_directory=str(d / "tmp"))
    t0 = time.perf_counter()
    src = d / "transfers" if (d / "transfers").is_dir() else d / "transfers.parquet"
    ing = ingest.ingest(eng, src, config=config)
    t_ing = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = resolve(eng, ing.transfers, config)
    records = eng.count(res.records)
    n_ent = eng.scalar(res.entities.entity_id.nunique())
    t_res = time.perf_counter() - t0
    out = {
        "records": records, "entities": int(n_ent), "links": int(len(res.links)),
        "households_multi": int(len(res.households)), "transfers": ing.accepted, "scale": scale,
        "threads": args.threads, "simulate_s": round(t_sim, 1), "ingest_s": round(t_ing, 1),
        "resolve_s": round(t_res, 1), "stages_s": {k: round(v, 1) for k, v in res.timings.items()},
        "peak_rss_mb": round(peak_mb()),
    }
    if args.evaluate:
        import pandas as pd

        from kalasag.evaluate import entity_metrics

        ev = entity_metrics(eng.fetch(res.entities), pd.read_csv(d / "labels.csv", dtype=str))
        out.update({k: round(ev[k], 4) for k in ("link_precision", "link_recall", "household_pair_precision")
                    if ev.get(k) is not None})
        out["operations_in_one_household"] = ev.get("operations_share_in_one_household")
    print(json.dumps(out), flush=True)
    (ROOT / "bench" / "out" / "entities_scale.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
