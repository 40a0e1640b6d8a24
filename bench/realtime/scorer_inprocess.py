"""In-process throughput of StreamScorer.submit on a SQLiteStore (no HTTP): transfers per second and
latency per submit call, for batches of 1 and 100.

    .venv/bin/python bench/realtime/scorer_inprocess.py --scale 0.05 --batch 1 100
    .venv/bin/python bench/realtime/scorer_inprocess.py --append-only --sync NORMAL FULL
    .venv/bin/python bench/realtime/scorer_inprocess.py --scale 0.1 --batch 100 --laps 4 --warmup 0.25
    .venv/bin/python bench/realtime/scorer_inprocess.py --scale 0.05 --batch 100 --profile 40

--laps N streams the world N times, lap k moved back by (N − 1 − k) years (as loadgen's --laps: the
same accounts paying on, time running forward), and prints throughput and the state's size per lap
(the state horizon: [service] state_horizon_days, or --horizon-days). --profile N prints the N
most expensive functions (cProfile, cumulative) of the timed part.

A simulated world (kalasag.simulate) is streamed in time order into a fresh state directory, once
per batch size; the first `--warmup` share of it is not timed. Load on the machine is printed
(`os.getloadavg`): other processes share the cores.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import pstats
import resource
import gc
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
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


def lapped(rows: list[dict], laps: int) -> list[list[dict]]:
    """The rows `laps` times, lap k moved back by (laps − 1 − k) × 366 days, txn_ids made unique."""
    out = []
    for k in range(laps):
        shift = -(laps - 1 - k) * timedelta(days=366)
        lap = []
        for r in rows:
            r = dict(r)
            r["txn_id"] = f"L{k}-{r['txn_id']}"
            if shift:
                r["timestamp"] = (datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")) + shift).isoformat()
            lap.append(r)
        out.append(lap)
    return out


def state_size(sc: StreamScorer) -> dict:
    ev = sc.evidence
    k01 = ev.position["receiver"]["I-01"]
    amounts = sum(len(a.states[k01].amounts) for a in ev.accounts["receiver"].values() if a.states is not None)
    return {"account_sides": sum(len(ev.accounts[s]) for s in ("sender", "receiver")), "pairs": ev.pair_count(),
            "i01_amounts": amounts, "compactions": ev.counters["compactions"], "evicted": ev.counters["evicted"],
            "compaction_ms_each": round(1000 * ev.counters["compaction_seconds"] / max(1, ev.counters["compactions"]), 3),
            "queued": len(ev.due), "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def run(rows: list[dict], batch: int, warmup: float, sync: str, tmp: Path, freeze: bool = False,
        laps: int = 1, horizon: float | None = None, profile: int = 0) -> dict:
    over = {"sqlite_synchronous": sync, "snapshot_every": 0}
    if horizon is not None:
        over["state_horizon_days"] = horizon
    cfg = load_config(overrides={"service": over})
    state = tmp / f"state-{batch}-{sync}"
    shutil.rmtree(state, ignore_errors=True)
    sc = StreamScorer(cfg, SQLiteStore(state, synchronous=sync), now=lambda: NOW)
    per_lap = lapped(rows, laps)
    everything = [r for lap in per_lap for r in lap]
    start = int(len(everything) * warmup)
    for i in range(0, start, 100):
        sc.submit(everything[i:min(i + 100, start)])
    lat: list[float] = []
    if freeze:
        gc.freeze()  # the state built so far leaves the collector's generations
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    lap_marks = {len(rows) * (k + 1): k for k in range(laps)}
    lap_t = t0
    lap_n = 0
    if prof:
        prof.enable()
    for k, i in enumerate(range(start, len(everything), batch)):
        t = time.perf_counter()
        sc.submit(everything[i:i + batch])
        lat.append(time.perf_counter() - t)
        lap_n += len(everything[i:i + batch])
        if freeze and k % 100 == 99:
            gc.freeze()
        end = min(i + batch, len(everything))
        if laps > 1 and any(i < m <= end for m in lap_marks):
            now = time.perf_counter()
            lap = lap_marks[next(m for m in lap_marks if i < m <= end)]
            print(f"  lap {lap + 1}: {lap_n / (now - lap_t):,.0f} transfers/s  {state_size(sc)}", flush=True)
            lap_t, lap_n = now, 0
    dt = time.perf_counter() - t0
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(profile)
        pstats.Stats(prof).sort_stats("tottime").print_stats(profile)
    if freeze:
        gc.unfreeze()
    n = len(everything) - start
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
    ap.add_argument("--laps", type=int, default=1, help="stream the world this many times, a year apart")
    ap.add_argument("--horizon-days", type=float, help="[service] state_horizon_days (default: the config's)")
    ap.add_argument("--profile", type=int, default=0, help="print the N most expensive functions (cProfile)")
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
                r = run(rows, b, args.warmup, sync, tmp, args.gc_freeze, args.laps, args.horizon_days, args.profile)
                print(f"submit  batch {b:>4}  {sync:<6}{'  gc.freeze' if args.gc_freeze else ''}  {r['per_s']:>7,.0f} transfers/s   per call p50 {r['p50_ms']:.2f} ms"
                      f"  p99 {r['p99_ms']:.2f} ms  max {r['max_ms']:.1f} ms  ({r['transfers']:,} timed, "
                      f"{r['accounts']:,} account-sides)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
