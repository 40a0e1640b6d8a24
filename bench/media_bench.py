"""Media benchmark: hashing speed, and exact range matching over 1M / 10M random banked PDQ hashes
with 10,000 queries — Kalasag's multi-index hashing vs FAISS IndexBinaryFlat brute force in the
same run (identical results required). Numbers go to docs/benchmarks.md ("## Media"). Not run in tests.

    .venv/bin/python bench/media_bench.py --sizes 1000000 10000000 --queries 10000
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from kalasag.media import PdqIndex, hash_image, hash_video, load_media_config, query_variants
from kalasag.media.variants import partial_variants
from kalasag.media.hashing import load_rgb
from kalasag.media.robustness import generated_image

VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media" / "video"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_hashing(n: int) -> None:
    cfg = load_media_config()
    pcfg = load_media_config(partial_match=True)  # opt-in: measured on, so the column shows their cost
    print("### Hashing (1 thread, decode included)\n")
    print("| input | images/s (hash + MD5/SHA-256) | query, whole-picture variants: ms/image | "
          "+ partial variants (all query variants): ms/image |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in ((512, 512), (1600, 1000)):
            paths = []
            for i in range(n):
                p = Path(tmp) / f"g{w}_{i}.jpg"
                Image.fromarray(generated_image(1000 + i, (w, h))).save(p, quality=90)
                paths.append(p)
            t = time.perf_counter()
            for p in paths:
                hash_image(p)
            plain = n / (time.perf_counter() - t)
            some = paths[: max(2, n // 4)]
            t = time.perf_counter()
            for p in some:
                nv = len(query_variants(load_rgb(p), cfg))
            whole_ms = 1000 * (time.perf_counter() - t) / len(some)
            t = time.perf_counter()
            for p in some:
                rgb = load_rgb(p)
                na = len(query_variants(rgb, cfg)) + len(partial_variants(rgb, pcfg))
            all_ms = 1000 * (time.perf_counter() - t) / len(some)
            print(f"| {w}×{h} JPEG | {plain:.1f} | {whole_ms:.0f} ({nv} hashes) | {all_ms:.0f} ({na} variants) |", flush=True)
    if VIDEO.is_dir():
        clip = VIDEO / "chair-orig-22-sd-bar.mp4"
        t = time.perf_counter()
        v = hash_video(clip, 1.0)
        dt = time.perf_counter() - t
        import av

        with av.open(str(clip)) as c:
            total = sum(1 for _ in c.decode(video=0))
        t = time.perf_counter()
        every = hash_video(clip, 1000.0)
        dt_all = time.perf_counter() - t
        print(f"\nVideo {clip.name} ({v.width}×{v.height}, {total} frames): 1 fps sampling {len(v.frames)} frames in "
              f"{dt:.2f} s ({total / dt:.0f} decoded frames/s); every frame hashed: {len(every.frames) / dt_all:.0f} frames/s\n")


def random_queries(rng, db: np.ndarray, nq: int) -> np.ndarray:
    half = nq // 2
    near = db[rng.integers(0, len(db), half)].copy()
    bits = np.unpackbits(near, axis=1)
    for i in range(half):
        k = int(rng.integers(0, 32))
        pos = rng.choice(256, k, replace=False)
        bits[i, pos] ^= 1
    near = np.packbits(bits, axis=1)
    return np.concatenate([near, rng.integers(0, 256, (nq - half, 32), dtype=np.uint8)])


def bench_index(sizes: list[int], nq: int, distance: int, layouts: list[str], threads: list[int]) -> None:
    import faiss

    from kalasag.media.index import AUTO_SWITCH

    print(f"### Matching: {nq:,} queries (half near-duplicates 0-31 bits away, half random), distance ≤ {distance}\n")
    print(f"FAISS threads: {faiss.omp_get_max_threads()}; Kalasag MIH: numpy, threads as shown. CPU cores: {os.cpu_count()}; "
          f"load average at start: {os.getloadavg()[0]:.1f}. Layout 'auto' = 16x16 below {AUTO_SWITCH:,} hashes, else 12x21.\n")
    print("| banked hashes | index | threads | build s | queries/s | speed-up vs Flat | identical to Flat | index MB | process RSS MB | add → matchable ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(7)
    for n in sizes:
        db = rng.integers(0, 256, (n, 32), dtype=np.uint8)
        q = random_queries(rng, db, nq)
        t = time.perf_counter()
        flat = faiss.IndexBinaryFlat(256)
        flat.add(db)
        fbuild = time.perf_counter() - t
        t = time.perf_counter()
        lims, D, I = flat.range_search(q, distance + 1)
        fqps = nq / (time.perf_counter() - t)
        ref = [sorted((int(I[j]), int(D[j])) for j in range(lims[i], lims[i + 1])) for i in range(nq)]
        del flat, lims, D, I
        print(f"| {n:,} | FAISS IndexBinaryFlat | {faiss.omp_get_max_threads()} | {fbuild:.2f} | {fqps:,.0f} | 1× | — | "
              f"{n * 32 / 2**20:,.0f} | {rss_mb():,.0f} | — |", flush=True)
        for layout in layouts:
            t = time.perf_counter()
            idx = PdqIndex(distance, layout=layout)
            idx.add(np.arange(n), db)
            build = time.perf_counter() - t
            name = f"{layout} ({'16x16' if n < AUTO_SWITCH else '12x21'})" if layout == "auto" else layout
            for th in threads:
                t = time.perf_counter()
                mine = idx.search(q, threads=th)
                qps = nq / (time.perf_counter() - t)
                rss = rss_mb()
                same = all(sorted(mine[i]) == ref[i] for i in range(nq))
                hits = sum(len(r) for r in ref)
                del mine
                print(f"| {n:,} | Kalasag MIH {name} | {th} | {build:.1f} | {qps:,.0f} | **{qps / fqps:.1f}×** | "
                      f"{'yes' if same else 'NO'} ({hits:,} hits) | {idx.nbytes() / 2**20:,.0f} | {rss:,.0f} |", end="", flush=True)
                if th == threads[-1]:
                    new = rng.integers(0, 256, (1, 32), dtype=np.uint8)
                    t = time.perf_counter()
                    idx.add([n], new)
                    found = idx.search(new)[0]
                    add_ms = (time.perf_counter() - t) * 1000
                    assert found == [(n, 0)]
                    print(f" {add_ms:.1f} |", flush=True)
                else:
                    print(" |", flush=True)
            del idx
        del db


def bench_partial_scan(sizes: list[int], images: int = 6) -> None:
    """Partial variants against n random banked originals: the exact scan vs. pigeonhole probing of the
    multi-index on the reliable bits (`PdqIndex.search_masked`), same results required."""
    from kalasag.media import Matcher
    from kalasag.media.robustness import FAMILIES

    cfg = load_media_config(partial_match=True)
    queries = [partial_variants(generated_image(1001 + i, (640, 480), FAMILIES[i % len(FAMILIES)]), cfg)
               for i in range(images)]
    nvar = sum(len(p) for p in queries)
    print(f"\nPartial variants of {images} generated 640×480 images ({nvar} variants), random banked originals, "
          "1 thread:\n\n| banked originals | layout | scan: ms per query image | probe (default choice): ms per query "
          "image | speed-up | variants probed / scanned | identical |\n| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    rng = np.random.default_rng(5)
    for n in sizes:
        m = Matcher(cfg)
        m.images.add(np.arange(n), rng.integers(0, 256, (n, 32), dtype=np.uint8))
        times, res = {}, {}
        for mode, work in (("scan", 0.0), ("probe", Matcher.partial_probe_work)):
            m.partial_probe_work = work
            m.partial_search(queries[0])  # builds the cached scan arrays
            t = time.perf_counter()
            res[mode] = [m.partial_search(p) for p in queries]
            times[mode] = (time.perf_counter() - t) / images
        from kalasag.media.variants import partial_threshold

        probed = 0
        for p in queries:
            ts = [partial_threshold(int(np.unpackbits(np.frombuffer(v.mask, np.uint8)).sum()), cfg) for v in p]
            probed += sum(r is not None for r in m.images.search_masked([v.pdq for v in p], [v.mask for v in p], ts,
                                                                          max_work=Matcher.partial_probe_work))
        same = all(sorted(a) == sorted(b) for x, y in zip(res["scan"], res["probe"]) for a, b in zip(x, y))
        from kalasag.media.index import LAYOUTS

        name = next(k for k, v in LAYOUTS.items() if v == m.images.bits)
        print(f"| {n:,} | {m.images.layout} ({name}) | "
              f"{times['scan'] * 1000:.0f} | {times['probe'] * 1000:.1f} | {times['scan'] / times['probe']:.0f}× | "
              f"{probed} / {nvar - probed} | {'yes' if same else '**NO**'} |", flush=True)
        del m


def bench_store_latency(n: int) -> None:
    """End-to-end: a hash imported into the state store is matched by an already running matcher."""
    from kalasag.media import Matcher, MediaStore
    from kalasag.media.listio import ListEntry

    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        store = MediaStore(tmp)
        db = rng.integers(0, 256, (n, 32), dtype=np.uint8)
        t = time.perf_counter()
        store.import_entries("bank", [ListEntry(ref=str(i), kind="image", line=i, pdq=db[i].tobytes()) for i in range(n)])
        imp = time.perf_counter() - t
        t = time.perf_counter()
        m = Matcher.from_store(store, load_media_config())
        load = time.perf_counter() - t
        new = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
        t = time.perf_counter()
        store.import_entries("bank", [ListEntry(ref="new", kind="image", line=1, pdq=new)])
        m.refresh()
        hit = m.images.search([new])[0]
        dt = time.perf_counter() - t
        assert hit and m.meta[hit[0][0]]["ref"] == "new"
        t = time.perf_counter()
        store.withdraw("bank", refs=["new"])
        m.refresh()
        gone = m.images.search([new])[0] == []
        dt_w = time.perf_counter() - t
        assert gone
    print(f"\nState store with {n:,} banked hashes: import {imp:.1f} s, matcher load {load:.1f} s; a newly imported "
          f"hash is matched by the running matcher after **{dt * 1000:.0f} ms** (import + refresh + search); a "
          f"withdrawal stops matching after {dt_w * 1000:.0f} ms.\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--distance", type=int, default=31)
    ap.add_argument("--skip-hashing", action="store_true")
    ap.add_argument("--skip-index", action="store_true", help="skip the matching benchmark")
    ap.add_argument("--layouts", nargs="+", default=["12x21", "16x16"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="Kalasag search threads (FAISS uses OpenMP's)")
    ap.add_argument("--store", type=int, default=1_000_000, help="banked hashes for the store latency test (0: skip)")
    ap.add_argument("--partial-scan", type=int, nargs="+", default=[1_000_000],
                    help="banked hashes for the partial-variant scan vs. probe (0: skip)")
    args = ap.parse_args()
    if not args.skip_hashing:
        bench_hashing(args.images)
    if any(args.partial_scan):
        bench_partial_scan([n for n in args.partial_scan if n])
    if args.store:
        bench_store_latency(args.store)
    if not args.skip_index:
        bench_index(args.sizes, args.queries, args.distance, args.layouts, args.threads)


if __name__ == "__main__":
    main()
