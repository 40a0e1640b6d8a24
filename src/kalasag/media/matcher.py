"""Matching files against banked hashes: images (PDQ + query variants + MD5/SHA-256) and videos
(vPDQ semantics: de-duplicated frames, share of query frames and of banked frames matched)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kalasag.media.config import MediaConfig
from kalasag.media.errors import MediaError
from kalasag.media.hashing import detect_kind, file_digests, iter_sampled_frames, load_rgb, pdq_rgb
from kalasag.media.index import PdqIndex
from kalasag.media.listio import ListEntry, read_list
from kalasag.media.store import MediaStore
from kalasag.media.variants import (Variant, is_paired, is_region, partial_threshold, partial_variants, query_variants,
                                     region_variants, unletterbox)


@dataclass
class Hit:
    entry_id: int
    list: str
    ref: str
    category: str
    source: str
    negative: bool
    method: str  # pdq | md5 | sha256 | vpdq
    distance: int
    variant: str
    query_pct: float | None = None
    compared_pct: float | None = None
    query_ranges: list[tuple[float, float]] = field(default_factory=list)
    banked_ranges: list[tuple[float, float]] = field(default_factory=list)
    # every variant pair that matched this entry: {"variant": label, "distance": d}, closest first
    matched_variants: list[dict] = field(default_factory=list)

    @property
    def entry(self) -> str:
        return f"{self.list}:{self.ref}"

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items()}
        d["entry"] = self.entry
        return d


@dataclass(frozen=True)
class QueryFrame:
    timestamp: float
    frame_number: int
    pdq: bytes
    quality: int
    alts: list[bytes]  # the frame's hash, then the hash without uniform bars (if any)
    primary: bool = True  # on the banking grid (video_fps): counted for the query share


@dataclass
class FileMatch:
    path: str
    kind: str
    quality: int | None
    low_quality: bool
    hits: list[Hit]
    suppressed: list[dict] = field(default_factory=list)
    frames: int = 0

    @property
    def matched(self) -> bool:
        return bool(self.hits)

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    def as_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "matched": self.matched, "quality": self.quality,
                "low_quality": self.low_quality, "frames": self.frames,
                "hits": [h.as_dict() for h in self.hits], "suppressed": self.suppressed}


def merge_ranges(times: list[float], gap: float) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for t in sorted(set(times)):
        if out and t - out[-1][1] <= gap + 1e-6:
            out[-1][1] = t
        else:
            out.append([t, t])
    return [(round(a, 3), round(b, 3)) for a, b in out]


class Matcher:
    """In-memory banks built from the store (kept current with `refresh()`) or from a list file."""

    def __init__(self, cfg: MediaConfig):
        self.cfg = cfg
        index = dict(delta_limit=cfg.index_delta_limit, layout=cfg.index_layout, auto_switch=cfg.index_auto_switch)
        self.images = PdqIndex(cfg.match_distance, **index)
        self.frames = PdqIndex(cfg.match_distance, **index)
        self.bank = PdqIndex(cfg.match_distance, **index)  # whole-picture bank variants of banked images
        self.regions = PdqIndex(cfg.region_distance, **index)  # region hashes of banked images
        self.paired = PdqIndex(cfg.match_distance, **index)  # paired variants (`lowpass`): same name only
        self.variant_info: dict[int, tuple[int, str]] = {}  # variant id → (entry id, name)
        self.meta: dict[int, dict] = {}
        self.frame_entry: dict[int, int] = {}
        self.frame_info: dict[int, tuple[float, bytes]] = {}
        self.video_unique: dict[int, int] = {}  # entry id → number of unique good-quality frame hashes
        self.by_md5: dict[str, set[int]] = {}
        self.by_sha: dict[str, set[int]] = {}
        self.store: MediaStore | None = None
        self.seq = 0
        self._scan: tuple[np.ndarray, np.ndarray] | None = None  # banked originals as (n, 4) words + ids

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_store(cls, store: MediaStore, cfg: MediaConfig) -> Matcher:
        m = cls(cfg)
        m.store = store
        m.seq = store.last_seq()
        m._add_rows(store.entries())
        return m

    @classmethod
    def from_list_file(cls, path: str | Path, cfg: MediaConfig, fmt: str = "auto") -> Matcher:
        m = cls(cfg)
        stem = Path(path).name
        m._add_entries(read_list(path, fmt), stem)
        return m

    @classmethod
    def from_entries(cls, entries: list[ListEntry], cfg: MediaConfig, list_name: str = "list") -> Matcher:
        """A matcher over list entries held in memory (no state directory)."""
        m = cls(cfg)
        m._add_entries(entries, list_name)
        return m

    def _add_entries(self, entries: list[ListEntry], list_name: str) -> None:
        rows, frames, variants = [], [], []
        fid = vid = 0
        for i, e in enumerate(entries, 1):
            rows.append(_row_from_entry(i, e, e.list_name or list_name, negative=False))
            for t, h, q in e.frames:
                fid += 1
                frames.append((fid, i, t, h, q))
            for name, h, q in e.variants:
                vid += 1
                variants.append((vid, i, name, h, q))
        self._add_rows(rows, frames, variants)

    def refresh(self) -> int:
        """Apply the store's changes since the last look (adds and withdrawals); no rebuild."""
        if self.store is None:
            return 0
        changes = self.store.changes_since(self.seq)
        if not changes:
            return 0
        self.seq = changes[-1][0]
        adds = [eid for _, action, eid in changes if action == "add"]
        gone = [eid for _, action, eid in changes if action == "withdraw"]
        if adds:
            self._add_rows([r for r in self.store.entries(adds) if r["withdrawn_version"] is None])
        if gone:
            self._remove(gone)
        return len(changes)

    def _add_rows(self, rows: list[dict], frames: list[tuple] | None = None, variants: list[tuple] | None = None) -> None:
        ids, hashes = [], []
        min_q = self.cfg.min_quality
        for r in rows:
            self.meta[r["id"]] = r
            if r.get("md5"):
                self.by_md5.setdefault(r["md5"], set()).add(r["id"])
            if r.get("sha256"):
                self.by_sha.setdefault(r["sha256"], set()).add(r["id"])
            if r["kind"] == "image" and r["pdq"] is not None and (r["quality"] is None or r["quality"] >= min_q):
                ids.append(r["id"])
                hashes.append(r["pdq"])
        if ids:
            self.images.add(ids, hashes)
            self._scan = None
        video_ids = [r["id"] for r in rows if r["kind"] == "video"]
        if frames is None and video_ids and self.store is not None:
            frames = self.store.frames(video_ids)
        fids, fh = [], []
        uniq: dict[int, set[bytes]] = {}
        for fid, eid, t, h, q in frames or []:
            if q is not None and q < min_q:
                continue
            self.frame_entry[fid] = eid
            self.frame_info[fid] = (t, h)
            uniq.setdefault(eid, set()).add(h)
            fids.append(fid)
            fh.append(h)
        for eid, s in uniq.items():
            self.video_unique[eid] = len(s)
        if fids:
            self.frames.add(fids, fh)
        if variants is None and ids and self.store is not None:  # a large load reads them all at once
            variants = self.store.variants(ids if len(ids) <= 5000 else None)
        banked = set(ids)
        whole: tuple[list, list] = ([], [])
        region: tuple[list, list] = ([], [])
        paired: tuple[list, list] = ([], [])
        for vid, eid, name, h, q in variants or []:
            if eid not in banked or (q is not None and q < min_q):
                continue
            self.variant_info[vid] = (eid, name)
            target = region if is_region(name) else paired if is_paired(name) else whole
            target[0].append(vid)
            target[1].append(h)
        if whole[0]:
            self.bank.add(*whole)
        if region[0]:
            self.regions.add(*region)
        if paired[0]:
            self.paired.add(*paired)

    def _remove(self, entry_ids: list[int]) -> None:
        gone = set(entry_ids)
        self.images.remove([e for e in gone if e in self.meta])
        self._scan = None
        fids = [f for f, e in self.frame_entry.items() if e in gone]
        self.frames.remove(fids)
        for f in fids:
            del self.frame_entry[f]
        vids = [v for v, (e, _) in self.variant_info.items() if e in gone]
        self.bank.remove(vids)
        self.regions.remove(vids)
        self.paired.remove(vids)
        for v in vids:
            del self.variant_info[v]
        for e in gone:
            r = self.meta.pop(e, None)
            self.video_unique.pop(e, None)
            if r:
                self.by_md5.get(r.get("md5") or "", set()).discard(e)
                self.by_sha.get(r.get("sha256") or "", set()).discard(e)

    # ---------------------------------------------------------------- matching
    def _hit(self, eid: int, method: str, distance: int, variant: str, **kw) -> Hit:
        r = self.meta[eid]
        return Hit(eid, r["list"], r["ref"], r.get("category") or "", r.get("source") or "", bool(r["negative"]),
                   method, distance, variant, **kw)

    def _exact(self, path: str) -> list[Hit]:
        if not self.by_md5 and not self.by_sha:
            return []
        md5, sha = file_digests(path)
        hits = [self._hit(e, "md5", 0, "md5") for e in sorted(self.by_md5.get(md5, ()))]
        hits += [self._hit(e, "sha256", 0, "sha256") for e in sorted(self.by_sha.get(sha, ()))]
        return hits

    def match_file(self, path: str | Path) -> FileMatch:
        path = str(path)
        kind = detect_kind(path)
        return self.match_image(path) if kind == "image" else self.match_video(path)

    def match_image(self, path: str) -> FileMatch:
        hits = self._exact(path)
        return self.match_rgb(load_rgb(path), path, hits)

    def match_rgb(self, rgb: np.ndarray, path: str = "", hits: list[Hit] | None = None) -> FileMatch:
        """Match decoded pixels (all query variants; regions when the bank holds regions)."""
        scan = 0 < len(self.images) <= self.cfg.partial_max_bank  # partial variants: only when they will be scanned
        whole = query_variants(rgb, self.cfg) + (partial_variants(rgb, self.cfg) if scan else [])
        regions = region_variants(rgb, self.cfg) if len(self.regions) else []
        return self.match_variants(whole, regions, path, hits)

    def match_variants(self, whole: list[Variant], regions: list[Variant], path: str = "",
                       hits: list[Hit] | None = None) -> FileMatch:
        """Match precomputed query variants ('original' first) and region hashes."""
        hits = list(hits or [])
        quality = whole[0].quality
        low = quality < self.cfg.min_quality
        good = [v for v in whole if v.quality >= self.cfg.min_quality] if not low else []
        # paired variants (`lowpass`) meet only the banked variant of the same name; partial variants
        # (a mask of reliable bits) are compared on those bits with banked originals only
        pair_q = [v for v in good if is_paired(v.name)]
        part_q = [v for v in good if v.mask is not None]
        good = [v for v in good if not is_paired(v.name) and v.mask is None]
        found: dict[int, list[tuple[int, int, str]]] = {}  # entry → [(distance, order, label)]
        frame_t: dict[tuple[int, str], float] = {}
        order = itertools.count()

        def note(eid: int, dist: int, label: str) -> None:  # ties go to the earlier variant ('original' first)
            found.setdefault(eid, []).append((dist, next(order), label))

        if good:
            hashes = [v.pdq for v in good]
            for v, res in zip(good, self.images.search(hashes)):
                for eid, dist in res:
                    note(eid, dist, v.name)
            for v, res in zip(good, self.bank.search(hashes) if len(self.bank) else [[]] * len(good)):
                for vid, dist in res:
                    eid, bname = self.variant_info[vid]
                    note(eid, dist, f"{v.name}~{bname}")
            for v, res in zip(good, self.frames.search(hashes)):
                for fid, dist in res:
                    eid = self.frame_entry[fid]
                    t = self.frame_info[fid][0]
                    label = f"{v.name}@frame {t:g}s"
                    frame_t[(eid, label)] = t
                    note(eid, dist, label)
        if part_q and len(self.images):
            for v, res in zip(part_q, self.partial_search(part_q)):
                for eid, dist, bits in res:
                    note(eid, dist, f"{v.name}({bits} bits)")
        if pair_q and len(self.paired):
            for v, res in zip(pair_q, self.paired.search([v.pdq for v in pair_q])):
                for vid, dist in res:
                    eid, bname = self.variant_info[vid]
                    if bname == v.name:
                        note(eid, dist, f"{v.name}~{bname}")
        # regions: a banked region counts only against the query's region of the same name
        region_hits: dict[int, dict[str, int]] = {}
        good_regions = [r for r in regions if r.quality >= self.cfg.min_quality] if not low else []
        if good_regions and len(self.regions):
            for r, res in zip(good_regions, self.regions.search([r.pdq for r in good_regions])):
                for vid, dist in res:
                    eid, bname = self.variant_info[vid]
                    if bname == r.name:
                        prev = region_hits.setdefault(eid, {}).get(r.name)
                        region_hits[eid][r.name] = dist if prev is None else min(prev, dist)
        out: list[Hit] = []
        for eid in set(found) | set(region_hits):
            pairs = sorted(found.get(eid, []))
            regs = sorted((d, n) for n, d in region_hits.get(eid, {}).items())
            if not pairs and len(regs) < self.cfg.region_min_matches:
                continue
            listed = [{"variant": label, "distance": d} for d, _, label in pairs]
            listed += [{"variant": f"region:{n}", "distance": d} for d, n in regs]
            if pairs:
                dist, _, label = pairs[0]
                ranges = [(frame_t[(eid, label)],) * 2] if (eid, label) in frame_t else []
            else:  # matched through regions only: report the farthest of the matching regions
                dist, label, ranges = regs[-1][0], f"regions:{len(regs)}", []
            hit = self._hit(eid, "pdq", dist, label, banked_ranges=ranges)
            hit.matched_variants = listed
            out.append(hit)
        hits += sorted(out, key=lambda h: (h.distance, h.list, h.ref))
        return self._finish(FileMatch(path, "image", quality, low, []), hits)

    def _scan_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Live banked originals as 4 contiguous columns of uint64 words (4, n) and their ids (cached until
        the bank changes), from the index's public `live()`."""
        if self._scan is None:
            arr, ids = self.images.live()
            cols = np.ascontiguousarray(arr.view(np.uint64).reshape(-1, 4).T)  # (4, n)
            self._scan = (cols, ids)
        return self._scan

    # a partial variant probes the multi-index (pigeonhole on its reliable bits) when that is estimated to
    # cost less than this share of a scan of the banked originals, else it is scanned; both are exact
    partial_probe_work = 1.0

    def partial_search(self, variants: list[Variant], block: int = 16384) -> list[list[tuple[int, int, int]]]:
        """Every banked original whose distance on each partial variant's reliable bits is within
        `partial_threshold` → [(entry id, distance, bits used)]. Exact either way: the multi-index is
        probed by pigeonhole over its chunks' reliable bits (`PdqIndex.search_masked`) when that is
        cheaper than `partial_probe_work` × a scan; otherwise the banked originals are scanned (the
        distance on the first 128 bits, a lower bound, discards almost every entry before the other 128
        are counted). Skipped (no results) above `partial_max_bank` banked originals."""
        out: list[list[tuple[int, int, int]]] = [[] for _ in variants]
        if len(self.images) > self.cfg.partial_max_bank or not len(self.images):
            return out
        qs = []
        for i, v in enumerate(variants):
            n = int(np.unpackbits(np.frombuffer(v.mask, np.uint8)).sum())
            t = partial_threshold(n, self.cfg)
            if t >= 0:
                qs.append((i, v, n, t))
        if not qs:
            return out
        probed = self.images.search_masked([v.pdq for _, v, _, _ in qs], [v.mask for _, v, _, _ in qs],
                                           [t for *_, t in qs], max_work=self.partial_probe_work)
        scan = []
        for (i, v, n, t), res in zip(qs, probed):
            if res is None:
                scan.append((i, np.frombuffer(v.pdq, np.uint64), np.frombuffer(v.mask, np.uint64), n, t))
            else:
                out[i] = [(eid, d, n) for eid, d in res]
        if scan:
            self._partial_scan(scan, out, block)
        return out

    def _partial_scan(self, qs: list, out: list, block: int) -> None:
        words, ids = self._scan_arrays()
        qw = np.stack([q for _, q, _, _, _ in qs])
        mw = np.stack([m for _, _, m, _, _ in qs])
        lim = np.array([t for *_, t in qs])
        for s0 in range(0, len(ids), block):
            w = words[:, s0 : s0 + block]
            head = np.bitwise_count((w[0][None] ^ qw[:, :1]) & mw[:, :1]).astype(np.int16)
            head += np.bitwise_count((w[1][None] ^ qw[:, 1:2]) & mw[:, 1:2])
            qi, rows = np.nonzero(head <= lim[:, None])
            if not len(qi):
                continue
            d = head[qi, rows].astype(np.int32) + np.bitwise_count((w[2:, rows].T ^ qw[qi, 2:]) & mw[qi, 2:]).sum(axis=1, dtype=np.int32)
            for a, r, dist in zip(qi.tolist(), rows.tolist(), d.tolist()):
                i, _, _, n, t = qs[a]
                if dist <= t:
                    out[i].append((int(ids[s0 + r]), int(dist), n))

    def video_query_frames(self, source: str, container=None):
        """Sample the query densely (video_query_fps) and hash each frame plus, when it has uniform
        bars, the frame without them. Yields QueryFrame; pixels are dropped frame by frame."""
        cfg = self.cfg
        step = 1.0 / cfg.video_fps
        next_primary = 0.0
        for t, number, rgb in iter_sampled_frames(source, cfg.video_query_fps, container):
            primary = t + 1e-6 >= next_primary
            if primary:
                next_primary = (int(t / step + 1e-6) + 1) * step
            pdq, q = pdq_rgb(rgb)
            alts = [pdq]
            if cfg.unletterbox:
                trimmed = unletterbox(rgb, cfg.unletterbox_tolerance, cfg.unletterbox_min_fraction)
                if trimmed is not None and min(trimmed.shape[:2]) >= 5:
                    h2, q2 = pdq_rgb(trimmed)
                    if q2 >= cfg.min_quality:
                        alts.append(h2)
            yield QueryFrame(round(t, 3), number, pdq, q, alts, primary)

    def match_video(self, path: str, frames: list[QueryFrame] | None = None) -> FileMatch:
        hits = self._exact(path)
        if frames is None:
            frames = list(self.video_query_frames(path))
        if not frames:
            raise MediaError(f"{path}: no decodable video frames")
        cfg = self.cfg
        good = [f for f in frames if f.quality >= cfg.min_quality]
        # unique query frames (vPDQ de-duplicates identical frame hashes)
        uniq: dict[bytes, list[bytes]] = {}
        times: dict[bytes, list[float]] = {}
        for f in good:
            uniq.setdefault(f.pdq, f.alts)
            times.setdefault(f.pdq, []).append(f.timestamp)
        keys = list(uniq)
        flat = [(k, a) for k in keys for a in uniq[k]]
        gap = 1.5 / cfg.video_query_fps
        per_entry: dict[int, dict] = {}
        frame_res = self.frames.search([a for _, a in flat]) if flat else []
        for (qk, _), res in zip(flat, frame_res):
            for fid, dist in res:
                eid = self.frame_entry[fid]
                st = per_entry.setdefault(eid, {"q": set(), "b": set(), "bt": [], "qt": [], "d": 999})
                t, bh = self.frame_info[fid]
                if qk not in st["q"]:
                    st["qt"] += times[qk]
                st["q"].add(qk)
                st["b"].add(bh)
                st["bt"].append(t)
                st["d"] = min(st["d"], dist)
        primary = {f.pdq for f in good if f.primary}
        for eid, st in per_entry.items():
            qpct = 100.0 * len(st["q"] & primary) / max(1, len(primary))
            cpct = 100.0 * len(st["b"]) / max(1, self.video_unique.get(eid, 1))
            if len(st["q"]) >= cfg.video_min_matched_frames and (
                qpct >= cfg.video_min_query_pct or cpct >= cfg.video_min_compared_pct
            ):
                hits.append(self._hit(eid, "vpdq", st["d"], f"video query {qpct:.1f}% compared {cpct:.1f}%",
                                      query_pct=round(qpct, 2), compared_pct=round(cpct, 2),
                                      query_ranges=merge_ranges(st["qt"], gap),
                                      banked_ranges=merge_ranges(st["bt"], 1.5 / cfg.video_fps)))
        # banked images seen in a frame
        best: dict[int, Hit] = {}
        for (qk, _), res in zip(flat, self.images.search([a for _, a in flat]) if flat else []):
            for eid, dist in res:
                if eid not in best or dist < best[eid].distance:
                    t0 = min(times[qk])
                    best[eid] = self._hit(eid, "pdq", dist, f"frame {t0:g}s", query_ranges=merge_ranges(times[qk], gap))
        hits += sorted(best.values(), key=lambda h: (h.distance, h.list, h.ref))
        quality = int(np.median([f.quality for f in frames]))
        fm = FileMatch(path, "video", quality, not good, [], frames=len(frames))
        return self._finish(fm, hits)

    @staticmethod
    def _finish(fm: FileMatch, hits: list[Hit]) -> FileMatch:
        """Negative lists: a positive hit is suppressed when a negative entry is at least as close."""
        neg = [h for h in hits if h.negative]
        pos = [h for h in hits if not h.negative]
        keep = []
        for h in pos:
            if h.method == "vpdq":  # a negative video at least as fully present
                blocker = next((n for n in neg if n.method == "vpdq" and (n.compared_pct or 0) >= (h.compared_pct or 0)), None)
            else:  # a negative hash at least as close
                blocker = next((n for n in neg if n.method == h.method and n.distance <= h.distance), None)
            if blocker is None:
                keep.append(h)
            else:
                fm.suppressed.append({"entry": h.entry, "distance": h.distance, "by": blocker.entry,
                                      "by_distance": blocker.distance})
        keep.sort(key=lambda h: (h.method not in ("md5", "sha256"), -(h.compared_pct or 0), h.distance))
        fm.hits = keep
        return fm


def _row_from_entry(i: int, e: ListEntry, list_name: str, negative: bool) -> dict:
    return {"id": i, "list": list_name, "ref": e.ref, "kind": e.kind, "pdq": e.pdq, "quality": e.quality,
            "md5": e.md5, "sha256": e.sha256, "category": e.category, "source": e.source,
            "metadata": json.dumps(e.metadata), "negative": negative, "withdrawn_version": None}

