"""Scan one simulated world on DuckDB and through a Spark Connect server; compare the results.

Starts a local Spark Connect server (Spark 4's `SparkConnectServer` from the pyspark package, with
Splink's similarity jar on its classpath, as docs/scale.md tells a cluster operator to do), runs
`kalasag scan --engine spark --spark-master sc://localhost:PORT` and `kalasag scan` (DuckDB) on the
same file in child processes, and checks: the same scored accounts, scores equal to 1e-9, the same
alerts, network alerts and entity links. Not run in CI: a Connect scan of even a tiny world takes
minutes (every step is a gRPC round trip), and the CI budget is 15 minutes.

    .venv/bin/python bench/spark_connect.py [--seed 5 --scale 0.05] [--port 15099] [--out bench/out/spark_connect]

Needs `grpcio`, `grpcio-status`, `googleapis-common-protos` (pyspark's `connect` extra) and Java 17.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def wait_port(port: int, timeout: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(1)
    raise SystemExit(f"Spark Connect server did not open port {port} within {timeout:.0f} s")


def start_server(port: int, log: Path) -> subprocess.Popen:
    import pyspark
    from splink.backends.spark import similarity_jar_location

    env = dict(os.environ, SPARK_HOME=str(Path(pyspark.__file__).parent))
    cmd = [str(BIN / "spark-submit"), "--master", "local[2]", "--jars", str(similarity_jar_location()),
           "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
           "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.sql.shuffle.partitions=4", "--conf", "spark.driver.memory=2g", "spark-internal"]
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def scan(transfers: Path, out: Path, extra: list[str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([str(BIN / "kalasag"), "scan", str(transfers), "--out", str(out), "--quiet",
                          "--no-report", "--now", "2026-01-01T00:00:00Z", *extra],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"scan {extra or 'duckdb'} failed: {res.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - t0


def compare(duck: Path, spark: Path) -> dict:
    key = ["account_id", "side"]
    d, s = pd.read_parquet(duck / "scores.parquet"), pd.read_parquet(spark / "scores.parquet")
    m = d.merge(s, on=key, suffixes=("_d", "_s"), how="outer", indicator=True)
    both = m[m["_merge"] == "both"]
    ad, as_ = pd.read_csv(duck / "alerts.csv"), pd.read_csv(spark / "alerts.csv")
    out = {
        "scored_duckdb": len(d), "scored_spark": len(s), "scored_in_both": len(both),
        "max_score_difference": float((both.score_d - both.score_s).abs().max()) if len(both) else None,
        "alerts_duckdb": len(ad), "alerts_spark": len(as_),
        "same_alerted_accounts": sorted(map(tuple, ad[key].values.tolist())) == sorted(map(tuple, as_[key].values.tolist())),
    }
    for name in ("networks.csv", "entities.csv", "entity_alerts.csv"):
        if (duck / name).exists() and (spark / name).exists():
            a, b = pd.read_csv(duck / name), pd.read_csv(spark / name)
            out[f"{name} rows duckdb/spark"] = f"{len(a)}/{len(b)}"
    if (duck / "entities.csv").exists() and (spark / "entities.csv").exists():
        a, b = pd.read_csv(duck / "entities.csv"), pd.read_csv(spark / "entities.csv")
        def groups(e: pd.DataFrame) -> set[frozenset]:
            return {frozenset(map(tuple, g[key].values.tolist())) for _, g in e.groupby("entity_id") if len(g) > 1}
        out["same_entity_groups"] = groups(a) == groups(b)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--port", type=int, default=15099)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "spark_connect")
    a = ap.parse_args()
    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    world = a.out / "world"
    subprocess.run([str(BIN / "kalasag"), "simulate", "--out", str(world), "--seed", str(a.seed),
                    "--scale", str(a.scale), "--quiet"], check=True, capture_output=True)
    transfers = world / "transfers.csv.gz"
    load0 = os.getloadavg()[0]
    t_duck = scan(transfers, a.out / "duckdb", [])
    server = start_server(a.port, a.out / "server.log")
    try:
        t0 = time.perf_counter()
        wait_port(a.port, 180)
        t_start = time.perf_counter() - t0
        t_spark = scan(transfers, a.out / "connect", ["--engine", "spark", "--spark-master", f"sc://localhost:{a.port}"])
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    result = {"world": f"seed {a.seed}, scale {a.scale}", "transfers": len(pd.read_csv(transfers, usecols=[0])),
              "duckdb_seconds": round(t_duck, 1), "connect_server_start_seconds": round(t_start, 1),
              "connect_scan_seconds": round(t_spark, 1), "load_average": f"{load0:.1f} → {os.getloadavg()[0]:.1f}",
              **compare(a.out / "duckdb", a.out / "connect")}
    (a.out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    ok = result["same_alerted_accounts"] and (result["max_score_difference"] or 0) <= 1e-9 \
        and result["scored_duckdb"] == result["scored_spark"] == result["scored_in_both"] \
        and result.get("same_entity_groups", True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
