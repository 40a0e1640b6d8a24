"""What makes a fresh service's first seconds slow? Times submits of 25 in process (no HTTP) on a
fresh scorer, split into the first call, the first 2,000 transfers, and later ones, with and
without a warm-up (StreamScorer.warm_up), on a state that already knows the accounts (same
process), and on a restarted one (built and snapshotted by another process, then loaded: the
per-transfer caches are cold), with and without filling them from the log's tail.

    .venv/bin/python bench/realtime/coldstart.py [--world bench/out/realtime/world-s02/transfers.csv.gz]

Each case runs in a fresh interpreter (imports and first-call costs are part of what is measured).
docs/service.md, "Readiness and warm-up".
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def rows(path: str, n: int) -> list[dict]:
    out = []
    with gzip.open(path, "rt") as fh:
        for i, r in enumerate(csv.DictReader(fh)):
            if i >= n:
                break
            out.append({k: v for k, v in r.items() if v})
    return out


def case(world: str, mode: str, n: int, state: str | None = None) -> dict:
    t_imp = time.perf_counter()
    from kalasag.model import load_config
    from kalasag.service.scorer import StreamScorer
    from kalasag.service.sqlite_store import SQLiteStore
    imports = time.perf_counter() - t_imp
    data = rows(world, 2 * n)
    tmp = Path(state) if state else Path(tempfile.mkdtemp())
    cfg = load_config(overrides={"service": {"snapshot_every": 0}})
    if mode.startswith("restarted"):
        # the first n transfers applied and snapshotted by another process (a server that stopped)
        subprocess.run([sys.executable, __file__, "--world", world, "--n", str(n), "--case", "build", "--dir", str(tmp)],
                       check=True)
    t = time.perf_counter()
    sc = StreamScorer(cfg, SQLiteStore(tmp), now=lambda: NOW)
    open_s = time.perf_counter() - t
    if mode == "build":
        for i in range(0, n, 100):
            sc.submit(data[i:i + 100])
        sc.snapshot()
        return {}
    warm = 0.0
    if mode in ("warm", "restarted", "restarted-tail"):
        t = time.perf_counter()
        sc.warm_up(400, log_tail=n if mode == "restarted-tail" else 0)
        warm = time.perf_counter() - t
    import gc   # as the service: thresholds raised, the state frozen every second or so

    gc.collect()
    gc.set_threshold(10_000, 50, 1_000)
    gc.freeze()
    batch = data[n:2 * n] if mode.startswith("restarted") else data[:n]
    if mode == "known":   # the same accounts already in the state (a restarted server): time the second half
        for i in range(0, n, 100):
            sc.submit(data[i:i + 100])
        batch = data[n:2 * n]
    lat = []
    for i in range(0, len(batch), 25):
        t = time.perf_counter()
        sc.submit(batch[i:i + 25])
        lat.append(time.perf_counter() - t)
        if i % 1000 == 0:
            gc.freeze()
    sc.store.close()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    ms = [round(x * 1e3, 2) for x in lat]
    rest = sorted(ms[1:])
    return {"mode": mode, "imports_s": round(imports, 2), "open_s": round(open_s, 3), "warm_up_s": round(warm, 3),
            "first_submit_ms": ms[0], "next_10_ms": ms[1:11],
            "first_2000_mean_ms": round(sum(ms[:80]) / 80, 2),
            "rest_p50_ms": rest[len(rest) // 2], "rest_max_ms": rest[-1],
            "new_accounts": sum(len(v) for v in sc.evidence.accounts.values()), "load": os.getloadavg()[0]}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--world", default="bench/out/realtime/world-s02/transfers.csv.gz")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--case")
    p.add_argument("--dir")
    a = p.parse_args()
    if a.case:
        print(json.dumps(case(a.world, a.case, a.n, a.dir)))
        return 0
    for mode in ("cold", "warm", "known", "restarted", "restarted-tail"):
        r = subprocess.run([sys.executable, __file__, "--world", a.world, "--n", str(a.n), "--case", mode],
                           capture_output=True, text=True)
        print(r.stdout.strip() or r.stderr[-2000:], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
