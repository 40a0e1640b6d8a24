"""Does writing a large snapshot file slow the log's appends? (docs/benchmarks.md, "Session 9":
on this machine it does not.)

    .venv/bin/python bench/realtime/snapshot_io.py                       # 120 MB snapshots, 4 rounds
    .venv/bin/python bench/realtime/snapshot_io.py --mb 50 --rounds 2

A SQLiteStore (as the service opens it: checkpoint thread on, `synchronous` NORMAL) in a temporary
directory under `--dir` (put it on the state's file system) takes appends of 25 transfers every
8 ms (3,125 transfers/s) on one thread, while another thread saves a snapshot of `--mb` MB (pieces
of 2.5 kB, as a sliced snapshot makes them) every `--every` seconds through the store's own
`save_snapshot_pieces` (written, fsynced, renamed, the previous file deleted). Prints the appends'
latency percentiles inside the windows from the start of each snapshot write to 1 s after its end,
and outside them. Needs a quiet machine; nothing else of Kalasag runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from kalasag.service.sqlite_store import SQLiteStore


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def run(mb: int, rounds: int, every: float, where: Path) -> tuple[list[float], list[float]]:
    d = Path(tempfile.mkdtemp(prefix="kalasag-snapio-", dir=where))
    store = SQLiteStore(d)
    piece = b"x" * 2500
    n_pieces = mb * 1_000_000 // len(piece)
    windows: list[tuple[float, float]] = []
    stop = threading.Event()

    def snapshots() -> None:
        time.sleep(every / 2)
        for r in range(rounds):
            t0 = time.perf_counter()
            store.save_snapshot_pieces(1000 + r, [piece] * n_pieces)
            t1 = time.perf_counter()
            windows.append((t0, t1 + 1.0))
            print(f"  snapshot {r + 1} written in {t1 - t0:.2f} s", file=sys.stderr)
            if stop.wait(every):
                return
        stop.set()

    lat: list[tuple[float, float]] = []
    th = threading.Thread(target=snapshots, daemon=True)
    th.start()
    seq = 0
    nxt = time.perf_counter()
    while not stop.is_set():
        batch = [{"txn_id": f"t{seq + i}", "sender_id": f"s{(seq + i) % 26000}",
                  "receiver_id": f"r{(seq + i) % 22000}", "amount": "25.00", "note": "y" * 200} for i in range(25)]
        seq += 25
        t0 = time.perf_counter()
        store.append(batch)
        lat.append((t0, (time.perf_counter() - t0) * 1000))
        nxt += 0.008
        time.sleep(max(0.0, nxt - time.perf_counter()))
    th.join()
    store.close()
    for f in d.iterdir():
        f.unlink()
    d.rmdir()
    inside = [ms for t, ms in lat if any(a <= t <= b for a, b in windows)]
    outside = [ms for t, ms in lat if not any(a <= t <= b for a, b in windows)]
    return inside, outside


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--every", type=float, default=6.0)
    ap.add_argument("--dir", type=Path, default=Path("bench/out"), help="where the temporary store goes")
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}")
    i, o = run(a.mb, a.rounds, a.every, a.dir)
    print("| appends (ms) | n | p50 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for name, xs in (("while a snapshot is written (+1 s)", i), ("otherwise", o)):
        print(f"| {name} | {len(xs)} | {statistics.median(xs):.2f} | {pct(xs, .99):.2f} | {max(xs):.2f} |")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
