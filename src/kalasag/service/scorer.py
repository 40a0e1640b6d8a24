"""`StreamScorer`: score each transfer as it arrives, from incremental per-account state.

    scorer = StreamScorer(config, SQLiteStore("state/"))
    results = scorer.submit([{"txn_id": "T1", "timestamp": "2025-05-01T14:30:00+08:00", ...}])
    results[0].hold, results[0].receiver.score, results[0].receiver.indicators

The store's log is the truth (event sourcing). `submit` validates every record first (nothing is
applied when one is bad: TransferRejected), appends the new ones durably (`Store.append`), then folds
them into the state in log order. The state is kalasag.indicators.StreamEvidence (per-account
incremental evidence of every indicator with a stream form) plus a cache of the network and
population evidence (N-01…N-04, I-21, I-22, I-23, and the scoring room's A-01 and P-01), which
`refresh_network` recomputes over the log with the batch code. Scores use the scoring room's
weights and formula (docs/scoring.md) and its explanations; restart = latest snapshot + replay of
the log after it. docs/service.md, "State" and "Parity with batch".

Thread-safety: one scorer is not thread-safe; callers serialize `submit`, `catch_up`, `account`,
`alerts`, `refresh_network`/`install_network`, `snapshot` with one lock. `compute_network` alone
touches no state and may run in another thread (it reads the store); `install_network` then swaps
its result in under the lock.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sortedcontainers import SortedList

from kalasag import scoring
from kalasag.indicators import INDICATORS, StreamEvidence, explain
from kalasag.model import SIDES, KalasagConfig
from kalasag.scoring import IndicatorRef, explain_row, weight_for
from kalasag.service import state as codec
from kalasag.service import trace
from kalasag.service.store import Store

log = logging.getLogger("kalasag.service")

class TransferRejected(Exception):
    """A record of a submitted batch is invalid: nothing of the batch was applied.
    `reason` is a kalasag.model.QUARANTINE_REASONS code (as batch ingest's quarantine)."""

    def __init__(self, index: int, txn_id: str | None, reason: str, field: str | None, message: str) -> None:
        super().__init__(f"transfer {index}{f' ({txn_id})' if txn_id else ''}: {reason}: {message}")
        self.index, self.txn_id, self.reason, self.field, self.message = index, txn_id, reason, field, message


@dataclass
class SideResult:
    account_id: str
    score: float
    risk_level: str
    alerted: bool
    indicators: list[str]


@dataclass
class TransferResult:
    txn_id: str
    duplicate: bool
    hold: bool
    sender: SideResult
    receiver: SideResult


@dataclass
class NetworkCache:
    """Batch evidence of the indicators without a stream form, per side and account (only accounts
    with some of it fired), computed over the log up to `seq`."""

    seq: int = 0
    computed_at: str | None = None
    seconds: float = 0.0
    columns: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {s: {} for s in SIDES})


def _py(v: Any) -> Any:
    """numpy / pandas scalars → plain Python (JSON-safe), NaN/NaT → None."""
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and math.isnan(v):
        return None
    if type(v).__name__ in ("NaTType",):
        return None
    if hasattr(v, "isoformat") and not isinstance(v, str):
        return v.isoformat()
    return v


def _state_digest(config: KalasagConfig) -> str:
    """SHA-256 of the configuration the state depends on: all but [service] (hold threshold,
    snapshot interval… do not change what the state holds), [media] (known-material matching, a
    room of its own) and [report] (the batch report's layout)."""
    import hashlib
    import json

    data = config.model_dump(mode="json")
    data.pop("media", None)
    data.pop("report", None)
    svc = data.pop("service", None) or {}
    data["state_horizon_days"] = svc.get("state_horizon_days")   # the one [service] setting the state depends on
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def lower_priority(nice: int) -> None:
    """Initializer of background processes: a lower CPU priority than the service's, and (Linux)
    ended with the service — a worker waiting for its next job would otherwise outlive a kill -9."""
    if nice:
        try:
            os.nice(nice)
        except OSError:  # pragma: no cover - not permitted
            pass
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the service already went
            os._exit(0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def network_job(config: KalasagConfig, store_spec: Any, upto: int, since_ts: int = 0, watchlist: Any = None) -> NetworkCache:
    """`compute_network_cache` in another process, over its own connection to the store
    (`store_spec`: the store's `reopen_spec()`)."""
    from kalasag.service.stores import open_spec

    store = open_spec(store_spec)
    try:
        return compute_network_cache(config, store, upto, watchlist=watchlist, since_ts=since_ts)
    finally:
        store.close()


def compute_network_cache(config: KalasagConfig, store: Store, upto: int, *, watchlist: Any = None,
                          since_ts: int = 0) -> NetworkCache:
    """Run the batch evidence — kalasag.indicators.compute_evidence, kalasag.network.network_evidence
    and the scoring room's own (kalasag.scoring.scoring_evidence), as `kalasag scan` does — over the
    log up to `upto` (only transfers at or after `since_ts`, epoch s: the state horizon) and keep,
    per side and account, the columns of the evidence without a stream form (graph and population
    evidence), for the accounts where some of it fired."""
    import pandas as pd

    from kalasag import network as net
    from kalasag.engine import Engine
    from kalasag.indicators import compute_evidence
    from kalasag.model import DERIVED_COLUMNS, TRANSFER_COLUMNS

    started = time.perf_counter()
    extra = list(scoring.scoring_refs()) if hasattr(scoring, "scoring_refs") else []
    refs = [IndicatorRef(i.id, i.slug, i.name) for i in INDICATORS.values()] + extra
    batch_only = [r for r in refs if r.id not in INDICATORS or not INDICATORS[r.id].stream]
    names = [c.name for c in TRANSFER_COLUMNS] + [c.name for c in DERIVED_COLUMNS if c.name != "row_number"]
    cols: dict[str, list[Any]] = {c: [] for c in names}
    seqs: list[int] = []
    for seq, rec in store.read_since(0):
        if seq > upto:
            break
        if since_ts and int(rec["ts_epoch"]) < since_ts:
            continue
        seqs.append(seq)
        for c in names:
            cols[c].append(rec.get(c))
    out = NetworkCache(seq=seqs[-1] if seqs else upto, computed_at=datetime.now(UTC).isoformat())
    if not seqs:
        return out
    df = pd.DataFrame(cols)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601").dt.tz_localize(None).astype("datetime64[us]")
    for c in ("amount", "amount_usd", "fx_rate"):
        df[c] = df[c].astype("float64")
    df["ts_epoch"] = df["ts_epoch"].astype("int64")
    df["row_number"] = seqs
    for c in names:
        if c not in ("timestamp", "amount", "amount_usd", "fx_rate", "ts_epoch"):
            df[c] = df[c].astype("string")
    eng = Engine(threads=1)
    try:
        t = eng.from_records(df)
        wl = net.load_watchlist(eng, watchlist) if watchlist else None
        ev = compute_evidence(eng, t, config, watchlist=wl)
        ev = net.network_evidence(eng, t, ev, config)
        # the scoring room's own evidence, as kalasag scan adds it before scoring
        tables = (scoring.scoring_evidence(eng, ev, t, config, refs) if hasattr(scoring, "scoring_evidence")
                  else {side: ev.side(side) for side in SIDES})
        for side in SIDES:
            table = tables[side]
            slugs = [r.slug for r in batch_only if r.id not in INDICATORS or side in INDICATORS[r.id].sides]
            keep = [c for slug in slugs for c in table.columns if c.startswith(slug + "_")]
            if not keep:
                continue
            any_fired = None
            for slug in slugs:
                if f"{slug}_fired" in table.columns:
                    f = table[f"{slug}_fired"].fill_null(False) | (table[f"{slug}_strength"].fill_null(0.0) > 0)
                    any_fired = f if any_fired is None else any_fired | f
            frame = eng.fetch(table.filter(any_fired).select("account_id", *keep))
            for rec in frame.to_dict("records"):
                out.columns[side][str(rec.pop("account_id"))] = {k: _py(v) for k, v in rec.items()}
    finally:
        eng.close()
    out.seconds = time.perf_counter() - started
    return out


class SlicedSnapshot:
    """A snapshot encoded a slice at a time on the scorer's thread between submits — no fork, no
    copy of the heap, nothing added to the submits' path but a pair's copy (docs/service.md,
    "Snapshots").

    A *fuzzy* snapshot with exact replay: at the start (log position `seq`) it takes the list of
    account sides, the pair table (its values copied on first change: `preserve`), the counters
    and the network evidence, all as of `seq`. Each account side is then encoded, in the original
    order, *as it is when a slice reaches it*, and its log position at that moment is recorded
    (`positions`: runs of `[count, position]`, since slices only move forward). A restart restores
    the snapshot and replays the log after `seq`, skipping for each account side the transfers at
    or before its position (`StreamEvidence.restore(positions=…)`): the pair table and the counters
    see every transfer after `seq` once, each side every transfer it did not hold yet. The result
    is the state an uninterrupted run has (tested). Counters an account side's own history
    changes (late transfers, rebuilds) while it waits to be encoded are added to the snapshot's
    counters (`StreamEvidence.on_side_counted`), since the replay skips them. The state horizon's
    compaction — which drops and rebuilds accounts — waits while a snapshot is in progress.

    (Until format 2 the account sides were kept as of `seq` by encoding each one *before* its
    first change: at the start of a snapshot nearly every transfer paid two such encodings, ≈ 75 µs
    each, which overloaded the scorer for about 2 s per snapshot at 3,000 transfers/s.)"""

    CHUNK = 2_500   # pair-table entries per unit of work (≈ 1 ms)

    def __init__(self, scorer: "StreamScorer") -> None:
        ev = scorer.evidence
        self.scorer = scorer
        self.seq = scorer.applied_seq
        self.digest = scorer._digest
        self.order = {s: list(ev.accounts[s]) for s in SIDES}
        self.done = {s: 0 for s in SIDES}   # how many of `order` are encoded
        # the sides not encoded yet, as sets: made when first needed (`_counted`, rare) — 48,000
        # account ids into sets would cost ≈ 10 ms at the start, on the submits' path
        self.todo: dict[str, set[str]] | None = None
        self.positions: dict[str, list[int]] = {s: [] for s in SIDES}   # runs: count, position, …
        self.pair_tables = (dict(ev._pairs_old), dict(ev.pairs))
        self.pairs_copied: set[tuple[str, str]] = set()
        self.ev_counters = dict(ev.counters)
        self.horizon = [ev.clock, ev.last_seq, ev._pairs_gen, len(ev._pairs_old)]
        net = scorer.network   # never changed in place (install_network swaps it)
        self.network = {"seq": net.seq, "computed_at": net.computed_at, "seconds": net.seconds}
        self.net_columns = {s: list(net.columns[s].items()) for s in SIDES}
        self.counters = dict(scorer.counters)
        self.pieces: list[bytes] = []
        self.started = time.perf_counter()
        self.slice_end = self.started   # when the last slice ended (the next one's budget grows with the gap)
        self.cpu = 0.0          # thread CPU seconds spent in slices
        self.saved_later = 0    # account sides encoded after a transfer changed them (position > seq)
        self.pairs_preserved = 0
        self.counted_before_saved = 0   # counter changes of sides not yet encoded (kept in the snapshot's counters)
        self.slices = 0
        ev.on_side_counted = self._counted
        self._work = self._encode()

    @staticmethod
    def _item(key: Any, value: Any) -> bytes:
        return b"," + orjson.dumps(key) + b"," + orjson.dumps(codec._enc(value))

    def _counted(self, side: str, acc: str, names: tuple[str, ...]) -> None:
        """A counter changed by an account side's own history: the replay will skip it if the side
        is encoded later (it is still to do), so the snapshot's counters keep it."""
        if self.order is None:   # every account is encoded
            return
        if self.todo is None:
            self.todo = {s: set(itertools.islice(self.order[s], self.done[s], None)) for s in SIDES}
        if acc in self.todo[side]:
            for name in names:
                self.ev_counters[name] += 1
            self.counted_before_saved += 1

    def detach(self) -> None:
        """Stop listening to the evidence (the accounts are encoded, or the snapshot is dropped)."""
        ev = self.scorer.evidence
        if ev.on_side_counted == self._counted:
            ev.on_side_counted = None

    def preserve(self, sender_id: str, receiver_id: str) -> None:
        """Called before a transfer between these accounts is folded in: the pair's value as of
        `seq` is kept (replacing a value in the copied table keeps the order)."""
        key = (sender_id, receiver_id)
        if self.pair_tables is not None and key not in self.pairs_copied:
            self.pairs_copied.add(key)
            for table in self.pair_tables:
                v = table.get(key)
                if v is not None:
                    table[key] = list(v)
                    self.pairs_preserved += 1

    def step(self, budget: float) -> bool:
        """Encode for about `budget` seconds (at least one unit of work); True when the whole
        snapshot is encoded."""
        end = time.perf_counter() + budget
        c0 = time.thread_time()
        self.slices += 1
        try:
            for _ in self._work:
                if time.perf_counter() >= end:
                    return False
            return True
        finally:
            self.cpu += time.thread_time() - c0
            self.slice_end = time.perf_counter()

    def _encode(self) -> Iterable[None]:
        """The encoding, as a generator that yields after each unit of work (`step` stops it when
        its budget is spent). Output: the pieces of `codec.encode(snapshot data)`."""
        out = self.pieces
        head = {"format": codec.FORMAT_VERSION, "config": self.digest}
        out.append(codec.MAGIC + b"[" + orjson.dumps(head) + b',["D","evidence",["D","accounts",["D"')
        scorer, first = self.scorer, self.seq
        for side in SIDES:
            out.append(b"," + orjson.dumps(side) + b',["D"')
            runs, done = self.positions[side], self.done
            for acc in self.order[side]:
                out.append(self._item(acc, scorer.evidence.accounts[side][acc]))
                done[side] += 1
                if self.todo is not None:
                    self.todo[side].discard(acc)
                pos = scorer.applied_seq
                if runs and runs[-1] == pos:
                    runs[-2] += 1
                else:
                    runs += (1, pos)
                if pos != first:
                    self.saved_later += 1
                yield
            out.append(b"]")
        self.detach()
        self.order = self.todo = None  # type: ignore[assignment]
        # the pair table as five columns (StreamEvidence.state), the previous generation first
        cols: list[list[Any]] = [[], [], [], [], []]
        for table in self.pair_tables:
            k = 0
            for key, v in table.items():
                cols[0].append(key[0])
                cols[1].append(key[1])
                cols[2].append(v[0])
                cols[3].append(v[1])
                cols[4].append(v[2])
                k += 1
                if k % self.CHUNK == 0:
                    yield
        self.pair_tables = self.pairs_copied = None  # type: ignore[assignment]
        out.append(b'],"pairs",["L"')
        for col in cols:
            out.append(b',["L"')
            step = self.CHUNK
            for i in range(0, len(col), step):   # codec._enc(col) a chunk at a time
                out.append(b"," + orjson.dumps(codec._enc(col[i:i + step])[1:])[1:-1])
                yield
            out.append(b"]")
        del cols
        out.append(b'],"counters",' + orjson.dumps(codec._enc(self.ev_counters)) + b',"horizon",'
                   + orjson.dumps(codec._enc(self.horizon)) + b"]")
        net = self.network
        out.append(b',"network",["D","seq",' + orjson.dumps(codec._enc(net["seq"])) + b',"computed_at",'
                   + orjson.dumps(codec._enc(net["computed_at"])) + b',"seconds",'
                   + orjson.dumps(codec._enc(net["seconds"])) + b',"columns",["D"')
        for side in SIDES:
            out.append(b"," + orjson.dumps(side) + b',["D"')
            for acc, cols_ in self.net_columns[side]:
                out.append(self._item(acc, cols_))
                yield
            out.append(b"]")
        out.append(b']],"counters",' + orjson.dumps(codec._enc(self.counters)) + b',"positions",'
                   + orjson.dumps(codec._enc(self.positions)) + b"]]")


def warm_up_transfers(config: KalasagConfig, n: int, now: datetime) -> list[dict[str, Any]]:
    """`n` synthetic transfers (ids `warm-up-…`) that take every path of the scoring code: watched
    (cross-border into a target country) and not, related and unrelated pairs, repeat senders and
    beneficiaries, keywords-free references, late transfers (every 50th, ten days early: the exact
    rebuild) — over the 60 days before `now`. Only ever submitted to a scratch scorer."""
    from datetime import timedelta

    target = sorted(config.target_countries)[0] if config.target_countries else "PH"
    origins = [("US", "USD", 25.0), ("JP", "JPY", 4700.0), ("GB", "GBP", 30.0), ("AU", "AUD", 60.0)]
    surnames = ["REYES", "SANTOS", "DELA CRUZ", "GARCIA", "BAUTISTA"]
    start = now - timedelta(days=60)
    step = timedelta(days=59) / max(1, n)
    out = []
    for i in range(n):
        country, cur, base = origins[i % len(origins)]
        s, r = i % 23, i % 11
        ts = start + step * i - (timedelta(days=10) if i % 50 == 49 else timedelta(0))
        out.append({
            "txn_id": f"warm-up-{i}", "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "amount": f"{base * (1 + (i * 37) % 90 / 10):.2f}", "currency": cur, "channel": "mto",
            "sender_id": f"warm-up-s{s}", "receiver_id": f"warm-up-r{r}",
            "sender_name": f"ANA {surnames[s % 5]}", "receiver_name": f"Jose {surnames[r % 5 if r % 3 else 4]}",
            "sender_country": country, "receiver_country": country if i % 7 == 6 else target,
            "receiver_phone": f"+63 917 555 {r:04d}", "reference": ("family support", "school fees", "")[i % 3],
        })
    return out


class StreamScorer:
    def __init__(self, config: KalasagConfig, store: Store, *, now: Callable[[], datetime] | None = None,
                 watchlist: Any = None, fx: Any = None) -> None:
        """`now`: the clock of the future-timestamp check; `watchlist`: a watchlist file for I-23
        (used by the refresh); `fx`: an FX table or `--fx` CSV for validate_record (None: bundled)."""
        self.config = config
        self.store = store
        self.now = now or (lambda: datetime.now(UTC))
        self.watchlist = watchlist
        self.fx = fx
        self.svc = config.service
        self._digest = _state_digest(config)
        self.evidence = StreamEvidence(config, history=self._history, max_lateness=self.svc.max_lateness_seconds,
                                       on_evict=self._evicted)
        self.network = NetworkCache()
        # the evidence the score combines, in score_table's order: the indicators, then the scoring
        # room's own evidence (A-01 anomaly, P-01 paid by high-scoring senders: population-level and
        # second-pass evidence, refreshed with the network evidence)
        self._extra = list(scoring.scoring_refs()) if hasattr(scoring, "scoring_refs") else []
        self.refs = [IndicatorRef(i.id, i.slug, i.name) for i in INDICATORS.values()] + self._extra
        self._explain = scoring.explainer(explain, config) if hasattr(scoring, "explainer") else explain
        sc = config.scoring
        self._prior = {s: float(sc.prior_log_odds[s]) for s in SIDES}
        self._core_w = {s: weight_for(config, "core_rule", s) for s in SIDES}
        # per side: (id, position in the stream decisions or the slug, fired col, strength col, weight, stream?)
        pos = self.evidence.position
        self._terms = {
            s: [(i.id, pos[s][i.id] if i.stream else i.slug, i.col("fired"), i.col("strength"), weight_for(config, i.id, s),
                 bool(i.stream)) for i in INDICATORS.values() if s in i.sides]
            + [(r.id, r.slug, f"{r.slug}_fired", f"{r.slug}_strength", weight_for(config, r.id, s), False)
               for r in self._extra]
            for s in SIDES
        }
        # the fast path of an account without network evidence: only the stream terms, same order
        self._stream_terms = {s: [(iid, k, w) for iid, k, _, _, w, stream in self._terms[s] if stream] for s in SIDES}
        self._per_10k = {s: sc.alerts_per_10k.get(s) for s in SIDES}
        self._fixed_threshold = sc.alert_threshold
        self._alerted_set: dict[str, dict[str, float]] = {s: {} for s in SIDES}  # fixed-threshold sides
        self.scores: dict[str, dict[str, tuple[float, float, tuple[str, ...]]]] = {s: {} for s in SIDES}
        self._ranked: dict[str, SortedList] = {s: SortedList() for s in SIDES}  # (-score, account)
        self.applied_seq = 0
        self._since_snapshot = 0
        self._child: tuple[int, int] | None = None  # a background snapshot ("fork" mode): (pid, seq)
        self._snap: SlicedSnapshot | None = None   # a snapshot being encoded in slices ("slices" mode)
        self._writer: Any = None                   # … then stored by this thread: (thread, seq, result)
        self.last_snapshot: dict[str, Any] = {}    # how the last periodic snapshot went (metrics)
        self.defer_housekeeping = False   # the gate runs `housekeeping` after answering
        self._snapshot_started = -math.inf   # time.monotonic() of the last background snapshot
        self.last_submit_seconds = 0.0
        self.last_submit_parts = (0.0, 0.0, 0.0)   # ms: validation, log append, folding in + results
        self.last_housekeeping = ""       # what the last housekeeping call did (diagnostics: kalasag.service.trace)
        self.counters = {"submitted": 0, "duplicates": 0, "rejected_batches": 0, "snapshots": 0,
                         "network_refreshes": 0, "replayed": 0}
        self._load()

    # ---- startup ------------------------------------------------------------------------------
    def _load(self) -> None:
        snap = self.store.load_snapshot()
        if snap is not None:
            seq, blob = snap
            try:
                data = codec.decode(blob, self._digest)
            except codec.SnapshotError as exc:
                log.warning("snapshot ignored (%s): rebuilding the state from the log", exc)
            else:
                self.evidence.restore(data["evidence"], positions=data.get("positions"))
                net = data.get("network") or {}
                self.network = NetworkCache(seq=net.get("seq", 0), computed_at=net.get("computed_at"),
                                            seconds=net.get("seconds", 0.0),
                                            columns=net.get("columns") or {s: {} for s in SIDES})
                self.counters.update(data.get("counters", {}))
                self.applied_seq = int(seq)
                for side in SIDES:
                    for acc in self.network.columns[side]:
                        self.evidence.dirty.add((side, acc))
        n = self._replay()
        self.counters["replayed"] = n
        self.evidence.compact()   # the state horizon, all of it before serving
        self._rescore_dirty()

    def _replay(self) -> int:
        n = 0
        for seq, rec in self.store.read_since(self.applied_seq):
            self.evidence.apply(seq, rec)
            self.applied_seq = seq
            for side, key in (("sender", "sender_id"), ("receiver", "receiver_id")):
                self.evidence.dirty.add((side, rec[key]))
            n += 1
        return n

    def _history(self, side: str, account_id: str, upto: int, since: int = 0,
                 since_ts: int = 0) -> Iterable[tuple[int, Mapping[str, Any]]]:
        """One account's transfers from the log with since ≤ seq ≤ upto, none before `since_ts`
        (`Store.read_account`)."""
        return self.store.read_account(side, account_id, upto, since, since_ts=since_ts)

    def _evicted(self, side: str, acc: str) -> None:
        """The state horizon dropped an account side (no transfer in the last horizon)."""
        old = self.scores[side].pop(acc, None)
        self._alerted_set[side].pop(acc, None)
        if old is not None and self._per_10k[side] is not None:
            self._ranked[side].discard((-old[0], acc))

    # ---- the per-transfer path -----------------------------------------------------------------
    def submit(self, records: Sequence[Mapping[str, Any]]) -> list[TransferResult]:
        """Validate every record (TransferRejected on the first bad one: nothing applied), append the
        batch to the store (durable when this returns), fold the new transfers into the state and
        return one result per record (duplicates: `duplicate=True` and the current scores)."""
        from kalasag.ingest import RecordRejected, validate_record

        started = time.perf_counter()
        now = self.now()
        canon: list[dict[str, Any]] = []
        for i, rec in enumerate(records):
            try:
                canon.append(validate_record(rec, self.config, now=now, fx=self.fx))
            except RecordRejected as exc:
                self.counters["rejected_batches"] += 1
                tid = rec.get("txn_id") if isinstance(rec, Mapping) else None
                raise TransferRejected(i, tid if isinstance(tid, str) else None, exc.reason, exc.field, exc.message) from exc
        validated = time.perf_counter()
        seqs = self.store.append(canon)
        appended = time.perf_counter()
        new = [s for s in seqs if s is not None]
        if new and (new[0] != self.applied_seq + 1 or new[-1] - new[0] != len(new) - 1):
            self.catch_up(upto=new[-1])  # another worker appended in between: apply the log in order
            applied_here = False
        else:
            applied_here = True
        out: list[TransferResult] = []
        snap = self._snap
        for rec, seq in zip(canon, seqs, strict=True):
            if seq is not None and applied_here:
                if snap is not None:
                    snap.preserve(rec["sender_id"], rec["receiver_id"])
                self.evidence.apply(seq, rec)
                self.applied_seq = seq
                self._since_snapshot += 1
            self.counters["submitted"] += 1
            if seq is None:
                self.counters["duplicates"] += 1
            out.append(self._result(rec, duplicate=seq is None))
        end = time.perf_counter()
        self.last_submit_seconds = end - started
        # where a slow submit's time went (kalasag.service.trace names it), in ms
        self.last_submit_parts = (round((validated - started) * 1e3, 1), round((appended - validated) * 1e3, 1),
                                  round((end - appended) * 1e3, 1))
        if not self.defer_housekeeping:
            self.housekeeping()
        return out

    def housekeeping(self, spent: float | None = None) -> None:
        """After a submit: a slice of the state horizon's compaction (at most `state_compact_share`
        of the submit's own time `spent`, at least 1 ms — docs/service.md, "State horizon") and the
        periodic snapshot. `submit` calls it itself unless `defer_housekeeping` is set: the gate
        sets it and calls this after the submit's answers are on their way."""
        if self._snap is not None:
            # a snapshot in progress: a slice of it; the compaction waits (it drops and rebuilds
            # accounts, which the snapshot's replay could not redo). The slice is at most
            # snapshot_slice_seconds and at most snapshot_slice_share of the wall time since the
            # previous slice ended, so many small submits do not stack slices into more CPU than
            # the service can spare
            now = time.perf_counter()
            snap = self._snap
            budget = min(self.svc.snapshot_slice_seconds, self.svc.snapshot_slice_share * (now - snap.slice_end))
            if budget <= 0:
                self.last_housekeeping = "snapshot: slice skipped (no time since the last slice)"
                return
            if snap.step(budget):
                self.last_housekeeping = "snapshot: last slice, stored by a thread"
                self._finish_snapshot()
            else:
                self.last_housekeeping = "snapshot slice"
            return
        ev = self.evidence
        self.last_housekeeping = "compaction slice"
        if ev.horizon:
            spent = self.last_submit_seconds if spent is None else spent
            ev.compact(max(0.001, spent * self.svc.state_compact_share))
        if self._maybe_snapshot():
            self.last_housekeeping = "compaction slice; snapshot started"

    def _result(self, rec: Mapping[str, Any], duplicate: bool) -> TransferResult:
        s = self._side_result("sender", rec["sender_id"])
        r = self._side_result("receiver", rec["receiver_id"])
        th, side = self.svc.hold_threshold, self.svc.hold_side
        hold = (r.score >= th) if side == "receiver" else (s.score >= th) if side == "sender" else max(r.score, s.score) >= th
        return TransferResult(txn_id=rec["txn_id"], duplicate=duplicate, hold=hold, sender=s, receiver=r)

    def _side_result(self, side: str, acc: str) -> SideResult:
        # an account whose decisions are all current (no stale indicator, not marked for rescoring:
        # e.g. after a transfer no indicator watches) keeps its score: no need to recompute it
        a = self.evidence.accounts[side].get(acc)
        val = self.scores[side].get(acc) if a is not None and not a.stale else None
        if val is None or (side, acc) in self.evidence.dirty:
            val = self._rescore(side, acc)
        score, _, fired = val
        return SideResult(account_id=acc, score=score, risk_level=self._risk(score), alerted=self._alerted(side, score),
                          indicators=list(fired))

    def catch_up(self, upto: int | None = None) -> int:
        """Apply log entries appended by other workers (shared store); returns how many."""
        n = 0
        for seq, rec in self.store.read_since(self.applied_seq):
            if upto is not None and seq > upto:
                break
            if self._snap is not None:
                self._snap.preserve(rec["sender_id"], rec["receiver_id"])
            self.evidence.apply(seq, rec)
            self.applied_seq = seq
            self._since_snapshot += 1
            for side, key in (("sender", "sender_id"), ("receiver", "receiver_id")):
                self.evidence.dirty.add((side, rec[key]))
            n += 1
        if not self.defer_housekeeping:
            self.housekeeping(0.0)
        return n

    def warm_up(self, transfers: int = 400, log_tail: int = 0) -> float:
        """Pay the first-call costs of the scoring path before serving — lazy imports of the
        validation and FX code, the FX table, time-zone tables, compiled decisions, the snapshot
        codec, explanations — by scoring `transfers` synthetic transfers on a **scratch** scorer over
        an in-memory store: neither this scorer's state nor the durable store is touched. Then
        `log_tail`: the per-transfer caches (parsed names, phones, references) of this scorer are
        filled from the log's latest `log_tail` transfers (read only). Returns the seconds it took
        (docs/service.md, "Readiness and warm-up")."""
        from kalasag.service.store import MemoryStore

        started = time.perf_counter()
        scratch = StreamScorer(self.config, MemoryStore(), now=self.now, fx=self.fx) if transfers > 0 else None
        if scratch is not None:
            recs = warm_up_transfers(self.config, transfers, self.now())
            for i in range(0, len(recs), 25):
                scratch.submit(recs[i:i + 25])
            scratch.submit(recs[:5])   # duplicates
            try:
                scratch.submit([{"txn_id": "warm-up-bad"}])   # the rejection path
            except TransferRejected:
                pass
            for a in scratch.alerts(limit=3) or [{"account_id": recs[0]["receiver_id"]}]:
                scratch.account(a["account_id"])
            scratch.account(recs[0]["sender_id"])
            scratch.stats()
            codec.decode(codec.encode(scratch._snapshot_data(), scratch._digest), scratch._digest)
        del scratch
        if log_tail > 0:
            # the per-transfer caches of this scorer (names, phones, references: RecordPrep) are
            # not in the snapshot; fill them from the log's latest transfers (read only, no state)
            prep = self.evidence.prep
            for seq, rec in self.store.read_since(max(0, self.applied_seq - log_tail)):
                if seq > self.applied_seq:
                    break
                prep(rec, seq)
        return time.perf_counter() - started

    # ---- scoring (docs/scoring.md: the formula of kalasag.scoring.score_table) --------------------
    def _rescore(self, side: str, acc: str) -> tuple[float, float, tuple[str, ...]]:
        self.evidence.dirty.discard((side, acc))
        d = self.evidence.decisions(side, acc)
        if d is None:
            return 0.0, 0.0, ()
        fired_s, strength_s, core = d
        # score_table's formula in its order: prior + Σ weight · strength (indicators in registry
        # order, then A-01) + weight · core_rule; fired ids in the same order
        logit = self._prior[side]
        fired: list[str] = []
        net = self.network.columns[side].get(acc)
        if net is None:  # no network evidence: its terms add nothing (same sum, same order)
            for iid, k, w in self._stream_terms[side]:
                if w:
                    logit = logit + strength_s[k] * w
                if fired_s[k]:
                    fired.append(iid)
        else:
            for iid, k, fcol, scol, w, stream in self._terms[side]:
                if stream:
                    if w:
                        logit = logit + strength_s[k] * w
                    if fired_s[k]:
                        fired.append(iid)
                else:
                    if w:
                        logit = logit + float(net.get(scol) or 0.0) * w
                    if net.get(fcol):
                        fired.append(iid)
        cw = self._core_w[side]
        if cw:
            logit = logit + float(core) * cw
        score = 1.0 / (1.0 + math.exp(-logit))
        val = (score, logit, tuple(fired))
        old = self.scores[side].get(acc)
        self.scores[side][acc] = val
        if old is None or old[0] != score:
            if self._per_10k[side] is None:  # a fixed threshold: the alerted set is kept as it goes
                if score >= self._fixed_threshold:
                    self._alerted_set[side][acc] = score
                else:
                    self._alerted_set[side].pop(acc, None)
            else:  # capacity: the k-th highest score decides, so every score is ranked
                ranked = self._ranked[side]
                if old is not None:
                    ranked.remove((-old[0], acc))
                ranked.add((-score, acc))
        return val

    def score(self, side: str, account_id: str) -> tuple[float, tuple[str, ...]] | None:
        """(current score, fired evidence ids) of one account on one side; None without transfers."""
        if (side, account_id) not in self.evidence:
            return None
        val = self.scores[side].get(account_id)
        if val is None or (side, account_id) in self.evidence.dirty:
            val = self._rescore(side, account_id)
        return val[0], val[2]

    def _rescore_dirty(self) -> None:
        while self.evidence.dirty:
            side, acc = self.evidence.dirty.pop()
            self._rescore(side, acc)

    def _risk(self, score: float) -> str:
        sc = self.config.scoring
        return "high" if score >= sc.risk_high else "medium" if score >= sc.risk_medium else "low"

    def threshold(self, side: str) -> float:
        """The alert threshold of a side: fixed, or the capacity threshold (the k-th highest score)."""
        per = self._per_10k[side]
        if per is None:
            return self._fixed_threshold
        ranked = self._ranked[side]
        k = math.ceil(len(ranked) * per / 10_000)
        return -ranked[k - 1][0] if k >= 1 and ranked else math.inf

    def _best(self, side: str) -> list[tuple[float, str]]:
        """(score, account) of the alerted accounts of a side, highest first."""
        if self._per_10k[side] is None:
            return sorted(((v, a) for a, v in self._alerted_set[side].items()), key=lambda x: (-x[0], x[1]))
        th = self.threshold(side)
        out = []
        for neg, acc in self._ranked[side]:
            if -neg < th:
                break
            out.append((-neg, acc))
        return out

    def _alerted(self, side: str, score: float) -> bool:
        return score >= self.threshold(side)

    # ---- reading ------------------------------------------------------------------------------
    def row(self, side: str, acc: str) -> dict[str, Any] | None:
        """The full evidence row of one account as batch scoring sees it (stream + network columns,
        score, logit, risk_level, alerted, indicators)."""
        base = self.evidence.columns(side, acc)
        if base is None:
            return None
        net = self.network.columns[side].get(acc) or {}
        for _, slug, fcol, scol, _, stream in self._terms[side]:
            if not stream:
                base[fcol] = bool(net.get(fcol, False))
                base[scol] = float(net.get(scol) or 0.0)
                prefix = slug + "_"
                for k, v in net.items():
                    if k.startswith(prefix):
                        base.setdefault(k, v)
        score, logit, fired = self._rescore(side, acc)
        base.update(score=score, logit=logit, risk_level=self._risk(score), alerted=self._alerted(side, score),
                    indicators=";".join(fired))
        return base

    def explanation(self, side: str, row: Mapping[str, Any]) -> str:
        return explain_row(row, side, self.refs, self.config, self._explain)

    def account(self, account_id: str) -> dict[str, Any] | None:
        """Per side (when the account has transfers on it): score, risk level, alerted, fired
        indicators, the explanation and the metrics behind it."""
        out: dict[str, Any] = {}
        for side in SIDES:
            row = self.row(side, account_id)
            if row is None:
                continue
            metrics = {k: v for k, v in row.items()
                       if k not in ("account_id", "score", "logit", "risk_level", "alerted", "indicators")}
            out[side] = {
                "score": row["score"], "risk_level": row["risk_level"], "alerted": row["alerted"],
                "indicators": [i for i in row["indicators"].split(";") if i],
                "explanation": self.explanation(side, row), "metrics": metrics,
            }
        if not out:
            return None
        return {"account_id": account_id, **out, "network_evidence_as_of_seq": self.network.seq}

    def alerts(self, side: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Current alerted accounts, highest score first (each with its explanation)."""
        self._rescore_dirty()
        sides = SIDES if side is None else (side,)
        cands: list[tuple[float, str, str]] = []
        for s in sides:
            cands.extend((score, s, acc) for score, acc in self._best(s)[:limit])
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        out = []
        for score, s, acc in cands[:limit]:
            row = self.row(s, acc)
            out.append({"account_id": acc, "side": s, "score": score, "risk_level": row["risk_level"],
                        "indicators": [i for i in row["indicators"].split(";") if i],
                        "explanation": self.explanation(s, row), "n_transactions": row["n_transactions"],
                        "total_usd": row["total_usd"], "first_seen": row["first_seen"], "last_seen": row["last_seen"],
                        "counterparties": row["counterparties"]})
        return out

    def alerted_accounts(self, side: str) -> dict[str, float]:
        """Every alerted account of a side with its score (after pending rescoring)."""
        self._rescore_dirty()
        return {acc: score for score, acc in self._best(side)}

    # ---- network and population evidence (periodic, batch code) ---------------------------------
    def network_since(self) -> int:
        """The first transfer time (epoch s) the network evidence covers: the state horizon."""
        ev = self.evidence
        return max(0, ev.clock - ev.horizon) if ev.horizon else 0

    def compute_network(self, upto: int | None = None, store: Store | None = None,
                        since_ts: int | None = None) -> NetworkCache:
        """The batch evidence without a stream form over the log up to `upto` (default: what this
        scorer has applied): `compute_network_cache`. Touches no scorer state, so it may run in
        another thread — give it its own `store` connection when the scorer's store must not be
        used from two threads (PostgreSQL, Redis; SQLiteStore locks itself) — or the module
        function may run in another process (its arguments and result pickle)."""
        return compute_network_cache(self.config, store or self.store, self.applied_seq if upto is None else upto,
                                     watchlist=self.watchlist,
                                     since_ts=self.network_since() if since_ts is None else since_ts)

    def install_network(self, cache: NetworkCache) -> None:
        """Swap in network evidence computed by `compute_network`. The affected accounts are marked
        for rescoring: each is rescored at its next transfer, or by the next `alerts()`."""
        old = self.network
        self.network = cache
        for side in SIDES:
            for acc in set(old.columns[side]) | set(cache.columns[side]):
                if (side, acc) in self.evidence:
                    self.evidence.dirty.add((side, acc))
        self.counters["network_refreshes"] += 1

    def refresh_network(self) -> None:
        """Recompute network and population evidence over the log (batch code) and use it."""
        self.install_network(self.compute_network())

    # ---- snapshots and counters ---------------------------------------------------------------
    def _maybe_snapshot(self) -> bool:
        self._collect_snapshot()
        every = self.svc.snapshot_every
        gap = self.svc.snapshot_min_seconds
        if self.svc.snapshot_mode == "slices":   # the encoding's CPU at most this share of the time
            gap = max(gap, self.last_snapshot.get("encode_cpu_seconds", 0.0) / self.svc.snapshot_cpu_share)
        if (every and self._since_snapshot >= every and self._child is None and self._snap is None
                and self._writer is None and time.monotonic() - self._snapshot_started >= gap):
            self.snapshot(background=True)
            return True
        return False

    def _snapshot_data(self) -> dict[str, Any]:
        return {
            "evidence": self.evidence.state(),
            "network": {"seq": self.network.seq, "computed_at": self.network.computed_at,
                        "seconds": self.network.seconds, "columns": self.network.columns},
            "counters": self.counters,
        }

    def snapshot(self, background: bool = False) -> None:
        """Save the state as of the last applied log entry (replaces the previous snapshot).

        `background=True` (the periodic snapshots; encoding a large state takes seconds):
        - [service] snapshot_mode "slices" (default): starts a `SlicedSnapshot` of the state as of
          now; `housekeeping` encodes it a slice at a time after each submit (each account side
          as the slice finds it, with its log position: the restart's replay skips what a side
          holds), then a thread stores it (`_finish_snapshot`).
          `_collect_snapshot(wait=True)` finishes it at once.
        - "fork": a forked child process encodes its copy-on-write image of the state and stores
          it itself, through its own store connection (`Store.reopen`), at a lower CPU priority
          ([service] snapshot_nice). Without fork or `reopen` it is done here and now.
        `background=False` (e.g. at shutdown) abandons a sliced snapshot in progress and encodes
        and stores the whole state here and now."""
        if not background:
            self._abandon_snapshot()
        self._collect_snapshot(wait=not background)
        if background and self.svc.snapshot_mode == "slices":
            if self._snap is None and self._writer is None:
                self._snap = SlicedSnapshot(self)
                trace.event("snapshot started at log position %d (%d account sides)", self.applied_seq,
                            sum(map(len, self._snap.order.values())))
                self._since_snapshot = 0
                self._snapshot_started = time.monotonic()
            return
        if background and hasattr(os, "fork") and self._child is None and hasattr(self.store, "reopen"):
            seq = self.applied_seq
            nice = self.svc.snapshot_nice
            pid = os.fork()
            if pid == 0:  # the child: encode and store, leave without running any cleanup of the parent
                code = 1
                try:
                    import gc

                    gc.disable()   # a collection would touch (copy) every page of the shared image
                    if nice:
                        try:
                            os.nice(nice)
                        except OSError:
                            pass
                    blob = codec.encode(self._snapshot_data(), self._digest)
                    store = self.store.reopen()
                    store.save_snapshot(seq, blob)
                    store.close()
                    code = 0
                except BaseException:  # noqa: BLE001 - reported by the exit status
                    code = 1
                finally:
                    os._exit(code)
            self._child = (pid, seq)
            self._since_snapshot = 0
            self._snapshot_started = time.monotonic()
            return
        self.store.save_snapshot(self.applied_seq, codec.encode(self._snapshot_data(), self._digest))
        self._since_snapshot = 0
        self.counters["snapshots"] += 1

    def _finish_snapshot(self) -> None:
        """The sliced snapshot is encoded: store it on a thread of its own (SQLiteStore: the
        pieces are written to a file, fsynced and renamed, then a one-row reference is committed;
        other stores: through their own connection, `reopen`), so the file I/O and the fsync are
        not on the scorer's thread. A store with neither stores it here."""
        import threading

        snap, self._snap = self._snap, None
        assert snap is not None
        pieces, seq = snap.pieces, snap.seq
        self.last_snapshot = {"seq": seq, "encode_cpu_seconds": round(snap.cpu, 3), "slices": snap.slices,
                              "sides_saved_later": snap.saved_later,
                              "encode_wall_seconds": round(time.perf_counter() - snap.started, 3),
                              "bytes": sum(map(len, pieces))}
        trace.event("snapshot at log position %d encoded: %.2f s CPU in %d slices over %.1f s, %d account sides "
                    "saved after a change (now at %d), %.1f MB", seq, snap.cpu, snap.slices,
                    self.last_snapshot["encode_wall_seconds"], snap.saved_later, self.applied_seq,
                    self.last_snapshot["bytes"] / 1e6)
        result: dict[str, Any] = {}
        store = self.store

        def write() -> None:
            t0 = time.perf_counter()
            try:
                if hasattr(store, "save_snapshot_pieces"):
                    store.save_snapshot_pieces(seq, pieces)
                else:
                    # one buffer for the driver, grown a piece at a time (each copy short, so the
                    # GIL passes back to the scorer in between), handed over without a final copy
                    buf = bytearray()
                    for piece in pieces:
                        buf += piece
                    other = store.reopen()
                    try:
                        other.save_snapshot(seq, memoryview(buf))
                    finally:
                        other.close()
                result["ok"] = True
            except BaseException as exc:  # noqa: BLE001 - reported when reaped
                # its text only, and its traceback dropped: the traceback holds this frame (whose
                # `result` would hold the exception) and the frames that raised it (whose locals
                # may) — cycles that kept the snapshot's pieces (≈ 120 MB at world-s1) alive until
                # a full garbage collection, once more with every failed snapshot
                result["error"] = f"{type(exc).__name__}: {exc}"
                exc.__traceback__ = None
            result["seconds"] = time.perf_counter() - t0

        if not hasattr(store, "save_snapshot_pieces") and not hasattr(store, "reopen"):
            write()
            self._writer = (None, seq, result)
        else:
            t = threading.Thread(target=write, name="kalasag-snapshot-writer", daemon=True)
            t.start()
            self._writer = (t, seq, result)
        self._collect_snapshot()

    def _abandon_snapshot(self) -> None:
        """Drop a sliced snapshot still being encoded (a foreground one replaces it)."""
        if self._snap is not None:
            self._snap.detach()
            self._snap = None
            log.info("periodic snapshot in progress abandoned for a foreground one")

    def _collect_snapshot(self, wait: bool = False) -> None:
        """Reap a finished background snapshot (or, `wait`, finish and wait for a running one)."""
        if wait and self._snap is not None:
            while not self._snap.step(1.0):
                pass
            self._finish_snapshot()
        if self._writer is not None:
            thread, seq, result = self._writer
            if thread is not None:
                if wait:
                    thread.join()
                elif thread.is_alive():
                    return
            self._writer = None
            if result.get("ok"):
                self.counters["snapshots"] += 1
                self.last_snapshot["write_seconds"] = round(result.get("seconds", 0.0), 3)
            else:
                log.warning("periodic snapshot at log position %s failed (%s); the next one will retry",
                            seq, result.get("error"))
        if self._child is None:
            return
        pid, seq = self._child
        try:
            done, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere
            self._child = None
            return
        if not done:
            return
        self._child = None
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            self.counters["snapshots"] += 1
        else:
            log.warning("background snapshot at log position %s failed (status %s); the next one will retry", seq, status)

    def stats(self) -> dict[str, Any]:
        """Counters for /metrics."""
        ev = self.evidence.counters
        return {
            "applied_seq": self.applied_seq,
            "transfers_applied": ev["applied"],
            "transfers_submitted": self.counters["submitted"],
            "duplicates": self.counters["duplicates"],
            "rejected_batches": self.counters["rejected_batches"],
            "replayed_at_start": self.counters["replayed"],
            "late_exact": ev["late_exact"],
            "late_approximate": ev["late_approximate"],
            "relation_changes": ev["relation_changes"],
            "account_rebuilds": ev["rebuilds"],
            "accounts_sender": len(self.evidence.accounts["sender"]),
            "accounts_receiver": len(self.evidence.accounts["receiver"]),
            "alerted_sender": len(self.alerted_accounts("sender")),
            "alerted_receiver": len(self.alerted_accounts("receiver")),
            "pairs": self.evidence.pair_count(),
            "compactions": ev["compactions"],
            "evicted_accounts": ev["evicted"],
            "compaction_queue": len(self.evidence.due),
            "compaction_seconds": ev["compaction_seconds"],
            "snapshots": self.counters["snapshots"],
            "snapshot_in_progress": int(self._snap is not None or self._writer is not None),
            "snapshot_last_seq": self.last_snapshot.get("seq", 0),
            "snapshot_encode_cpu_seconds": self.last_snapshot.get("encode_cpu_seconds", 0.0),
            "snapshot_encode_wall_seconds": self.last_snapshot.get("encode_wall_seconds", 0.0),
            "snapshot_bytes": self.last_snapshot.get("bytes", 0),
            "network_refreshes": self.counters["network_refreshes"],
            "network_seq": self.network.seq,
            "network_lag": self.applied_seq - self.network.seq,
            "network_seconds": self.network.seconds,
        }
