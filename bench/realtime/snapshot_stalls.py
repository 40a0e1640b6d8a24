"""Submit latency on a large state with and without periodic snapshots (in process, no HTTP).

    .venv/bin/python bench/realtime/snapshot_stalls.py snap    # a snapshot every 10,000 transfers
    .venv/bin/python bench/realtime/snapshot_stalls.py none

Builds a state from the first 150,000 transfers of bench/out/realtime/world-s1 (run_bench's world),
then times 40,000 more in submits of 25, with the scorer's housekeeping (snapshot fork, compaction
slices) run after each submit as the service's gate does. docs/benchmarks.md, "Real-time service".
"""
import csv, gzip, time, gc, sys, os, tempfile, shutil, statistics
from pathlib import Path
from datetime import datetime, UTC
from kalasag.model import load_config
from kalasag.service.scorer import StreamScorer
from kalasag.service.sqlite_store import SQLiteStore
NOW = datetime(2026, 11, 26, tzinfo=UTC)
rows = []
with gzip.open('bench/out/realtime/world-s1/transfers.csv.gz', 'rt') as fh:
    for i, r in enumerate(csv.DictReader(fh)):
        if i >= 190000: break
        rows.append({k: v for k, v in r.items() if v})
mode = sys.argv[1]
tmp = Path(tempfile.mkdtemp())
cfg = load_config(overrides={"service": {"snapshot_every": 10000 if mode == "snap" else 0, "snapshot_min_seconds": 0}})
sc = StreamScorer(cfg, SQLiteStore(tmp), now=lambda: NOW)
sc.defer_housekeeping = True
gc.set_threshold(10000, 50, 1000)
for i in range(0, 150000, 100):
    sc.submit(rows[i:i+100]); sc.housekeeping()
    if i % 5000 == 0: gc.freeze()
print("built", flush=True)
lat = []; hk = []
t0 = time.process_time(); w0 = time.perf_counter()
for i in range(150000, 190000, 25):
    t = time.perf_counter(); sc.submit(rows[i:i+25]); t1 = time.perf_counter(); sc.housekeeping(); t2 = time.perf_counter()
    lat.append(t1 - t); hk.append(t2 - t1)
    if i % 2500 == 0: gc.freeze()
cpu = time.process_time() - t0; wall = time.perf_counter() - w0
lat.sort(); hk.sort()
print(mode, "cpu µs/transfer %.0f wall %.0f" % (cpu / 40000 * 1e6, wall / 40000 * 1e6), "submit p50 %.1f p99 %.1f max %.1f ms" % (lat[len(lat)//2]*1e3, lat[int(.99*len(lat))]*1e3, lat[-1]*1e3),
      "housekeeping p99 %.1f max %.1f ms" % (hk[int(.99*len(hk))]*1e3, hk[-1]*1e3), "snapshots", sc.counters["snapshots"], os.getloadavg()[0])
sc._collect_snapshot(wait=True)
shutil.rmtree(tmp)
