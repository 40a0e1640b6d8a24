"""Real-time service benchmark: start `kalasag serve` on a fresh state, then drive it with the load
generator (bench/realtime/loadgen.py, a separate process) through the phases asked for.

    .venv/bin/python bench/realtime/run_bench.py --phases single:3000:300 batch:3000:300
    .venv/bin/python bench/realtime/run_bench.py --phases single:0:30 batch:0:30     # closed loop, max

A phase is MODE:RATE:SECONDS (MODE single or batch, RATE transfers/s, 0 = as fast as possible).
Each phase gets a fresh server and state directory unless --same-server. A phase starts once the
server's GET /readyz answers 200 (state loaded, warm-up done); the time to listening and to ready
is reported. --preload-laps N first sends N laps of the world (closed loop) so that the measured
phases run on a state that knows the accounts (from lap N on); --restart then stops the server
(snapshot at shutdown) and starts it again on that state, as a production restart would. The world
(transfers in time order) is simulated once into bench/out/realtime/world. Results (JSON per phase,
with the server's RSS samples, the worst latency per 10-s window and `uptime` before/after) go to
bench/out/realtime/.
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


def start_server(state: Path, log: Path, extra: list[str], key: str | None = None,
                 ready_timeout: float = 600.0) -> tuple[subprocess.Popen, str, str, dict]:
    """Start `kalasag serve` on `state` (a fresh one, with a new API key, unless `key` is given: a
    restart on the state left by the previous server) and wait until GET /readyz answers 200 (the
    state is loaded and the warm-up has run). Returns (process, url, key, timings)."""
    if key is None:
        if state.exists():
            shutil.rmtree(state)
        key = subprocess.run([str(BIN), "apikey", "create", "--scopes", "score,read", "--state", str(state)],
                             capture_output=True, text=True, check=True).stdout.strip()
    t0 = time.perf_counter()
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
    listening = time.perf_counter() - t0
    body: dict = {}
    deadline = time.perf_counter() + ready_timeout
    while True:
        try:
            r = httpx.get(url + "/readyz", timeout=1)
            if r.status_code == 200:
                body = r.json()
                break
        except httpx.HTTPError:
            pass
        if time.perf_counter() > deadline or proc.poll() is not None:
            raise SystemExit(f"kalasag serve not ready after {ready_timeout:.0f} s; see {log}")
        time.sleep(0.05)
    timings = {"listening_s": round(listening, 2), "ready_s": round(time.perf_counter() - t0, 2),
               "warm_up_s": body.get("warm_up_seconds")}
    print(f"server at {url}: listening after {timings['listening_s']} s (state loaded), ready after "
          f"{timings['ready_s']} s (warm-up {timings['warm_up_s']} s)", flush=True)
    return proc, url, key, timings


def stop_server(proc: subprocess.Popen) -> float:
    """SIGTERM (finish the requests in flight, snapshot at shutdown); returns the seconds it took."""
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=600)
    return round(time.perf_counter() - t0, 2)


def count_rows(path: Path) -> int:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:  # type: ignore[operator]
        return sum(1 for _ in fh) - 1


def loadgen(url: str, key: str, pid: int, transfers: Path, out: Path, mode: str, batch: int, rate: str,
            seconds: str, connections: int, prefix: str, laps: int, start_lap: int = 0,
            max_transfers: int | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).with_name("loadgen.py")), "--url", url, "--key", key,
           "--transfers", str(transfers), "--mode", mode, "--batch-size", str(batch),
           "--rate", rate, "--duration", seconds, "--connections", str(connections),
           "--server-pid", str(pid), "--txn-prefix", prefix, "--out", str(out),
           "--laps", str(laps), "--start-lap", str(start_lap)]
    if max_transfers:
        cmd += ["--max-transfers", str(max_transfers)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


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
    p.add_argument("--preload-laps", type=int, default=0,
                   help="before the phases, send this many laps of the world (closed loop, batches of 100) to the "
                        "server: the measured phases then start on a state that knows the accounts (lap N on)")
    p.add_argument("--restart", action="store_true",
                   help="after the preload, stop the server (snapshot at shutdown) and start it again on its state, "
                        "as a production restart: the phases measure a restarted server")
    args = p.parse_args()
    if (args.preload_laps or args.restart) and not args.same_server:
        args.same_server = True   # the preloaded state is what the phases run on
    OUT.mkdir(parents=True, exist_ok=True)
    transfers = Path(args.world) if args.world else ensure_world(args.scale, args.seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = OUT / f"serve-{stamp}.log"
    state = OUT / f"state-{stamp}"
    server = None
    results = []
    start_lap = 0
    preload: dict = {}
    if args.preload_laps:
        server = start_server(state, log, args.serve_args.split())
        n = count_rows(transfers) * args.preload_laps
        before = uptime()
        r = loadgen(server[1], server[2], server[0].pid, transfers, OUT / f"result-{stamp}-preload.json", "batch",
                    100, "0", "3600", 4, f"{stamp}-p-", args.laps, 0, n)
        preload = {"transfers": r["transfers_ok"], "seconds": r["elapsed_s"], "errors": r["error_count"],
                   "transfers_per_s": r["transfers_per_s"], "uptime_before": before, "uptime_after": uptime(),
                   "server_start": server[3], "rss_mib_after": r["server_rss_mib"]["last"]}
        start_lap = args.preload_laps
        print(f"preload: {preload}", flush=True)
        if args.restart:
            preload["shutdown_s"] = stop_server(server[0])
            server = start_server(state, log, args.serve_args.split(), key=server[2])
            preload["restart"] = server[3]
    for n, phase in enumerate(args.phases):
        mode, rate, seconds = phase.split(":")
        if server is None or not args.same_server:
            if server is not None:
                stop_server(server[0])
            server = start_server(state, log, args.serve_args.split())
        proc, url, key, timings = server
        before = uptime()
        out = OUT / f"result-{stamp}-{n}-{mode}.json"
        result = loadgen(url, key, proc.pid, transfers, out, mode, args.batch_size, rate, seconds, args.connections,
                         f"{stamp}-{n}-", args.laps, start_lap)
        result.update(uptime_before=before, uptime_after=uptime(), phase=phase, serve_args=args.serve_args,
                      server_start=timings, preload=preload, start_lap=start_lap,
                      scorer_stats=scorer_stats(url, key))
        out.write_text(json.dumps(result, indent=2))
        results.append(result)
        print(f"phase {phase}: worst latency per 10 s window (start s, transfers, max ms): {result['timeline_10s']}",
              flush=True)
    if server is not None:
        stop_server(server[0])
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
