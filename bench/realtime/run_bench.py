"""Real-time service benchmark: start `kalasag serve` on a fresh state, then drive it with the load
generator (bench/realtime/loadgen.py, a separate process) through the phases asked for.

    .venv/bin/python bench/realtime/run_bench.py --phases single:3000:300 batch:3000:300
    .venv/bin/python bench/realtime/run_bench.py --phases single:0:30 batch:0:30     # closed loop, max

A phase is MODE:RATE:SECONDS (MODE single or batch, RATE transfers/s, 0 = as fast as possible).
Each phase gets a fresh server and state directory unless --same-server. The world (transfers in
time order) is simulated once into bench/out/realtime/world. Results (JSON per phase, with the
server's RSS samples and `uptime` before/after) go to bench/out/realtime/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "realtime"
BIN = Path(sys.executable).with_name("kalasag")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def ensure_world(scale: float, seed: int) -> Path:
    world = OUT / "world"
    path = world / "transfers.csv.gz"
    if not path.exists():
        subprocess.run([str(BIN), "simulate", "--out", str(world), "--seed", str(seed), "--scale", str(scale), "-q"], check=True)
    return path


def start_server(state: Path, log: Path, extra: list[str]) -> tuple[subprocess.Popen, str, str]:
    if state.exists():
        shutil.rmtree(state)
    key = subprocess.run([str(BIN), "apikey", "create", "--scopes", "score,read", "--state", str(state)],
                         capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen([str(BIN), "serve", "--port", "0", "--state", str(state), *extra],
                            stdout=subprocess.PIPE, stderr=log.open("ab"), text=True)
    url = None
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"listening on (http://[\d.]+:\d+)", line)
        if m:
            url = m.group(1)
            break
    if url is None:
        raise SystemExit(f"kalasag serve did not start; see {log}")
    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url, key


def scorer_stats(url: str, key: str) -> dict:
    """The server's own numbers after the phase (/metrics: StreamScorer.stats(), RSS)."""
    try:
        text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=30).text
    except httpx.HTTPError as exc:
        return {"error": str(exc)}
    out = {}
    for line in text.splitlines():
        if line.startswith(("kalasag_scorer_", "process_resident_memory_bytes")):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phases", nargs="+", default=["single:3000:300", "batch:3000:300"])
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--scale", type=float, default=3.5, help="world size if it must be simulated (3.5 ≈ 1M transfers)")
    p.add_argument("--world", help="transfers CSV(.gz) to send instead of the simulated world")
    p.add_argument("--laps", type=int, default=1, help="loadgen --laps")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--same-server", action="store_true", help="one server for all phases (state keeps growing)")
    p.add_argument("--serve-args", default="-q", help="extra `kalasag serve` arguments")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    transfers = Path(args.world) if args.world else ensure_world(args.scale, args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = OUT / f"serve-{stamp}.log"
    server = None
    results = []
    for n, phase in enumerate(args.phases):
        mode, rate, seconds = phase.split(":")
        if server is None or not args.same_server:
            if server is not None:
                server[0].send_signal(signal.SIGTERM)
                server[0].wait(timeout=120)
            server = start_server(OUT / f"state-{stamp}", log, args.serve_args.split())
        proc, url, key = server
        before = uptime()
        out = OUT / f"result-{stamp}-{n}-{mode}.json"
        cmd = [sys.executable, str(Path(__file__).with_name("loadgen.py")), "--url", url, "--key", key,
               "--transfers", str(transfers), "--mode", mode, "--batch-size", str(args.batch_size),
               "--rate", rate, "--duration", seconds, "--connections", str(args.connections),
               "--server-pid", str(proc.pid), "--txn-prefix", f"{stamp}-{n}-", "--out", str(out),
               "--laps", str(args.laps)]
        print(f"phase {phase}: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=False)
        result = json.loads(out.read_text())
        result.update(uptime_before=before, uptime_after=uptime(), phase=phase, serve_args=args.serve_args,
                      scorer_stats=scorer_stats(url, key))
        out.write_text(json.dumps(result, indent=2))
        results.append(result)
    if server is not None:
        server[0].send_signal(signal.SIGTERM)
        server[0].wait(timeout=120)
    print("\n| phase | transfers/s | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | server RSS MiB first→max→last | server CPU µs/transfer | load before → after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for r in results:
        lat, rss = r["latency_ms"], r["server_rss_mib"]
        la = lambda s: s.split("load average:")[-1].strip()  # noqa: E731
        print(f"| {r['phase']} (×{r['batch_size']}) | {r['transfers_per_s']:,.0f} | {r['requests_per_s']:,.0f} | {lat['p50']} | "
              f"{lat['p99']} | {lat['p99.9']} | {lat['max']} | {r['error_count']}{' (backlog abort)' if r['backlog_abort'] else ''} | "
              f"{rss['first']}→{rss['max']}→{rss['last']} | {r['server_cpu_us_per_transfer']} | {la(r['uptime_before'])} → {la(r['uptime_after'])} |")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
