"""WAL written per transfer by the log's inserts, with and without two account indexes on the log
(sender, receiver) — the measurement behind the SQLite store's account index file
(kalasag.service.sqlite_store, module doc; docs/benchmarks.md, "Session 8").

    .venv/bin/python bench/realtime/wal_volume.py                  # 1.2M rows in the log, 50,000 measured
    .venv/bin/python bench/realtime/wal_volume.py --log-rows 300000 --transfers 20000

A log of `--log-rows` rows (random accounts among 50,000, records of ≈ 300 bytes) is built once in a
temporary directory; then, on a copy each time, `--transfers` more are inserted in batches of
`--batch` (autocheckpoint off, so the WAL holds everything written) with the two indexes and
without them. Prints KiB of WAL and µs of insert time per transfer. Plain sqlite3: no Kalasag code.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import orjson

SCHEMA = ("CREATE TABLE log (seq INTEGER PRIMARY KEY, txn_id TEXT NOT NULL UNIQUE, sender_id TEXT NOT NULL,"
          " receiver_id TEXT NOT NULL, record TEXT NOT NULL)")
INDEXES = ("CREATE INDEX log_sender ON log (sender_id, seq)", "CREATE INDEX log_receiver ON log (receiver_id, seq)")
INSERT = "INSERT INTO log (txn_id, sender_id, receiver_id, record) VALUES (?, ?, ?, ?)"


def rows(rnd: random.Random, accounts: list[str], start: int, n: int, prefix: str) -> list[tuple[str, str, str, str]]:
    out = []
    for i in range(start, start + n):
        rec = {"txn_id": f"{prefix}{i}", "sender_id": rnd.choice(accounts), "receiver_id": rnd.choice(accounts),
               "amount": "25.00", "note": "y" * 200}
        out.append((rec["txn_id"], rec["sender_id"], rec["receiver_id"], orjson.dumps(rec).decode()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--log-rows", type=int, default=1_200_000)
    ap.add_argument("--transfers", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    rnd = random.Random(1)
    accounts = [f"A{i:06d}" for i in range(50_000)]
    tmp = Path(tempfile.mkdtemp(prefix="kalasag-wal-"))
    try:
        base = tmp / "base.sqlite3"
        c = sqlite3.connect(base, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute(SCHEMA)
        for stmt in INDEXES:
            c.execute(stmt)
        for k in range(0, args.log_rows, 50_000):
            c.execute("BEGIN")
            c.executemany(INSERT, rows(rnd, accounts, k, min(50_000, args.log_rows - k), "p"))
            c.execute("COMMIT")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        for label, drop in (("with the two account indexes", False), ("without them", True)):
            db = tmp / "run.sqlite3"
            shutil.copy(base, db)
            c = sqlite3.connect(db, isolation_level=None)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA wal_autocheckpoint=0")
            if drop:
                c.execute("DROP INDEX log_sender")
                c.execute("DROP INDEX log_receiver")
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            batches = [rows(rnd, accounts, b, args.batch, "q") for b in range(0, args.transfers, args.batch)]
            t0 = time.perf_counter()
            for batch in batches:
                c.execute("BEGIN IMMEDIATE")
                c.executemany(INSERT, batch)
                c.execute("COMMIT")
            spent = time.perf_counter() - t0
            wal = os.path.getsize(str(db) + "-wal")
            c.close()
            for suffix in ("", "-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
            n = len(batches) * args.batch
            print(f"{label:30s} WAL {wal / n / 1024:5.1f} KiB per transfer, insert {spent / n * 1e6:5.0f} µs per transfer")
        print(f"(log of {args.log_rows:,} rows, {args.transfers:,} transfers in batches of {args.batch}; load average {os.getloadavg()[0]:.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
