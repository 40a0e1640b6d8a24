"""Scale model of a large scan: time and temporary disk of each heavy step under a small DuckDB cap.

    .venv/bin/python bench/scale_model.py INPUT --memory-limit 500MB [--only I-05 I-21 …]

100M transfers under the default 5 GB cap are, for DuckDB, about 10M transfers under 500 MB: an
operator that cannot spill (a `median` aggregate, a chain of joins whose hash tables must all fit)
fails here in minutes instead of an hour into a 100M scan (docs/benchmarks.md, "Session 11").
Runs ingest, `Context.build`, the per-account base table and every indicator of both sides (or
those named by `--only`), each materialized as the scan does, and prints per step: wall seconds,
CPU seconds of this process, the peak (sampled every 0.3 s) and final size of the temporary folder
(the engine's spill folder and work database file), or the one-line error a step failed with.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time

from scan_throughput import _tree_bytes  # bench/ is on the path when this script runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="transfers (CSV, Parquet file or directory)")
    ap.add_argument("--memory-limit", default="500MB")
    ap.add_argument("--only", nargs="*", default=[], help="indicator ids to run (default: all)")
    ap.add_argument("--network", action="store_true",
                    help="the network stage instead: each side's joined evidence, first pass, N-03, N-04")
    args = ap.parse_args()

    from kalasag import ingest
    from kalasag.engine import connect
    from kalasag.indicators import evidence as ev
    from kalasag.indicators.context import Context
    from kalasag.indicators.registry import for_side
    from kalasag.model import load_config
    from kalasag.network.propagation import set_first_pass
    from kalasag.network.stage import network_indicators

    folder = tempfile.mkdtemp(prefix="kalasag-scale-model-")
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_bytes(folder))
            time.sleep(0.3)

    threading.Thread(target=sample, daemon=True).start()
    eng = connect("duckdb", memory_limit=args.memory_limit, temp_directory=folder)
    cfg = load_config(None)

    def step(name: str, make):  # noqa: ANN001, ANN202
        peak[0] = _tree_bytes(folder)
        t, c = time.perf_counter(), time.process_time()
        try:
            out = make()
        except Exception as exc:  # noqa: BLE001 - report and go on with the next step
            print(f"{name:24s} FAILED after a peak of {peak[0] >> 20:,} MiB: {str(exc).splitlines()[0][:160]}", flush=True)
            return None
        print(f"{name:24s} {time.perf_counter() - t:7.1f} s  cpu {time.process_time() - c:6.1f} s  "
              f"peak {peak[0] >> 20:7,} MiB  after {_tree_bytes(folder) >> 20:7,} MiB", flush=True)
        return out

    try:
        ing = step("ingest", lambda: ingest.ingest(eng, args.input, config=cfg))
        ctx = step("context", lambda: Context.build(eng, ing.transfers, cfg)) if ing else None
        if ctx is None:
            return
        if not args.network:
            for side in ("sender", "receiver"):
                step(f"{side} base", lambda: eng.materialize(ev._base(ctx, side)))  # noqa: B023
                for ind in for_side(side):
                    if not args.only or ind.id in args.only:
                        step(f"{side} {ind.id}", lambda: eng.materialize(ind.evidence(ctx, side)))  # noqa: B023
            return
        # the network stage: the joined evidence of each side, the first-pass scores, then each
        # network indicator (N-03, N-04), as network_evidence runs them
        sides = {side: step(f"{side} evidence", lambda: ev.side_evidence(ctx, side)) for side in ("sender", "receiver")}  # noqa: B023
        if any(t is None for t in sides.values()):
            return
        for side, table in sides.items():
            step(f"{side} first pass", lambda: set_first_pass(ctx, side, table, cfg))  # noqa: B023
        for side in ("sender", "receiver"):
            for ind in network_indicators(side):
                if not args.only or ind.id in args.only:
                    step(f"{side} {ind.id}", lambda: eng.materialize(ind.evidence(ctx, side)))  # noqa: B023
    finally:
        stop.set()
        eng.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
