"""Scan throughput and peak memory at given world sizes.

    .venv/bin/python bench/scan_throughput.py --sizes 1000000 10000000

For each size it simulates a world once (cached under bench/out/), then runs `kalasag scan` in a
child process (no report, quiet) and records wall time, transfers/second and the child's peak RSS.
It also times a plain DuckDB `GROUP BY sender_id` over the same file — the floor no scan can beat —
and samples the size of the scan's DuckDB spill folder (`--temp-dir`, default the system's).
Results are appended as JSON lines to bench/out/scan_throughput.jsonl and printed as a markdown row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCALE_PER_TRANSFER = 1 / 300_000  # simulate: scale 1.0 ≈ 300,000 transfers


def world(n: int, fmt: str) -> Path:
    d = ROOT / "bench" / "out" / f"world-{n}-{fmt.replace('.', '')}"
    parts = max(1, n // 2_000_000) if fmt == "parquet" else 1
    target = d / ("transfers.csv.gz" if fmt != "parquet" else ("transfers" if parts > 1 else "transfers.parquet"))
    if not target.exists():
        subprocess.run(
            [str(BIN / "kalasag"), "simulate", "--out", str(d), "--seed", "11", "--scale", str(n * SCALE_PER_TRANSFER),
             "--format", fmt, "--parts", str(parts), "--quiet"],
            check=True,
        )
    return target


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:  # DuckDB removes spill files while we count
                pass
    return total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def child_run(cmd: list[str], spill_parent: Path) -> tuple[float, float, float, float, float, float]:
    """Run a command, return (seconds, peak RSS of that child in MiB, CPU seconds of that child,
    and in MiB, sampled every 2 s: the peak size of its DuckDB spill folder, of its work database
    files, and of both together). CPU seconds (user + system) say more than wall time on a machine
    shared with other jobs; the spill folder (`kalasag-duckdb-<pid>` under `--temp-dir`) and the
    work database beside it (`kalasag-duckdb-<pid>-<n>.duckdb`) are what fill a disk at 100M."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    spill = spill_parent / f"kalasag-duckdb-{proc.pid}"
    peak_spill = peak_work = peak_disk = 0
    while proc.poll() is None:
        s = _tree_bytes(spill)
        w = sum(_size(f) for f in spill_parent.glob(f"kalasag-duckdb-{proc.pid}-*.duckdb*"))
        peak_spill, peak_work, peak_disk = max(peak_spill, s), max(peak_work, w), max(peak_disk, s + w)
        time.sleep(2)
    secs = time.perf_counter() - t0
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    # ru_maxrss of RUSAGE_CHILDREN is the max over all children so far: run sizes in increasing order
    return secs, max(r1.ru_maxrss, r0.ru_maxrss) / 1024, cpu, peak_spill / 2**20, peak_work / 2**20, peak_disk / 2**20


def groupby_floor(path: Path) -> float:
    code = (
        "import duckdb,time,sys;p=sys.argv[1];c=duckdb.connect();c.execute('SET enable_progress_bar=false');t=time.perf_counter();"
        "src=f\"read_csv('{p}', all_varchar=true)\" if p.endswith('.csv.gz') else (f\"read_parquet('{p}')\" if p.endswith('.parquet') else f\"read_parquet('{p}/*.parquet')\");"
        "c.sql(f'select sender_id, count(*), sum(try_cast(amount as double)) from {src} group by 1').fetchall();"
        "print(time.perf_counter()-t)"
    )
    res = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--format", default="parquet", choices=["parquet", "csv.gz"])
    ap.add_argument("--temp-dir", type=Path, default=Path(tempfile.gettempdir()),
                    help="passed to kalasag scan --temp-dir: where DuckDB spills (tens of GB at 100M)")
    args = ap.parse_args()
    for n in sorted(args.sizes):
        path = world(n, args.format)
        rows = int(json.loads((path.parent / "world.json").read_text())["n_transfers"])
        out = ROOT / "bench" / "out" / f"run-{n}"
        load = os.getloadavg()[0]
        secs, peak, cpu, spill, work, disk = child_run([str(BIN / "kalasag"), "scan", str(path), "--out", str(out), "--quiet", "--no-report",
                                            "--temp-dir", str(args.temp_dir)], args.temp_dir)
        floor = groupby_floor(path)
        rec = {
            "transfers": rows, "format": args.format, "seconds": round(secs, 1), "transfers_per_s": round(rows / secs),
            "peak_rss_mib": round(peak), "peak_spill_mib": round(spill), "peak_work_db_mib": round(work), "peak_temp_disk_mib": round(disk), "cpu_s": round(cpu, 1), "load_avg_1min_before": round(load, 2),
            "load_avg_1min_after": round(os.getloadavg()[0], 2), "groupby_floor_s": round(floor, 2), "ratio_to_floor": round(secs / floor, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d"),
        }
        (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
        with (ROOT / "bench" / "out" / "scan_throughput.jsonl").open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(f"| {rows:,} | {args.format} | {secs:.1f} s | {rows / secs:,.0f} | {peak:,.0f} MiB | {spill:,.0f} MiB | {work:,.0f} MiB | {disk:,.0f} MiB | {cpu:.0f} s | {floor:.2f} s | {secs / floor:.1f}× |")


if __name__ == "__main__":
    main()
