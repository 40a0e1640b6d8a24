"""Recall of PDQ + Kalasag's variants on benign transforms, and false matches on many unrelated pairs.

Images (benign only): the shared bridge photo, labelme photos and frames of the shared chair/pattern/
doorknob clips; scikit-learn's and matplotlib's sample photos (installed with them); any image files
in `--photos DIR` (e.g. the sample images inside the scikit-image wheel, see docs/media.md); and
generated images in five families (abstract, gradient, shapes, texture, text). Images with PDQ
quality < 50 are not banked (Kalasag flags them and never matches them).

Two banks are measured with the same queries:
* **hash-only list**: the original's PDQ only, as imported from a clearinghouse — only query-side
  variants help;
* **banked by Kalasag**: the original plus its bank variants (centre crops, bar-free) and regions
  (strips, 2×2 and 3×3 tiles), as `lists add` / `hash --bank-variants` store them.

Each transformed copy of a recall image is matched (all variants) against the bank of *all* images;
a hit on its own original is a true match, a hit on an image of another group is a false match.
The originals of the extra false-positive images are also matched as queries against the whole
bank. For every query and every unrelated banked image, the closest whole-picture variant pair and
the k-th closest same-name region pair are recorded, to show the margin under the threshold.
Prints Markdown (docs/media.md) and writes JSON. Not run in tests.

    .venv/bin/python bench/media_robustness.py --photos /tmp/skimage-data --per-family 40 --fp-per-family 150
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from kalasag.media import Matcher, load_media_config, pdq_rgb
from kalasag.media.hashing import iter_sampled_frames, load_rgb
from kalasag.media.listio import ListEntry
from kalasag.media.robustness import EXTRA_TRANSFORMS, FAMILIES, TRANSFORMS, generated_image
from kalasag.media.variants import bank_variants, is_paired, partial_threshold, partial_variants, query_variants, region_variants

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "data" / "media"


def sample_photos(extra_dirs: list[Path]) -> dict[str, tuple[str, np.ndarray]]:
    """name → (group, rgb). Images of one group are related (frames of one clip, a stereo pair)."""
    out: dict[str, tuple[str, np.ndarray]] = {}
    if (MEDIA / "pdq").is_dir():
        out["bridge"] = ("bridge", load_rgb(MEDIA / "pdq" / "bridge-mods" / "aaa-orig.jpg"))
        for p in sorted((MEDIA / "pdq" / "labelme-subset").glob("*.jpg")):
            out[p.stem] = (p.stem, load_rgb(p))
    packaged = []
    try:
        import sklearn

        packaged += sorted((Path(sklearn.__file__).parent / "datasets" / "images").glob("*.jpg"))
    except ImportError:
        pass
    try:
        import matplotlib

        packaged.append(Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg")
    except ImportError:
        pass
    for p in packaged:
        if p.is_file():
            out[p.stem] = (p.stem, load_rgb(p))
    for d in extra_dirs:
        for p in sorted(d.iterdir()):
            if p.suffix.lower() not in (".png", ".jpg", ".jpeg"):
                continue
            rgb = load_rgb(p)
            if min(rgb.shape[:2]) >= 64:  # skip icons and 8×8 test patterns
                # files sharing a prefix are one picture or a pair (chessboard_GRAY/_RGB, motorcycle_left/_right)
                out[f"{d.name}/{p.stem}"] = (f"{d.name}/{p.stem.split('_')[0]}", rgb)
    clips = {"chair-orig-22-sd-bar.mp4": (0, 8, 16), "pattern-hd-no-bar.mp4": (0, 6), "doorknob-hd-no-bar.mp4": (0, 3)}
    for clip, seconds in clips.items():
        path = MEDIA / "video" / clip
        if not path.is_file():
            continue
        subject = clip.split("-")[0]
        for t, _, rgb in iter_sampled_frames(str(path), 1.0):
            if round(t) in seconds:
                out[f"{subject}@{round(t)}s"] = (f"clip-{subject}", rgb)
    return out


def generated(first: int, count: int) -> dict[str, tuple[str, np.ndarray]]:
    return {f"{f}{s}": (f"{f}{s}", generated_image(s, family=f)) for f in FAMILIES for s in range(first, first + count)}


def family(name: str) -> str:
    stem = name.rstrip("0123456789")
    return stem if stem in FAMILIES else "photo"


def words(hashes: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(hashes), np.uint64).reshape(-1, 4) if hashes else np.empty((0, 4), np.uint64)


def dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=2, dtype=np.int32)


class Margins:
    """Closest unrelated pairs: whole-picture (best variant pair; a paired variant such as `lowpass` only
    against the banked variant of the same name) and regions (k-th closest region)."""

    def __init__(self, names, groups, bank_whole, bank_regions, k, bank_paired=None):
        self.names, self.groups, self.k = names, np.array(groups), k
        self.orig = words([bank_whole[n][0][1] for n in names])
        owners, hs = [], []
        for i, n in enumerate(names):
            for _, h in bank_whole[n]:
                owners.append(i)
                hs.append(h)
        self.owner, self.all = np.array(owners), words(hs)
        bank_paired = bank_paired or {}
        self.paired_names = sorted({p for n in names for p in bank_paired.get(n, {})})
        self.pair = {p: words([bank_paired[n].get(p, b"\0" * 32) for n in names]) for p in self.paired_names}
        self.pair_ok = {p: np.array([p in bank_paired.get(n, {}) for n in names]) for p in self.paired_names}
        self.region_names = sorted({r for n in names for r in bank_regions[n]})
        self.reg = {r: words([bank_regions[n].get(r, b"\0" * 32) for n in names]) for r in self.region_names}
        self.reg_ok = {r: np.array([r in bank_regions[n] for n in names]) for r in self.region_names}
        self.pairs = 0
        self.hist = {"hash-only": Counter(), "banked": Counter(), **{f"regions_k{j}": Counter() for j in range(1, 7)},
                     "partial_excess": Counter()}

    def add(self, group: str, whole: list[bytes], regions: dict[str, bytes], paired: dict[str, bytes] | None = None,
            partial: list | None = None, cfg=None) -> None:
        other = self.groups != group
        self.pairs += int(other.sum())
        if partial:  # partial variants: distance on the reliable bits minus their threshold (<= 0: a match)
            excess = np.full(len(self.names), 999, np.int32)
            ow = self.orig.reshape(-1, 4)
            for v in partial:
                n = int(np.unpackbits(np.frombuffer(v.mask, np.uint8)).sum())
                t = partial_threshold(n, cfg)
                if t < 0:
                    continue
                d = np.bitwise_count((ow ^ np.frombuffer(v.pdq, np.uint64)) & np.frombuffer(v.mask, np.uint64)).sum(axis=1)
                excess = np.minimum(excess, d.astype(np.int32) - t)
            self.hist["partial_excess"].update(excess[other].tolist())
        q = words(whole)
        d_orig = dists(q, self.orig).min(axis=0)
        d_all = dists(q, self.all).min(axis=0)
        per_entry = np.full(len(self.names), 256, np.int32)
        np.minimum.at(per_entry, self.owner, d_all)
        for p, h in (paired or {}).items():
            if p in self.pair:
                per_entry = np.minimum(per_entry, np.where(self.pair_ok[p], dists(words([h]), self.pair[p])[0], 256))
        self.hist["hash-only"].update(d_orig[other].tolist())
        self.hist["banked"].update(per_entry[other].tolist())
        if regions:
            rd = np.full((len(self.region_names), len(self.names)), 256, np.int32)
            for i, r in enumerate(self.region_names):
                if r in regions:
                    d = dists(words([regions[r]]), self.reg[r])[0]
                    rd[i] = np.where(self.reg_ok[r], d, 256)
            srt = np.sort(rd, axis=0)
            for j in range(1, 7):  # the j-th closest same-name region of each unrelated image
                self.hist[f"regions_k{j}"].update(srt[j - 1][other].tolist())

    def summary(self, threshold: int, region_threshold: int) -> dict:
        out = {"unrelated_pairs": self.pairs}
        for key, h in self.hist.items():
            if not h:
                continue
            lo = min(h)
            t = region_threshold if key.startswith("regions") else 0 if key == "partial_excess" else threshold
            out[key] = {"min": lo, "within_threshold": sum(c for d, c in h.items() if d <= t),
                        "within_threshold_plus_10": sum(c for d, c in h.items() if d <= t + 10),
                        "share_below_60": sum(c for d, c in h.items() if d < 60) / max(1, sum(h.values()))}
        return out


_STATE: dict = {}


def _query(n: str, rgb: np.ndarray, fresh: Margins, false: dict, modes: tuple[str, ...]):
    st = _STATE
    cfg, groups = st["cfg"], st["groups"]
    whole = query_variants(rgb, cfg)
    regions = region_variants(rgb, cfg)
    partial = partial_variants(rgb, cfg)
    low = whole[0].quality < cfg.min_quality  # a low-quality query is never matched
    fresh.add(groups[n], [v.pdq for v in whole if v.quality >= cfg.min_quality and not is_paired(v.name)] or [whole[0].pdq],
              {v.name: v.pdq for v in regions if v.quality >= cfg.min_quality},
              {v.name: v.pdq for v in whole if v.quality >= cfg.min_quality and is_paired(v.name)},
              [] if low else [v for v in partial if v.quality >= cfg.min_quality], cfg)
    whole = whole + partial
    out = {}
    for mode in modes:
        m = st["banked"] if mode == "banked" else st["hash_only"]
        fm = m.match_variants(whole[:1], []) if mode == "plain" else m.match_variants(whole, regions)
        wrong = [h for h in fm.hits if groups.get(h.ref) != groups[n]]
        if wrong and mode != "plain":
            false[mode].append((st.get("tname", "none"), n, [(h.ref, h.distance, h.variant) for h in wrong]))
        out[mode] = ([h for h in fm.hits if h.ref == n], wrong)
    return out


def _job(job):
    """One transform over the recall set, or a share of the false-match set (in a forked worker)."""
    kind, key = job
    st = _STATE
    base = st["margins"]
    fresh = Margins.__new__(Margins)
    fresh.__dict__.update(base.__dict__)
    fresh.pairs, fresh.hist = 0, {k: Counter() for k in base.hist}
    false = {"hash-only": [], "banked": []}
    if kind == "fp":
        res = {"hash-only": 0, "banked": 0}
        for n in key:
            out = _query(n, st["every"][n][1], fresh, false, ("hash-only", "banked"))
            for mode in res:
                res[mode] += len(out[mode][1])
        return kind, None, res, false, fresh.hist, fresh.pairs
    tf = st["transforms"][key]
    st["tname"] = key
    names = st["recall_names"]
    r = {m: {"hits": 0, "by_family": Counter(), "variants": Counter(), "false": 0, "only_paired": []}
         for m in ("plain", "hash-only", "banked")}
    misses = []
    for n in names:
        out = _query(n, tf(st["every"][n][1]), fresh, false, ("plain", "hash-only", "banked"))
        for mode, (own, wrong) in out.items():
            if own:
                r[mode]["hits"] += 1
                r[mode]["by_family"][family(n)] += 1
                r[mode]["variants"][(own[0].variant if mode == "banked" else own[0].variant.split("~")[0]).split("(")[0]] += 1
                if all(is_paired(m["variant"].split("~")[0]) for m in own[0].matched_variants):
                    r[mode]["only_paired"].append(n)  # matched only through a paired variant (lowpass)
            elif mode == "banked":
                misses.append(n)
            r[mode]["false"] += len(wrong)
    res = {"n": len(names), "misses_banked": misses,
           **{m: {"recall": v["hits"] / len(names), "hits": v["hits"], "false": v["false"],
                  "by_family": dict(v["by_family"]), "variants": dict(v["variants"].most_common()),
                  "only_paired": v["only_paired"]}
              for m, v in r.items()}}
    return kind, key, res, false, fresh.hist, fresh.pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-family", type=int, default=40, help="generated recall images per family")
    ap.add_argument("--fp-per-family", type=int, default=150, help="further generated images per family (false-match set)")
    ap.add_argument("--photos", type=Path, action="append", default=[], help="extra directory of benign photos")
    ap.add_argument("--no-extra", action="store_true", help="skip the extra transforms (beyond the issue's list)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (forked; the bank is shared)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "media_robustness.json")
    args = ap.parse_args()
    cfg = load_media_config()
    t0 = time.time()
    recall = {**sample_photos(args.photos), **generated(0, args.per_family)}
    fp_only = generated(args.per_family, args.fp_per_family)
    every = {**recall, **fp_only}
    quality = {n: pdq_rgb(rgb)[1] for n, (_, rgb) in every.items()}
    skipped = sorted(n for n, q in quality.items() if q < cfg.min_quality)
    names = [n for n in every if quality[n] >= cfg.min_quality]
    recall_names = [n for n in recall if n in names]
    groups = {n: every[n][0] for n in names}
    print(f"images: {len(every)}; banked (quality >= {cfg.min_quality}): {len(names)} — "
          + ", ".join(f"{f} {sum(family(n) == f for n in names)}" for f in ("photo", *FAMILIES))
          + f"; recall set {len(recall_names)}; not banked (quality < 50): {len(skipped)} "
          f"({', '.join(f'{f} {sum(family(n) == f for n in skipped)}' for f in ('photo', *FAMILIES))})", flush=True)
    entries, plain_entries, bank_whole, bank_regions, bank_paired = [], [], {}, {}, {}
    for n in names:
        rgb = every[n][1]
        h, q = pdq_rgb(rgb)
        bv = bank_variants(rgb, cfg)
        rv = region_variants(rgb, cfg)
        keep = [(v.name, v.pdq, v.quality) for v in bv + rv if v.quality >= cfg.min_quality]
        entries.append(ListEntry(ref=n, kind="image", line=0, pdq=h, quality=q, variants=keep))
        plain_entries.append(ListEntry(ref=n, kind="image", line=0, pdq=h, quality=q))
        bank_whole[n] = [("original", h)] + [(v.name, v.pdq) for v in bv
                                             if v.quality >= cfg.min_quality and not is_paired(v.name)]
        bank_paired[n] = {v.name: v.pdq for v in bv if v.quality >= cfg.min_quality and is_paired(v.name)}
        bank_regions[n] = {v.name: v.pdq for v in rv if v.quality >= cfg.min_quality}
    hash_only = Matcher.from_entries(plain_entries, cfg, "bank")
    banked = Matcher.from_entries(entries, cfg, "bank")
    print(f"bank built: {sum(len(e.variants) for e in entries) + len(entries)} hashes "
          f"({time.time() - t0:.0f} s)", flush=True)
    margins = Margins(names, [groups[n] for n in names], bank_whole, bank_regions, cfg.region_min_matches, bank_paired)
    transforms = {"none": lambda x: x, **TRANSFORMS, **({} if args.no_extra else EXTRA_TRANSFORMS)}
    fp_names = [n for n in names if n not in recall]
    jobs = [("transform", t) for t in transforms] + [("fp", fp_names[i :: args.workers]) for i in range(args.workers)]
    _STATE.update(cfg=cfg, every=every, groups=groups, recall_names=recall_names, transforms=transforms,
                  hash_only=hash_only, banked=banked, margins=margins)
    import multiprocessing as mp

    results: dict = {}
    false = {"hash-only": [], "banked": []}
    extra_false = {"hash-only": 0, "banked": 0}
    with mp.get_context("fork").Pool(args.workers) as pool:
        for kind, key, res, fl, hist, pairs in pool.imap_unordered(_job, jobs):
            margins.pairs += pairs
            for k, h in hist.items():
                margins.hist[k].update(h)
            for mode in false:
                false[mode] += fl[mode]
            if kind == "transform":
                results[key] = res
                r = res
                print(f"{key}: plain {r['plain']['hits']}, hash-only {r['hash-only']['hits']}, banked {r['banked']['hits']} "
                      f"of {r['n']}; false {r['hash-only']['false']}/{r['banked']['false']} ({time.time() - t0:.0f} s)", flush=True)
            else:
                for mode in extra_false:
                    extra_false[mode] += res[mode]
    results = {t: results[t] for t in transforms}
    summary = margins.summary(cfg.match_distance, cfg.region_distance)
    report = {"images": len(names), "recall_images": len(recall_names), "skipped_low_quality": skipped,
              "by_family": {f: sum(family(n) == f for n in names) for f in ("photo", *FAMILIES)},
              "recall_by_family": {f: sum(family(n) == f for n in recall_names) for f in ("photo", *FAMILIES)},
              "transforms": results, "false_matches": false, "extra_false": extra_false, "margins": summary,
              "seconds": round(time.time() - t0)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print_markdown(report, cfg)


def print_markdown(rep: dict, cfg) -> None:
    print()
    print("| transform | plain PDQ | hash-only list (query variants) | banked by Kalasag (+ bank variants, regions) | "
          "banked: variant that matched most | banked misses by family | banked: matched only through lowpass | "
          "false matches (hash-only / banked) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for t, r in rep["transforms"].items():
        miss = Counter(family(n) for n in r["misses_banked"])
        top = next(iter(r["banked"]["variants"]), "-")
        print(f"| {t} | {r['plain']['recall']:.0%} | {r['hash-only']['recall']:.0%} | **{r['banked']['recall']:.1%}** "
              f"({r['banked']['hits']}/{r['n']}) | {top} | {', '.join(f'{k} {v}' for k, v in miss.items()) or '-'} | "
              f"{len(r['banked']['only_paired'])} {' '.join(r['banked']['only_paired'])} | "
              f"{r['hash-only']['false']} / {r['banked']['false']} |")
    m = rep["margins"]
    print(f"\nUnrelated (query, banked image) pairs: {m['unrelated_pairs']:,}; extra false matches from the "
          f"false-match set: {rep['extra_false']}")
    for key in ("hash-only", "banked", *(f"regions_k{j}" for j in range(1, 7)), "partial_excess"):
        if key in m:
            print(f"* {key}: closest unrelated pair {m[key]['min']} bits; within threshold {m[key]['within_threshold']}; "
                  f"within threshold + 10: {m[key]['within_threshold_plus_10']}; share under 60 bits {m[key]['share_below_60']:.2e}")
    print(f"({rep['seconds']} s)")


if __name__ == "__main__":
    main()
