"""In-process CPU per transfer of the scorer (no HTTP, no snapshots): a machine-speed yardstick.

    .venv/bin/python bench/realtime/submit_cpu.py [--world bench/out/realtime/world-s1/transfers.csv.gz]

Builds a state from the first 100,000 transfers of the world (batches of 100), then times 30,000
more in batches of 25 (process CPU, so other processes' load matters little). Comparing two
versions: run the old one from a git worktree with PYTHONPATH=<worktree>/src. docs/benchmarks.md,
"Real-time service".
"""
import argparse
import csv
import gzip
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import kalasag
from kalasag.model import load_config
from kalasag.service.scorer import StreamScorer
from kalasag.service.sqlite_store import SQLiteStore

NOW = datetime(2026, 11, 26, tzinfo=UTC)
p = argparse.ArgumentParser()
p.add_argument("--world", default="bench/out/realtime/world-s1/transfers.csv.gz")
p.add_argument("--build", type=int, default=100_000)
p.add_argument("--timed", type=int, default=30_000)
a = p.parse_args()
rows = []
with gzip.open(a.world, "rt") as fh:
    for i, r in enumerate(csv.DictReader(fh)):
        if i >= a.build + a.timed:
            break
        rows.append({k: v for k, v in r.items() if v})
sc = StreamScorer(load_config(overrides={"service": {"snapshot_every": 0}}), SQLiteStore(Path(tempfile.mkdtemp())),
                  now=lambda: NOW)
t0 = time.process_time()
for i in range(0, a.build, 100):
    sc.submit(rows[i:i + 100])
t1 = time.process_time()
for i in range(a.build, a.build + a.timed, 25):
    sc.submit(rows[i:i + 25])
t2 = time.process_time()
print(f"kalasag from {Path(kalasag.__file__).parent}")
print(f"build: {(t1 - t0) / a.build * 1e6:.0f} µs/transfer (batches of 100); "
      f"timed: {(t2 - t1) / a.timed * 1e6:.0f} µs/transfer (batches of 25)")
