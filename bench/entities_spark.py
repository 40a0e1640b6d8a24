"""Entity resolution on Spark (Splink's Spark backend) against DuckDB, on the same input.

    nice .venv/bin/python bench/entities_spark.py --records 100000 [--master local[2]] [--threads 2]

Simulates (or reuses, under bench/out/) the Parquet world of `bench/entities_scale.py` for about
N account records, then runs `kalasag.entities.resolve` once per engine, each in its own process
(so that peak memory is per engine): DuckDB (`--threads`), then Spark (`--master`, default
local[2], the engine's local defaults: driver memory 2g, 4 shuffle partitions). Each run ingests
the world, resolves, scores the links against labels.csv and writes its entities to
bench/out/…/entities-<engine>.parquet (and the trained model, model-<engine>.json). The parent prints one JSON line per engine and how far the
two partitions agree (pairs of records in one entity on both engines), and writes
bench/out/entities_spark.json.

Memory: the peak resident set of the Python process (DuckDB runs inside it) and, for Spark, the
peak of the JVM (VmHWM of the driver process, which in local mode also runs the executors).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDS_PER_SCALE = 49_000


def _world(records: int, seed: int) -> Path:
    from kalasag.simulate import simulate_world

    scale = round(records / RECORDS_PER_SCALE, 2)
    parts = max(1, int(round(scale / 3.4)))
    d = ROOT / "bench" / "out" / f"entities-scale-{seed}-{scale}"
    if not (d / "labels.csv").exists():
        simulate_world(d, seed=seed, scale=scale, fmt="parquet", parts=parts, progress=False)
    return d


def _jvm_peak_mb(eng) -> float | None:
    try:
        pid = eng.spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except Exception:  # noqa: BLE001 - not local mode, or no /proc: unknown
        return None
    return None


def one(engine: str, world: Path, threads: int, master: str) -> dict:
    import pandas as pd

    from kalasag import ingest
    from kalasag.engine import connect
    from kalasag.evaluate import entity_metrics
    from kalasag.model import load_config

    from kalasag.entities import resolve

    config = load_config()
    t0 = time.perf_counter()
    if engine == "spark":
        eng = connect("spark", spark_master=master)
    else:
        eng = connect("duckdb", threads=threads, temp_directory=str(world / "tmp"))
    t_start = time.perf_counter() - t0
    src = world / "transfers" if (world / "transfers").is_dir() else world / "transfers.parquet"
    t0 = time.perf_counter()
    ing = ingest.ingest(eng, src, config=config)
    n_transfers = ing.accepted
    t_ing = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = resolve(eng, ing.transfers, config)
    ents = eng.fetch(res.entities)
    t_res = time.perf_counter() - t0
    ents.to_parquet(world / f"entities-{engine}.parquet", index=False)
    (world / f"model-{engine}.json").write_text(json.dumps(res.model, indent=1, default=str))
    ev = entity_metrics(ents, pd.read_csv(world / "labels.csv", dtype=str))
    out = {
        "engine": engine, "master": master if engine == "spark" else None, "threads": threads if engine == "duckdb" else None,
        "records": int(len(ents)), "transfers": n_transfers, "entities": int(ents["entity_id"].nunique()),
        "links": int(len(res.links)), "households_multi": int(len(res.households)),
        "link_precision": round(ev["link_precision"], 4), "link_recall": round(ev["link_recall"], 4),
        "session_s": round(t_start, 1), "ingest_s": round(t_ing, 1), "resolve_s": round(t_res, 1),
        "stages_s": {k: round(v, 1) for k, v in res.timings.items()}, "notes": res.notes,
        "lambda": res.model.get("probability_two_random_records_match"),
        "python_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "jvm_peak_rss_mb": _jvm_peak_mb(eng) if engine == "spark" else None,
        "load_before": os.getloadavg()[0],
    }
    eng.close()
    return out


def _agreement(world: Path) -> dict:
    """Pairs of records put in one entity by both engines, by one only."""
    import pandas as pd

    a = pd.read_parquet(world / "entities-duckdb.parquet")[["account_id", "side", "entity_id"]]
    b = pd.read_parquet(world / "entities-spark.parquet")[["account_id", "side", "entity_id"]]
    m = a.merge(b, on=["account_id", "side"], suffixes=("_d", "_s"))

    def pairs(keys: list[str]) -> int:
        n = m.groupby(keys).size()
        return int((n * (n - 1) // 2).sum())

    both = pairs(["entity_id_d", "entity_id_s"])
    d, s = pairs(["entity_id_d"]), pairs(["entity_id_s"])
    return {"records_compared": int(len(m)), "pairs_duckdb": d, "pairs_spark": s, "pairs_both": both,
            "pairs_duckdb_only": d - both, "pairs_spark_only": s - both}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    ap.add_argument("--one", choices=["duckdb", "spark"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    world = _world(args.records, args.seed)
    if args.one:
        print("RESULT " + json.dumps(one(args.one, world, args.threads, args.master)), flush=True)
        return
    rows = []
    for engine in args.engines:
        t0 = time.perf_counter()
        cmd = [sys.executable, __file__, "--records", str(args.records), "--seed", str(args.seed),
               "--threads", str(args.threads), "--master", args.master, "--one", engine]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            row = {"engine": engine, "failed": err, "wall_s": round(time.perf_counter() - t0, 1)}
        else:
            row = json.loads(line[len("RESULT "):])
            row["process_wall_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if all("failed" not in r for r in rows) and {r["engine"] for r in rows} == {"duckdb", "spark"}:
        agree = _agreement(world)
        print(json.dumps({"agreement": agree}), flush=True)
        rows.append({"agreement": agree})
    (ROOT / "bench" / "out" / "entities_spark.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
