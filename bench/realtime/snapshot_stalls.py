"""Submit latency on a large state with and without periodic snapshots (in process, no HTTP).

    .venv/bin/python bench/realtime/snapshot_stalls.py slices   # sliced snapshots (the default mode)
    .venv/bin/python bench/realtime/snapshot_stalls.py fork     # a forked child encodes each snapshot
    .venv/bin/python bench/realtime/snapshot_stalls.py none     # no snapshot
    [--world bench/out/realtime/world-s1/transfers.csv.gz --build 150000 --timed 40000 --every 10000]

Builds a state from the first --build transfers of the world, then times --timed more in submits
of 25, with the scorer's housekeeping (snapshot slices or fork, compaction slices) run after each
submit as the service's gate does, and the garbage collector set up as the service does. Reports
per submit and per "request" (submit + the housekeeping queued before the next submit: what the
next request waits for), in wall time and in the thread's CPU time (user + system, so that a
fork's page-table copy and copy-on-write faults count; robust to other processes' load).
Snapshots here are as frequent as they can be (snapshot_min_seconds 0, snapshot_cpu_share 1.0):
a stress test, not the default spacing. docs/benchmarks.md, "Real-time service".
"""
import argparse
import csv
import gc
import gzip
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from kalasag.model import load_config
from kalasag.service.scorer import StreamScorer
from kalasag.service.sqlite_store import SQLiteStore

NOW = datetime(2026, 11, 26, tzinfo=UTC)
p = argparse.ArgumentParser()
p.add_argument("mode", choices=("slices", "fork", "none"))
p.add_argument("--world", default="bench/out/realtime/world-s1/transfers.csv.gz")
p.add_argument("--build", type=int, default=150_000)
p.add_argument("--timed", type=int, default=40_000)
p.add_argument("--every", type=int, default=10_000, help="transfers between snapshots")
a = p.parse_args()
rows = []
with gzip.open(a.world, "rt") as fh:
    for i, r in enumerate(csv.DictReader(fh)):
        if i >= a.build + a.timed:
            break
        rows.append({k: v for k, v in r.items() if v})
tmp = Path(tempfile.mkdtemp())
svc = {"snapshot_every": a.every if a.mode != "none" else 0, "snapshot_min_seconds": 0, "snapshot_cpu_share": 1.0,
       "snapshot_mode": "fork" if a.mode == "fork" else "slices"}
sc = StreamScorer(load_config(overrides={"service": svc}), SQLiteStore(tmp), now=lambda: NOW)
sc.defer_housekeeping = True
gc.set_threshold(10000, 50, 1000)
for i in range(0, a.build, 100):
    sc.submit(rows[i:i + 100])
    sc.housekeeping()
    if i % 5000 == 0:
        gc.freeze()
sc._collect_snapshot(wait=True)
built_snaps = sc.counters["snapshots"]
print("built", a.build, "snapshots so far", built_snaps, flush=True)
sub, req, hk, cpu_req = [], [], [], []
t0 = time.process_time()
w0 = time.perf_counter()
for i in range(a.build, a.build + a.timed, 25):
    t = time.perf_counter()
    c = time.thread_time()   # this thread's CPU (user + system: a fork's page-table copy and page faults count)
    sc.submit(rows[i:i + 25])
    t1 = time.perf_counter()
    sc.housekeeping()
    t2 = time.perf_counter()
    cpu_req.append(time.thread_time() - c)
    sub.append(t1 - t)
    hk.append(t2 - t1)
    req.append(t2 - t)
    if i % 2500 == 0:
        gc.freeze()
cpu = time.process_time() - t0
wall = time.perf_counter() - w0
sc._collect_snapshot(wait=True)
snaps = sc.counters["snapshots"] - built_snaps
for v in (sub, req, hk, cpu_req):
    v.sort()
q = lambda v, x: v[min(len(v) - 1, int(x * len(v)))] * 1e3  # noqa: E731
print(f"{a.mode}: cpu {cpu / a.timed * 1e6:.0f} µs/transfer (this process), wall {wall / a.timed * 1e6:.0f} µs/transfer; "
      f"submit p50 {q(sub, .5):.1f} p99 {q(sub, .99):.1f} max {sub[-1] * 1e3:.1f} ms; "
      f"submit+housekeeping p99 {q(req, .99):.1f} p99.9 {q(req, .999):.1f} max {req[-1] * 1e3:.1f} ms; "
      f"housekeeping p99 {q(hk, .99):.1f} max {hk[-1] * 1e3:.1f} ms; "
      f"thread CPU of submit+housekeeping p50 {q(cpu_req, .5):.1f} p99 {q(cpu_req, .99):.1f} p99.9 {q(cpu_req, .999):.1f} "
      f"max {cpu_req[-1] * 1e3:.1f} ms; snapshots completed during the timed part (or right after it) {snaps}; "
      f"last {sc.last_snapshot}; load {os.getloadavg()[0]:.1f}", flush=True)
shutil.rmtree(tmp)
