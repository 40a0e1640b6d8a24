"""Recall of PDQ + Kalasag's query variants on benign transforms, and false matches on unrelated pairs.

Images: the shared bridge photo and labelme photos (quality >= 50) and 20 generated abstract images.
Each transformed copy is queried (all variants) against the banked hashes of *all* originals; a hit
on its own original within the match distance is a true match, a hit on any other original is a
false match. Prints a Markdown table (docs/media.md). Not run in tests.

    .venv/bin/python bench/media_robustness.py [--generated 20]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from kalasag.media import PdqIndex, load_media_config, pdq_rgb, query_variants
from kalasag.media.hashing import hamming, load_rgb
from kalasag.media.robustness import TRANSFORMS, generated_image

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media" / "pdq"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--generated", type=int, default=20)
    args = ap.parse_args()
    cfg = load_media_config()
    images = {"bridge": load_rgb(MEDIA / "bridge-mods" / "aaa-orig.jpg")}
    for p in sorted((MEDIA / "labelme-subset").glob("*.jpg")):
        images[p.stem] = load_rgb(p)
    for s in range(args.generated):
        images[f"gen{s}"] = generated_image(s)
    bank = {k: pdq_rgb(v) for k, v in images.items()}
    skipped = [k for k, (_, q) in bank.items() if q < cfg.min_quality]
    names = [k for k in images if k not in skipped]
    index = PdqIndex(cfg.match_distance)
    index.add(np.arange(len(names)), [bank[k][0] for k in names])
    print(f"images: {len(names)} ({sum(not n.startswith('gen') for n in names)} photos, "
          f"{sum(n.startswith('gen') for n in names)} generated); skipped for quality < {cfg.min_quality}: {skipped}")
    print()
    print("| transform | plain PDQ recall | median d (plain) | Kalasag recall (variants) | median d (best variant) | variant that matched most | false matches |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    total_fp = total_q = 0
    t0 = time.time()
    for tname, tf in {"none": lambda x: x, **TRANSFORMS}.items():
        plain_d, best_d, hits, fps, used = [], [], 0, 0, Counter()
        for i, k in enumerate(names):
            t = tf(images[k])
            vs = query_variants(t, cfg)
            vs = [v for v in vs if v.quality >= cfg.min_quality] or vs[:1]
            plain_d.append(hamming(vs[0].pdq, bank[k][0]))
            ds = [(hamming(v.pdq, bank[k][0]), v.name) for v in vs]
            d, vname = min(ds)
            best_d.append(d)
            res = index.search([v.pdq for v in vs])
            found = {j for r in res for j, _ in r}
            if i in found:
                hits += 1
                used[vname] += 1
            fps += len(found - {i})
            total_q += 1
        total_fp += fps
        n = len(names)
        print(f"| {tname} | {np.mean(np.array(plain_d) <= cfg.match_distance):.0%} | {int(np.median(plain_d))} | "
              f"**{hits / n:.0%}** ({hits}/{n}) | {int(np.median(best_d))} | {used.most_common(1)[0][0] if used else '-'} | {fps} |")
    # unrelated pairs, plain distance
    pair_d = [hamming(bank[a][0], bank[b][0]) for i, a in enumerate(names) for b in names[i + 1 :]]
    print()
    print(f"unrelated original pairs: {len(pair_d)}, min distance {min(pair_d)}, median {int(np.median(pair_d))}, "
          f"pairs <= {cfg.match_distance}: {sum(d <= cfg.match_distance for d in pair_d)}")
    print(f"false matches over all {total_q} variant-expanded queries against {len(names)} banked originals: {total_fp}")
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
