"""Exact range search over 256-bit PDQ hashes: multi-index hashing (MIH) with exact verification.

The 256 bits are split into m chunks. If two hashes differ in d bits, some chunk differs in at most
floor(d/m) bits (pigeonhole: m chunks each with >= r+1 differing bits would make d >= m(r+1)). So
probing, in every chunk, all keys within radius r = floor(d/m) of the query's chunk finds every hash
within distance d. Two layouts: 12 chunks (4 of 22 bits, 8 of 21) with r = 2 at d = 31 (254 probes
per chunk, sparse buckets: best for large banks) and 16 chunks of 16 bits with r = 1 (17 probes per
chunk, dense buckets: best below a few million hashes, as FAISS IndexBinaryMultiHash / pytx use);
"auto" picks by size. Every candidate is then checked with the exact Hamming distance, so results
are exactly those of brute force (tests and the benchmark compare with FAISS IndexBinaryFlat).
Distances with too many probes per chunk fall back to a brute-force scan.

Layout (per chunk): the rows sorted by the chunk's value; a direct bucket table (one 64-bit word per
key: start << 32 | size, so a probe is one read); and a copy of 96 other bits of each hash (one 64-bit
and one 32-bit column sharing no byte with the chunk) in the same sorted order. A bucket's
candidates are read contiguously; the query's own 96 bits are repeated over the bucket's run rather
than gathered per candidate; their distance plus the probe's radius — a lower bound of the full
distance — discards almost every non-match; survivors are verified on all 256 bits. Queries are
processed in batches of up to 4,096; in a dense chunk the batch's probes are sorted by key first, so
the buckets are read in memory order (a near-sequential sweep instead of random reads). Memory per hash:
32 B (hash) + 8 B (id) + m × (4 B order + 12 B filter) = 232 B (12 chunks) or 296 B (16 chunks), plus
the bucket tables (256 MB for 12x21, 8 MB for 16x16).

Additions go to a small unsorted "delta" segment scanned by brute force, so a new hash is
matchable immediately; the delta is merged into the sorted segment when it grows past a size.
Withdrawals are tombstones. Neither needs a rebuild.

`search_masked` answers a range query on a subset of the bits (a partial variant's reliable bits):
the pigeonhole is applied per chunk on the masked bits, with a radius per chunk chosen greedily by
probe cost and every value of the chunk's unmasked bits probed; candidates are verified exactly.
`live()` lists the live hashes (for callers that scan them).
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import numpy as np

from kalasag.media.errors import MediaError

LAYOUTS = {
    # 12 chunks (4 x 22 + 8 x 21 bits): radius 2 at d = 31; fewer candidates, larger offset tables
    "12x21": (22, 22, 22, 22, 21, 21, 21, 21, 21, 21, 21, 21),
    # 16 chunks of 16 bits (FAISS IndexBinaryMultiHash / pytx PDQIndex): radius 1 at d = 31
    "16x16": (16,) * 16,
}
# Code defaults of the index; a Matcher takes them from [media] (index_layout, index_auto_switch,
# index_delta_limit in default_config.toml).
DEFAULT_LAYOUT = "auto"  # 16x16 below `auto_switch` banked hashes, 12x21 from there (docs/benchmarks.md)
AUTO_SWITCH = 3_000_000
MAX_PROBES_PER_CHUNK = 2000  # beyond this radius, scan instead
# Masked search (partial variants): estimated cost in units of one scanned hash (measured, 16x16 layout,
# docs/benchmarks.md): a fixed ~30,000 per query (the 16 chunks' numpy calls), 2 per probe, 5 per candidate.
PROBE_OVERHEAD = 30_000


def as_hash_array(hashes) -> np.ndarray:
    """bytes / hex strings / (n, 32) uint8 → contiguous (n, 32) uint8."""
    if isinstance(hashes, np.ndarray):
        arr = hashes
    else:
        items = list(hashes)
        if items and isinstance(items[0], str):
            items = [bytes.fromhex(h) for h in items]
        arr = np.frombuffer(b"".join(items), np.uint8) if items else np.empty(0, np.uint8)
    arr = np.ascontiguousarray(arr, dtype=np.uint8).reshape(-1, 32)
    return arr


def _starts(bits: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(x) for x in np.cumsum((0,) + bits[:-1]))


def _chunk_keys(arr: np.ndarray, bits: tuple[int, ...]) -> np.ndarray:
    """(n, 32) uint8 → (n, chunks) uint32 chunk values (bits in big-endian order, as in the hex form)."""
    be = arr.view(">u8").astype(np.uint64)  # (n, 4) big-endian words
    out = np.empty((len(arr), len(bits)), np.uint32)
    for k, (a, w) in enumerate(zip(_starts(bits), bits)):
        wi, off = divmod(a, 64)
        if off + w <= 64:
            v = be[:, wi] >> np.uint64(64 - off - w)
        else:
            lo_bits = off + w - 64
            v = (be[:, wi] << np.uint64(lo_bits)) | (be[:, wi + 1] >> np.uint64(64 - lo_bits))
        out[:, k] = v & np.uint64((1 << w) - 1)
    return out


def _words(arr: np.ndarray) -> np.ndarray:
    return arr.view(np.uint64)  # (n, 4)


@functools.lru_cache(maxsize=64)
def _filter_words(bits: tuple[int, ...], k: int) -> tuple[int, int]:
    """A native 64-bit word and a 32-bit word of the hash (96 bits) that share no byte with chunk k:
    their distance plus the chunk's own is a lower bound of the full distance."""
    a, w = _starts(bits)[k], bits[k]
    touched = set(range(a // 8, (a + w - 1) // 8 + 1))  # bytes of chunk k
    free64 = [i for i in range(4) if not touched & set(range(8 * i, 8 * i + 8))]
    w64 = free64[0]
    free32 = [j for j in range(8) if j // 2 != w64 and not touched & set(range(4 * j, 4 * j + 4))]
    return w64, free32[-1]


@functools.lru_cache(maxsize=64)
def _masks(width: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    out, bits = [0], [0]
    for r in range(1, radius + 1):
        for combo in combinations(range(width), r):
            out.append(sum(1 << b for b in combo))
            bits.append(r)
    return np.array(out, dtype=np.uint32), np.array(bits, dtype=np.uint8)


def _masked_plan(bits: tuple[int, ...], mkey: np.ndarray, t: int, max_probes: int = 1 << 20):
    """Radii per chunk for a masked search within `t` (see PdqIndex.search_masked): greedily raise the
    radius whose next step adds the fewest probes (2^unmasked × C(masked, r)) until Σ (ρ_k + 1) ≥ t + 1.
    → (radii, total probes, probes per chunk), or None beyond `max_probes`."""
    import heapq
    from math import comb

    masked = [int(mkey[k]).bit_count() for k in range(len(bits))]
    free = [w - c for w, c in zip(bits, masked)]
    radii, probes = [-1] * len(bits), [0] * len(bits)
    heap = [((1 << free[k]) * comb(masked[k], 0), k) for k in range(len(bits))]
    heapq.heapify(heap)
    need, total = t + 1, 0
    while need > 0:
        if not heap:
            return None
        cost, k = heapq.heappop(heap)
        radii[k] += 1
        probes[k] += cost
        total += cost
        need -= 1
        if total > max_probes:
            return None
        if radii[k] + 1 <= masked[k]:
            heapq.heappush(heap, ((1 << free[k]) * comb(masked[k], radii[k] + 1), k))
    return radii, total, probes


@functools.lru_cache(maxsize=128)  # masks differ per query: a small cache (a pattern is at most a few MB)
def _masked_pattern(width: int, mkey: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """XOR patterns of a chunk: ≤ `radius` flips among the masked bits × every value of the unmasked bits,
    and the number of masked flips of each."""
    on = np.array([b for b in range(width) if mkey >> b & 1], np.uint32)
    off = np.array([b for b in range(width) if not mkey >> b & 1], np.uint32)
    flips, rad = _masks(len(on), radius) if len(on) else (np.zeros(1, np.uint32), np.zeros(1, np.uint8))
    spread = (((flips[:, None] >> np.arange(len(on), dtype=np.uint32)) & 1) << on).sum(axis=1, dtype=np.uint32)
    sub = np.arange(1 << len(off), dtype=np.uint32)
    free = (((sub[:, None] >> np.arange(len(off), dtype=np.uint32)) & 1) << off).sum(axis=1, dtype=np.uint32)
    return (spread[:, None] | free[None, :]).reshape(-1), np.repeat(rad, len(free))


def _masked_probes(width: int, mkey: int, qkey: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket keys of a chunk that differ from `qkey` in at most `radius` of the masked bits (any value
    of the unmasked bits), and that number of bits for each key."""
    pattern, rad = _masked_pattern(width, mkey, radius)
    return np.uint32(qkey & mkey) ^ pattern, rad


def hamming_many(query_words: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Distances between rows: query_words (k, 4) vs words (k, 4) pairwise-aligned, or (4,) vs (n, 4)."""
    if query_words.ndim == 2 and words.ndim == 2:  # per-column sums: faster than .sum(axis=1)
        out = np.bitwise_count(query_words[:, 0] ^ words[:, 0]).astype(np.int32)
        for c in range(1, query_words.shape[1]):
            out += np.bitwise_count(query_words[:, c] ^ words[:, c])
        return out
    return np.bitwise_count(np.bitwise_xor(query_words, words)).sum(axis=-1, dtype=np.int32)


class PdqIndex:
    """Range search: every banked id within `max_distance` of each query, with its distance."""

    def __init__(self, max_distance: int = 31, delta_limit: int = 65536, layout: str = DEFAULT_LAYOUT,
                 auto_switch: int = AUTO_SWITCH):
        if not 0 <= max_distance <= 256:
            raise MediaError(f"max_distance must be within 0..256, got {max_distance}")
        if layout not in LAYOUTS and layout != "auto":
            raise MediaError(f"unknown index layout {layout!r} (expected auto or one of {', '.join(LAYOUTS)})")
        self.layout = layout
        self.auto_switch = auto_switch
        self.bits = LAYOUTS["16x16" if layout == "auto" else layout]
        self.max_distance = max_distance
        self.delta_limit = delta_limit
        self._main = np.empty((0, 32), np.uint8)
        self._main_ids = np.empty(0, np.int64)
        self._offsets: list[np.ndarray] = []
        self._orders: list[np.ndarray] = []
        self._filters: list[np.ndarray] = []
        self._delta: list[np.ndarray] = []
        self._delta_ids: list[np.ndarray] = []
        self._delta_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._dead: set[int] = set()
        self._dead_arr = np.empty(0, np.int64)

    # ---------------------------------------------------------------- updates
    def __len__(self) -> int:
        n = len(self._main_ids) + sum(len(d) for d in self._delta_ids)
        return n - len(self._dead)

    def add(self, ids, hashes) -> None:
        arr = as_hash_array(hashes)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(arr):
            raise MediaError(f"{len(ids)} ids for {len(arr)} hashes")
        if not len(ids):
            return
        if self._dead and np.isin(ids, self._dead_arr).any():
            self._dead.difference_update(int(i) for i in ids)
            self._dead_arr = np.fromiter(self._dead, np.int64, len(self._dead))
        if len(self._main_ids) == 0 and not self._delta:
            self._build(arr.copy(), ids.copy())
            return
        self._delta.append(arr.copy())
        self._delta_ids.append(ids.copy())
        self._delta_cache = None
        if sum(len(d) for d in self._delta_ids) > max(self.delta_limit, len(self._main_ids) // 20):
            self.compact()

    def remove(self, ids) -> None:
        """Withdraw ids (tombstones; physically dropped at the next compaction). Ids not in the index
        are ignored."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        present = np.isin(ids, self._main_ids) | np.isin(ids, np.concatenate([np.empty(0, np.int64), *self._delta_ids]))
        self._dead.update(int(i) for i in ids[present])
        self._dead_arr = np.fromiter(self._dead, np.int64, len(self._dead))

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live (added, not withdrawn) hash and its id: ((n, 32) uint8, (n,) int64), the sorted
        segment first, then the delta segment in order of addition. A copy only when something has to
        be joined or dropped; do not modify the arrays returned."""
        arr = np.concatenate([self._main, *self._delta]) if self._delta else self._main
        ids = np.concatenate([self._main_ids, *self._delta_ids]) if self._delta_ids else self._main_ids
        if len(self._dead_arr):
            keep = ~np.isin(ids, self._dead_arr)
            arr, ids = arr[keep], ids[keep]
        return np.ascontiguousarray(arr), np.asarray(ids, np.int64)

    def compact(self) -> None:
        parts = [self._main, *self._delta]
        idparts = [self._main_ids, *self._delta_ids]
        arr, ids = np.concatenate(parts), np.concatenate(idparts)
        if self._dead:
            keep = ~np.isin(ids, self._dead_arr)
            arr, ids = arr[keep], ids[keep]
            self._dead.clear()
            self._dead_arr = np.empty(0, np.int64)
        self._build(arr, ids)

    def _build(self, arr: np.ndarray, ids: np.ndarray) -> None:
        if self.layout == "auto":  # dense 16-bit buckets are cheapest for small banks, sparse 21/22-bit ones for large
            self.bits = LAYOUTS["16x16" if len(ids) < self.auto_switch else "12x21"]
        self._main, self._main_ids = np.ascontiguousarray(arr), ids
        keys = _chunk_keys(self._main, self.bits)
        w64, w32 = self._main.view(np.uint64), self._main.view(np.uint32)  # (n, 4), (n, 8)
        self._orders, self._offsets, self._filters = [], [], []
        for k, width in enumerate(self.bits):
            order = np.argsort(keys[:, k], kind="stable" if width <= 16 else "quicksort").astype(np.int32)
            counts = np.bincount(keys[:, k], minlength=1 << width)
            # one 64-bit word per bucket: start << 32 | size (a probe reads one word, not two)
            starts = np.zeros(1 << width, np.int64)
            np.cumsum(counts[:-1], out=starts[1:])
            offsets = (starts << 32) | counts.astype(np.int64)
            del starts
            self._orders.append(order)
            self._offsets.append(offsets)
            # two 1-D columns in the chunk's order (96 bits): a bucket's filter bits are read contiguously
            c64, c32 = _filter_words(self.bits, k)
            self._filters.append((np.ascontiguousarray(w64[order, c64]), np.ascontiguousarray(w32[order, c32])))
        del keys
        self._delta, self._delta_ids, self._delta_cache = [], [], None

    # ---------------------------------------------------------------- search
    def search(self, queries, max_distance: int | None = None, batch: int = 4096,
               threads: int = 1) -> list[list[tuple[int, int]]]:
        """For each query, [(id, distance), …] sorted by distance then id, all within max_distance.
        Batches can run on several threads (numpy releases the GIL; docs/benchmarks.md shows the gain)."""
        d = self.max_distance if max_distance is None else max_distance
        q = as_hash_array(queries)
        out: list[list[tuple[int, int]]] = [[] for _ in range(len(q))]
        threads = max(1, threads)
        batch = max(1, min(batch, -(-len(q) // threads)))  # at least one batch per thread
        starts = list(range(0, len(q), batch))
        workers = min(len(starts), threads)

        def one(start: int) -> None:
            self._search_batch(q[start : start + batch], d, out, start)

        if workers <= 1:
            for start in starts:
                one(start)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(one, starts))
        return out

    def _search_batch(self, qb: np.ndarray, d: int, out: list, start: int) -> None:
        hits = [self._search_main(qb, d), self._search_delta(qb, d)]
        qi = np.concatenate([h[0] for h in hits])
        ids = np.concatenate([h[1] for h in hits])
        dist = np.concatenate([h[2] for h in hits])
        if self._dead and len(ids):
            keep = ~np.isin(ids, self._dead_arr)
            qi, ids, dist = qi[keep], ids[keep], dist[keep]
        if len(ids):
            order = np.lexsort((ids, dist, qi))
            qi, ids, dist = qi[order], ids[order], dist[order]
            # drop duplicates (a candidate found through several chunks)
            first = np.ones(len(ids), bool)
            first[1:] = (qi[1:] != qi[:-1]) | (ids[1:] != ids[:-1])
            for a, b, c in zip(qi[first].tolist(), ids[first].tolist(), dist[first].tolist()):
                out[start + a].append((b, c))

    def _search_main(self, qb: np.ndarray, d: int):
        empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))
        n = len(self._main_ids)
        if n == 0:
            return empty
        qw = _words(qb)
        words = _words(self._main)
        radius = d // len(self.bits)
        if len(_masks(max(self.bits), radius)[0]) > MAX_PROBES_PER_CHUNK:  # brute force
            qi_l, row_l, dist_l = [], [], []
            for i in range(len(qb)):
                dist = hamming_many(qw[i], words)
                rows = np.flatnonzero(dist <= d)
                qi_l.append(np.full(len(rows), i, np.int64)); row_l.append(rows); dist_l.append(dist[rows])
            rows = np.concatenate(row_l)
            return np.concatenate(qi_l), self._main_ids[rows], np.concatenate(dist_l)
        qkeys = _chunk_keys(qb, self.bits)
        q64, q32 = qb.view(np.uint64), qb.view(np.uint32)
        qi_parts, row_parts = [], []
        for k, width in enumerate(self.bits):
            masks, mbits = _masks(width, radius)
            nm = len(masks)
            probes = (qkeys[:, k, None] ^ masks[None, :]).reshape(-1)
            if n < (2 << width):  # sparse chunk: most probes find an empty bucket, drop them first
                packed = np.take(self._offsets[k], probes)
                nz = np.flatnonzero(packed & 0xFFFFFFFF)  # non-empty buckets
                if not len(nz):
                    continue
                packed = packed[nz]
            else:  # dense chunk: visit the buckets in key order, so their runs are read in memory order
                nz = np.argsort(probes)
                packed = np.take(self._offsets[k], np.take(probes, nz))
            lo, counts = packed >> 32, packed & 0xFFFFFFFF
            ends = np.cumsum(counts)
            total = int(ends[-1])
            if not total:
                continue
            # positions lo..hi-1 of every probe, flattened (contiguous runs in the chunk's sorted order)
            pos = np.arange(total, dtype=lo.dtype) + np.repeat(lo - (ends - counts), counts)
            # lower bound of the full distance: the probe's radius in the chunk + 96 bits outside it.
            # Per-probe values are repeated over the probe's run (much cheaper than per-candidate gathers).
            pq = nz // nm
            c64, c32 = _filter_words(self.bits, k)
            col64, col32 = self._filters[k]
            lb = np.repeat(mbits[nz % nm], counts)
            lb += np.bitwise_count(np.repeat(q64[pq, c64], counts) ^ np.take(col64, pos))
            lb += np.bitwise_count(np.repeat(q32[pq, c32], counts) ^ np.take(col32, pos))
            keep = np.flatnonzero(lb <= d)
            if len(keep):
                row_parts.append(np.take(self._orders[k], np.take(pos, keep)))
                qi_parts.append(pq[np.searchsorted(ends, keep, side="right")])
        if not row_parts:
            return empty
        rows = np.concatenate(row_parts).astype(np.int64)
        qi = np.concatenate(qi_parts).astype(np.int64)
        dist = hamming_many(qw[qi], words[rows])
        keep = dist <= d
        return qi[keep], self._main_ids[rows[keep]], dist[keep]

    # ------------------------------------------------------------ masked search
    def search_masked(self, queries, masks, limits, max_work: float = 1.0) -> list[list[tuple[int, int]] | None]:
        """For each query i, every live id whose distance on the bits set in masks[i] (a partial
        variant's reliable bits) is <= limits[i] → [(id, distance)], sorted by distance then id; None
        for a query whose probing is estimated to cost more than `max_work` × a scan of the sorted
        segment (the caller scans it).

        Exact by pigeonhole over the chunks: with d_k the distance on chunk k's masked bits, d = Σ d_k.
        Give each chunk a radius ρ_k (-1 = not probed) with Σ (ρ_k + 1) ≥ limit + 1: if every probed
        chunk had d_k > ρ_k, d would be ≥ Σ (ρ_k + 1) > limit, so a match lies in a probed chunk's
        bucket whose key differs from the query's in ≤ ρ_k masked bits and anyhow in the chunk's
        unmasked bits (all their 2^u values are probed). The radii are chosen greedily by the number
        of probes each step adds. Candidates are verified with the exact masked distance; the delta
        segment is scanned; withdrawn ids are dropped."""
        q = as_hash_array(queries)
        m = as_hash_array(masks)
        limits = [int(x) for x in np.asarray(limits).reshape(-1)]
        if not len(q) == len(m) == len(limits):
            raise MediaError(f"{len(q)} queries, {len(m)} masks, {len(limits)} limits")
        n = len(self._main_ids)
        out: list[list[tuple[int, int]] | None] = [None] * len(q)
        radii: dict[int, list[int]] = {}  # query → radius per chunk (main segment probed)
        todo = []
        qkeys, mkeys = _chunk_keys(q, self.bits), _chunk_keys(m, self.bits)
        for i, t in enumerate(limits):
            if t < 0:
                out[i] = []
                continue
            if n:
                plan = _masked_plan(self.bits, mkeys[i], t)
                cand = sum(p * n / (1 << w) for p, w in zip(plan[2], self.bits)) if plan else 0
                if plan is None or PROBE_OVERHEAD + 2 * plan[1] + 5 * cand > max_work * n:
                    continue  # None: the caller scans
                radii[i] = plan[0]
            todo.append(i)
        if not todo:
            return out
        found: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {i: [] for i in todo}
        if radii:
            qi, ids, dist = self._masked_main(q, m, qkeys, mkeys, limits, radii)
            order = np.argsort(qi, kind="stable")
            qi, ids, dist = qi[order], ids[order], dist[order]
            bounds = np.searchsorted(qi, np.arange(len(q) + 1))
            for i in radii:
                found[i].append((ids[bounds[i] : bounds[i + 1]], dist[bounds[i] : bounds[i + 1]]))
        if self._delta:
            if self._delta_cache is None:
                self._delta_cache = (np.concatenate(self._delta), np.concatenate(self._delta_ids))
            arr, dids = self._delta_cache
            for i in todo:
                d = np.bitwise_count((_words(arr) ^ _words(q[i : i + 1])) & _words(m[i : i + 1])).sum(axis=1, dtype=np.int32)
                keep = d <= limits[i]
                found[i].append((dids[keep], d[keep]))
        for i in todo:
            ids = np.concatenate([f[0] for f in found[i]]) if found[i] else np.empty(0, np.int64)
            dist = np.concatenate([f[1] for f in found[i]]) if found[i] else np.empty(0, np.int32)
            if self._dead and len(ids):
                keep = ~np.isin(ids, self._dead_arr)
                ids, dist = ids[keep], dist[keep]
            order = np.lexsort((ids, dist))
            out[i] = [(int(a), int(b)) for a, b in zip(ids[order].tolist(), dist[order].tolist())]
        return out

    def _masked_main(self, q: np.ndarray, m: np.ndarray, qkeys: np.ndarray, mkeys: np.ndarray, limits: list[int],
                     radii: dict[int, list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probe every chunk for all planned queries at once → (query, id, masked distance) within the limits."""
        q64, q32, m64, m32 = q.view(np.uint64), q.view(np.uint32), m.view(np.uint64), m.view(np.uint32)
        lim = np.asarray(limits, np.int32)
        qi_l, rows_l = [], []
        for k, width in enumerate(self.bits):
            parts = [(i, *_masked_probes(width, int(mkeys[i, k]), int(qkeys[i, k]), r[k])) for i, r in radii.items() if r[k] >= 0]
            if not parts:
                continue
            keys = np.concatenate([p[1] for p in parts])
            rad = np.concatenate([p[2] for p in parts])
            owner = np.repeat(np.array([p[0] for p in parts]), [len(p[1]) for p in parts])
            packed = np.take(self._offsets[k], keys)
            nz = np.flatnonzero(packed & 0xFFFFFFFF)
            if not len(nz):
                continue
            packed, owner, rad = packed[nz], owner[nz], rad[nz]
            lo, counts = packed >> 32, packed & 0xFFFFFFFF
            ends = np.cumsum(counts)
            pos = np.arange(int(ends[-1]), dtype=lo.dtype) + np.repeat(lo - (ends - counts), counts)
            c64, c32 = _filter_words(self.bits, k)
            col64, col32 = self._filters[k]
            # lower bound: the probe's masked radius in the chunk + the masked distance on 96 bits outside it
            # (per-probe values repeated over the probe's run)
            lb = np.bitwise_count((np.take(col64, pos) ^ np.repeat(q64[owner, c64], counts))
                                  & np.repeat(m64[owner, c64], counts)).astype(np.int32)
            lb += np.bitwise_count((np.take(col32, pos) ^ np.repeat(q32[owner, c32], counts)) & np.repeat(m32[owner, c32], counts))
            lb += np.repeat(rad.astype(np.int32) - lim[owner], counts)  # <= 0: keep
            keep = np.flatnonzero(lb <= 0)
            if len(keep):
                rows_l.append(np.take(self._orders[k], np.take(pos, keep)).astype(np.int64))
                qi_l.append(owner[np.searchsorted(ends, keep, side="right")])
        if not rows_l:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)
        pair = np.unique(np.concatenate(qi_l).astype(np.int64) << 32 | np.concatenate(rows_l))  # found through several chunks: once
        qi, rows = pair >> 32, pair & 0xFFFFFFFF
        d = np.bitwise_count((_words(self._main)[rows] ^ _words(q)[qi]) & _words(m)[qi]).sum(axis=1, dtype=np.int32)
        keep = d <= lim[qi]
        return qi[keep], self._main_ids[rows[keep]], d[keep]

    def _search_delta(self, qb: np.ndarray, d: int):
        if not self._delta:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)
        if self._delta_cache is None:
            self._delta_cache = (np.concatenate(self._delta), np.concatenate(self._delta_ids))
        arr, ids = self._delta_cache
        words = _words(arr)
        qw = _words(qb)
        step = max(1, 1_000_000 // max(1, len(words)))
        qi_l, id_l, d_l = [], [], []
        for s in range(0, len(qw), step):
            dist = hamming_many(qw[s : s + step, None, :], words[None, :, :])  # (step, n)
            qi, rows = np.nonzero(dist <= d)
            qi_l.append(qi.astype(np.int64) + s); id_l.append(ids[rows]); d_l.append(dist[qi, rows])
        return np.concatenate(qi_l), np.concatenate(id_l), np.concatenate(d_l)

    def nbytes(self) -> int:
        return int(
            self._main.nbytes + self._main_ids.nbytes
            + sum(k.nbytes for k in self._offsets) + sum(o.nbytes for o in self._orders)
            + sum(c.nbytes for f in self._filters for c in f)
            + sum(d.nbytes for d in self._delta) + sum(i.nbytes for i in self._delta_ids)
        )
