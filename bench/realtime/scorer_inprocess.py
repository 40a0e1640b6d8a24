"""In-process throughput of StreamScorer.submit on a SQLiteStore (no HTTP): transfers per second and
latency per submit call, for batches of 1 and 100.

    .venv/bin/python bench/realtime/scorer_inprocess.py --scale 0.05 --batch 1 100
    .venv/bin/python bench/realtime/scorer_inprocess.py --append-only --sync NORMAL FULL

A simulated world (kalasag.simulate) is streamed in time order into a fresh state directory, once
per batch size; the first `--warmup` share of it is not timed. Load on the machine is printed
(`os.getloadavg`): other processes share the cores.
"""

from __future__ import annotations

import argparse
import csv
import gc
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from kalasag.ingest import validate_record
from kalasag.model import load_config
from kalasag.service.scorer import StreamScorer
from kalasag.service.sqlite_store import SQLiteStore
from kalasag.simulate import simulate_world

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def rows_of(world: Path) -> list[dict]:
    cfg = load_config()
    with gzip.open(world / "transfers.csv.gz", "rt", newline="") as fh:
        rows = [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(fh)]
    return sorted(rows, key=lambda r: validate_record(r, cfg, now=NOW)["ts_epoch"])


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(rows: list[dict], batch: int, warmup: float, sync: str, tmp: Path, freeze: bool = False) -> dict:
    cfg = load_config(overrides={"service": {"sqlite_synchronous": sync, "snapshot_every": 0}})
    state = tmp / f"state-{batch}-{sync}"
    shutil.rmtree(state, ignore_errors=True)
    sc = StreamScorer(cfg, SQLiteStore(state, synchronous=sync), now=lambda: NOW)
    start = int(len(rows) * warmup)
    for i in range(0, start, 100):
        sc.submit(rows[i:min(i + 100, start)])
    lat: list[float] = []
    if freeze:
        gc.freeze()  # the state built so far leaves the collector's generations
    t0 = time.perf_counter()
    for k, i in enumerate(range(start, len(rows), batch)):
        t = time.perf_counter()
        sc.submit(rows[i:i + batch])
        lat.append(time.perf_counter() - t)
        if freeze and k % 100 == 99:
            gc.freeze()
    dt = time.perf_counter() - t0
    if freeze:
        gc.unfreeze()
    n = len(rows) - start
    return {"batch": batch, "sync": sync, "transfers": n, "per_s": n / dt, "p50_ms": pct(lat, 0.5) * 1e3,
            "p99_ms": pct(lat, 0.99) * 1e3, "max_ms": max(lat) * 1e3, "mean_ms": statistics.fmean(lat) * 1e3,
            "accounts": len(sc.evidence.accounts["sender"]) + len(sc.evidence.accounts["receiver"])}


def append_only(rows: list[dict], sync: str, tmp: Path) -> list[dict]:
    cfg = load_config()
    canon = [validate_record(r, cfg, now=NOW) for r in rows]
    out = []
    for batch in (1, 100):
        path = tmp / f"append-{batch}-{sync}"
        shutil.rmtree(path, ignore_errors=True)
        st = SQLiteStore(path, synchronous=sync)
        n = min(len(canon), 3000 if batch == 1 else len(canon))
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            st.append(canon[i:i + batch])
        dt = time.perf_counter() - t0
        out.append({"batch": batch, "sync": sync, "appends_per_s": n / dt})
        st.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.05, help="simulated world scale (1.0 ≈ 300,000 transfers)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 100])
    ap.add_argument("--warmup", type=float, default=0.5, help="share of the world streamed before timing")
    ap.add_argument("--sync", nargs="+", default=["NORMAL"], choices=["NORMAL", "FULL"])
    ap.add_argument("--append-only", action="store_true", help="time SQLiteStore.append alone")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() after the warm-up and every 100 calls (long-lived state out of the collector)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kalasag-bench-"))
    try:
        simulate_world(tmp / "world", seed=args.seed, scale=args.scale, inject_errors=0.0, progress=False)
        rows = rows_of(tmp / "world")
        print(f"world: {len(rows):,} transfers (scale {args.scale}, seed {args.seed}); "
              f"load average before: {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
        for sync in args.sync:
            if args.append_only:
                for r in append_only(rows, sync, tmp):
                    print(f"append  batch {r['batch']:>4}  {r['sync']:<6}  {r['appends_per_s']:>9,.0f} transfers/s")
                continue
            for b in args.batch:
                r = run(rows, b, args.warmup, sync, tmp, args.gc_freeze)
                print(f"submit  batch {b:>4}  {sync:<6}{'  gc.freeze' if args.gc_freeze else ''}  {r['per_s']:>7,.0f} transfers/s   per call p50 {r['p50_ms']:.2f} ms"
                      f"  p99 {r['p99_ms']:.2f} ms  max {r['max_ms']:.1f} ms  ({r['transfers']:,} timed, "
                      f"{r['accounts']:,} account-sides)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
