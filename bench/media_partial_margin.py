"""Margin study of the partial (reliable-bit) query variants: recall and false-match margin for a grid of
`partial_ratio_scale` × `partial_min_bits`, hashing each query once and sweeping on cached hashes.

Images and queries are those of bench/media_robustness.py (same functions, same seeds; benign only):
the recall set (photos + `--per-family` generated images per family) under the issue's 10 transforms and
untransformed, and the false-match set (`--fp-per-family` further generated images) untransformed.
With `--extra-bank N`, N further generated images per family are banked (one PDQ each, never queried):
more unrelated banked hashes per query, so the lower tail of unrelated distances is better sampled.

Phase 1 (slow, resumable): for every query, its whole-picture query variants (hash-only mode: compared
with banked originals) and its partial variants (hash, reliable-bit mask, quality) are computed and
cached in `--cache` (an .npz holding hashes and masks only, never pixels).
Phase 2 (fast): for each setting, a partial variant with n reliable bits matches a banked original when
its distance on those bits is <= floor(match_distance × scale × n / 256) and n >= min_bits. Reported:
hash-only recall per transform (whole-picture query variants OR partial variants), false matches, the
closest unrelated pair's excess over its threshold (bits, and bits / n), and the distribution of the
per-pair excess (min over the query's partial variants) for extrapolating a false-match rate.

    nice -n 10 .venv/bin/python bench/media_partial_margin.py --photos /tmp/skimage-data \
        --per-family 14 --fp-per-family 110 --extra-bank 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from media_robustness import family, generated, sample_photos  # noqa: E402

from kalasag.media import load_media_config, pdq_rgb  # noqa: E402
from kalasag.media.robustness import FAMILIES, TRANSFORMS, generated_image  # noqa: E402
from kalasag.media.variants import is_paired, partial_variants, query_variants  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCALES = (0.8, 0.85, 0.9, 1.0)
MIN_BITS = (128, 160, 192)


def popcount_rows(a: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a).sum(axis=-1, dtype=np.int32)


# ------------------------------------------------------------------------------------------- phase 1
def build_cache(args, cfg) -> dict:
    pcfg = cfg.model_copy(update={"partial_match": True})
    t0 = time.time()
    off = args.seed_offset
    recall = {**sample_photos(args.photos), **generated(off, args.per_family)}
    fp_only = generated(off + args.per_family, args.fp_per_family)
    every = {**recall, **fp_only}
    quality = {n: pdq_rgb(rgb)[1] for n, (_, rgb) in every.items()}
    names = [n for n in every if quality[n] >= cfg.min_quality]
    recall_names = [n for n in recall if n in names]
    fp_names = [n for n in names if n not in recall]
    bank = {n: (every[n][0], pdq_rgb(every[n][1])[0]) for n in names}
    first = off + args.per_family + args.fp_per_family
    extra = 0
    for f in FAMILIES:  # extra banked hashes only (never queried); pixels dropped at once
        for s in range(first, first + args.extra_bank):
            h, q = pdq_rgb(generated_image(s, family=f))
            if q >= cfg.min_quality:
                bank[f"{f}{s}"] = (f"{f}{s}", h)
                extra += 1
    print(f"bank: {len(bank)} originals ({len(names)} as in media_robustness + {extra} extra); "
          f"recall {len(recall_names)}, false-match set {len(fp_names)} ({time.time() - t0:.0f} s)", flush=True)
    jobs = [(n, "none") for n in recall_names] + [(n, t) for t in TRANSFORMS for n in recall_names] \
        + [(n, "none") for n in fp_names]
    done: dict = {"q": [], "whole": [], "partial": []}
    if args.cache.is_file():
        old = load_cache(args.cache)
        if old.get("bank_names") == list(bank):
            done = {k: old[k] for k in ("q", "whole", "partial")}
            print(f"resuming: {len(done['q'])} of {len(jobs)} queries cached", flush=True)
    seen = {(n, t) for n, t, *_ in done["q"]}
    last = time.time()
    for i, (n, t) in enumerate(jobs):
        if (n, t) in seen:
            continue
        rgb = every[n][1] if t == "none" else TRANSFORMS[t](every[n][1])
        whole = query_variants(rgb, cfg)
        part = partial_variants(rgb, pcfg)
        qi = len(done["q"])
        done["q"].append((n, t, every[n][0], whole[0].quality))
        done["whole"] += [(qi, v.pdq) for v in whole if v.quality >= cfg.min_quality and not is_paired(v.name)]
        done["partial"] += [(qi, v.name, v.pdq, v.mask, v.quality) for v in part]
        if time.time() - last > 120 or i == len(jobs) - 1:
            save_cache(args.cache, bank, done)
            last = time.time()
            print(f"{len(done['q'])}/{len(jobs)} queries ({time.time() - t0:.0f} s)", flush=True)
    save_cache(args.cache, bank, done)
    return {"bank_names": list(bank), "bank_groups": [g for g, _ in bank.values()],
            "bank": np.frombuffer(b"".join(h for _, h in bank.values()), np.uint8).reshape(-1, 32), **done,
            "recall_names": recall_names}


def save_cache(path: Path, bank: dict, done: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    p = done["partial"]
    np.savez_compressed(
        tmp,
        bank_names=np.array(list(bank)), bank_groups=np.array([g for g, _ in bank.values()]),
        bank=np.frombuffer(b"".join(h for _, h in bank.values()), np.uint8).reshape(-1, 32),
        q_name=np.array([q[0] for q in done["q"]]), q_tf=np.array([q[1] for q in done["q"]]),
        q_group=np.array([q[2] for q in done["q"]]), q_quality=np.array([q[3] for q in done["q"]], np.int32),
        w_q=np.array([w[0] for w in done["whole"]], np.int32),
        w_hash=np.frombuffer(b"".join(w[1] for w in done["whole"]), np.uint8).reshape(-1, 32),
        p_q=np.array([x[0] for x in p], np.int32), p_name=np.array([x[1] for x in p]),
        p_hash=np.frombuffer(b"".join(x[2] for x in p), np.uint8).reshape(-1, 32),
        p_mask=np.frombuffer(b"".join(x[3] for x in p), np.uint8).reshape(-1, 32),
        p_quality=np.array([x[4] for x in p], np.int32),
    )
    tmp.replace(path)


def load_cache(path: Path) -> dict:
    z = np.load(path)
    q = list(zip(z["q_name"].tolist(), z["q_tf"].tolist(), z["q_group"].tolist(), z["q_quality"].tolist()))
    whole = list(zip(z["w_q"].tolist(), [r.tobytes() for r in z["w_hash"]]))
    partial = list(zip(z["p_q"].tolist(), z["p_name"].tolist(), [r.tobytes() for r in z["p_hash"]],
                       [r.tobytes() for r in z["p_mask"]], z["p_quality"].tolist()))
    return {"bank_names": z["bank_names"].tolist(), "bank_groups": z["bank_groups"].tolist(), "bank": z["bank"],
            "q": q, "whole": whole, "partial": partial}


# ------------------------------------------------------------------------------------------- phase 2
def sweep(data: dict, cfg, transforms: list[str], scales=SCALES, min_bits_list=MIN_BITS) -> dict:
    bank = data["bank"]
    bw = bank.view(np.uint64)  # (B, 4)
    bgroups = np.array(data["bank_groups"])
    bindex = {n: i for i, n in enumerate(data["bank_names"])}
    nq = len(data["q"])
    qgroup = np.array([q[2] for q in data["q"]])
    qown = np.array([bindex.get(q[0], -1) for q in data["q"]])
    qok = np.array([q[3] >= cfg.min_quality for q in data["q"]])
    unrelated = qgroup[:, None] != bgroups[None, :]  # (Q, B)
    # the generated checkerboards have only 56 periods, so two seeds often give the same pattern up to
    # colour and noise (PDQ hashes luminance): reported with and without texture ↔ texture pairs
    qtex = np.array([family(q[0]) == "texture" for q in data["q"]])
    btex = np.array([family(n) == "texture" for n in data["bank_names"]])
    no_tex = unrelated & ~(qtex[:, None] & btex[None, :])
    n_unrel = int(unrelated[qok].sum())
    # whole-picture query variants (hash-only: against banked originals)
    wq = np.array([w[0] for w in data["whole"]], np.int64)
    ww = np.frombuffer(b"".join(w[1] for w in data["whole"]), np.uint64).reshape(-1, 4)
    wmin = np.full((nq, len(bw)), 256, np.int32)
    for s in range(0, len(ww), 2048):
        d = popcount_rows(ww[s : s + 2048, None, :] ^ bw[None, :, :])
        np.minimum.at(wmin, wq[s : s + 2048], d)
    whole_own = np.array([wmin[i, qown[i]] if qown[i] >= 0 else 256 for i in range(nq)]) <= cfg.match_distance
    whole_own &= qok
    whole_excess = wmin - cfg.match_distance
    # partial variants: distance on the reliable bits
    pq = np.array([p[0] for p in data["partial"]], np.int64)
    ph = np.frombuffer(b"".join(p[2] for p in data["partial"]), np.uint64).reshape(-1, 4)
    pm = np.frombuffer(b"".join(p[3] for p in data["partial"]), np.uint64).reshape(-1, 4)
    pn = popcount_rows(pm)
    pgood = np.array([p[4] >= cfg.min_quality for p in data["partial"]]) & qok[pq]
    pd = np.empty((len(ph), len(bw)), np.int16)
    for s in range(0, len(ph), 1024):
        pd[s : s + 1024] = popcount_rows((ph[s : s + 1024, None, :] ^ bw[None, :, :]) & pm[s : s + 1024, None, :])
    tf = np.array([q[1] for q in data["q"]])
    out = {"queries": nq, "bank": len(bw), "unrelated_pairs": n_unrel,
           "reliable_bits": {"min": int(pn.min()), "median": float(np.median(pn)), "max": int(pn.max()),
                             "p10": float(np.percentile(pn, 10)), "p90": float(np.percentile(pn, 90))},
           "whole": margin_stats(whole_excess[qok], unrelated[qok], None),
           "whole_no_tex": margin_stats(whole_excess[qok], no_tex[qok], None),
           "unrelated_pairs_no_tex": int(no_tex[qok].sum()),
           "recall_whole": {t: int(whole_own[tf == t].sum()) for t in transforms},
           "n_per_transform": {t: int((tf == t).sum()) for t in transforms}, "settings": []}
    for scale in scales:
        for min_bits in min_bits_list:
            t = np.floor(cfg.match_distance * scale * pn / 256).astype(np.int32)
            use = pgood & (pn >= min_bits)
            exc = np.full((nq, len(bw)), 999, np.int32)
            excess = pd.astype(np.int32) - t[:, None]
            np.minimum.at(exc, pq[use], excess[use])
            # share: excess / n of the variant that gave the min (approximate: per variant, then min)
            share = np.full((nq, len(bw)), 9.0, np.float32)
            np.minimum.at(share, pq[use], (excess[use] / pn[use, None]).astype(np.float32))
            own = np.array([exc[i, qown[i]] <= 0 if qown[i] >= 0 else False for i in range(nq)])
            hit = whole_own | own
            st = margin_stats(exc[qok], unrelated[qok], share[qok])
            st["no_tex"] = margin_stats(exc[qok], no_tex[qok], share[qok])
            # which pair is closest (for the record)
            ex_u = np.where(unrelated & qok[:, None], exc, 999)
            qi, bi = np.unravel_index(np.argmin(ex_u), ex_u.shape)
            st["closest_pair"] = f"{data['q'][qi][0]}[{data['q'][qi][1]}] vs {data['bank_names'][bi]}"
            out["settings"].append({
                "scale": scale, "min_bits": min_bits,
                "recall": {t_: int(hit[tf == t_].sum()) for t_ in transforms},
                "recall_partial_only": {t_: int((own & ~whole_own)[tf == t_].sum()) for t_ in transforms},
                **st})
    return out


def margin_stats(excess: np.ndarray, unrelated: np.ndarray, share) -> dict:
    """excess: (Q, B) distance minus threshold (<= 0: a match); only unrelated pairs count."""
    e = excess[unrelated]
    hist = Counter(np.clip(e, -50, 120).tolist())
    n = len(e)
    cdf = {k: int((e <= k).sum()) for k in range(0, 41, 5)}
    out = {"false_matches": int((e <= 0).sum()), "min_excess": int(e.min()), "pairs": n,
           "within": cdf, "hist": {int(k): v for k, v in sorted(hist.items()) if k <= 60},
           "queries_within_10": int(((excess <= 10) & unrelated).any(axis=1).sum())}
    if share is not None:
        out["min_excess_share"] = round(float(share[unrelated].min()), 4)
    out["tail"] = tail_fit(e)
    return out


def tail_fit(e: np.ndarray, span: int = 10) -> dict:
    """Extrapolate the share of unrelated pairs at excess <= 0 (a false match) from the lower tail:
    log10 of the share of pairs with excess <= k is fitted by a straight line over the `span` bits
    starting where at least 10 pairs lie at or below k, and read at k = 0. An assumption (a
    log-linear lower tail), stated with the result; the rule of three bounds the observed share."""
    n = len(e)
    ks = np.arange(int(e.min()), int(e.min()) + 60)
    c = np.array([(e <= k).sum() for k in ks])
    start = int(np.argmax(c >= 10))
    sel = slice(start, start + span + 1)
    slope, icpt = np.polyfit(ks[sel], np.log10(c[sel] / n), 1)
    return {"from": int(ks[sel][0]), "to": int(ks[sel][-1]), "log10_share_per_bit": round(float(slope), 4),
            "share_at_0": float(10 ** icpt), "observed_upper_95": 3.0 / n if not (e <= 0).any() else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-family", type=int, default=14)
    ap.add_argument("--fp-per-family", type=int, default=110)
    ap.add_argument("--extra-bank", type=int, default=0, help="further generated images per family, banked only")
    ap.add_argument("--photos", type=Path, action="append", default=[])
    ap.add_argument("--seed-offset", type=int, default=0, help="first seed of the generated images (held-out runs)")
    ap.add_argument("--cache", type=Path, default=ROOT / "bench" / "out" / "media_partial_cache.npz")
    ap.add_argument("--sweep-only", action="store_true", help="use the cache as it is (no hashing)")
    ap.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    ap.add_argument("--min-bits", type=int, nargs="+", default=list(MIN_BITS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "media_partial_margin.json")
    args = ap.parse_args()
    cfg = load_media_config()
    data = load_cache(args.cache) if args.sweep_only else build_cache(args, cfg)
    transforms = ["none", *TRANSFORMS]
    rep = sweep(data, cfg, transforms, args.scales, args.min_bits)
    args.out.write_text(json.dumps(rep, indent=1))
    print_markdown(rep, transforms)


def print_markdown(rep: dict, transforms: list[str]) -> None:
    w, wn = rep["whole"], rep["whole_no_tex"]
    print(f"\nqueries {rep['queries']}, banked originals {rep['bank']}, unrelated pairs {rep['unrelated_pairs']:,} "
          f"({rep['unrelated_pairs_no_tex']:,} without texture ↔ texture); reliable bits {rep['reliable_bits']}")
    tfs = [t for t in transforms if t != "none"]

    def margin(st: dict) -> str:
        share = f" / {st['min_excess_share']:+.3f}" if "min_excess_share" in st else ""
        return (f"{st['false_matches']} | {st['min_excess']:+d}{share} | "
                f"{st['within'][5]} / {st['within'][10]} / {st['within'][15]} / {st['within'][20]}")

    print("\n| scale | min bits | " + " | ".join(tfs) + " | false | closest unrelated (bits / share of n) | "
          "pairs within +5 / +10 / +15 / +20 | without texture ↔ texture: false | closest | within +5 / +10 / +15 / +20 |")
    print("| --- | --- | " + " | ".join("---" for _ in tfs) + " | --- | --- | --- | --- | --- | --- |")
    base = rep["recall_whole"]
    print("| (off) | – | " + " | ".join(str(base[t]) for t in tfs) + f" | {margin(w)} | {margin(wn)} |")
    for s in rep["settings"]:
        print(f"| {s['scale']} | {s['min_bits']} | " + " | ".join(str(s["recall"][t]) for t in tfs)
              + f" | {margin(s)} | {margin(s['no_tex'])} |")
    print("\nClosest unrelated pair per setting: " + "; ".join(f"{s['scale']}/{s['min_bits']}: {s['closest_pair']}"
                                                             for s in rep["settings"]))
    print("\nTail extrapolation (share of unrelated pairs with excess <= 0; log-linear fit of the lower tail):")
    rows = [("whole-picture", w, wn)] + [(f"partial {s['scale']}/{s['min_bits']}", s, s["no_tex"]) for s in rep["settings"]]
    for label, st, stn in rows:
        t, tn = st["tail"], stn["tail"]
        print(f"* {label}: all pairs fit over excess {t['from']}..{t['to']} ({t['log10_share_per_bit']:+.3f} decades/bit)"
              f" → {t['share_at_0']:.1e} per pair; without texture ↔ texture over {tn['from']}..{tn['to']} → "
              f"{tn['share_at_0']:.1e} per pair ({tn['share_at_0'] * 1e7:.2g} per query against 10M)")


if __name__ == "__main__":
    main()
