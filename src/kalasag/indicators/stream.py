"""The stream form of the indicators: per-account incremental evidence, one transfer at a time.

`StreamEvidence` holds, per side and account, the base counters and one `StreamState` per
indicator with a stream form (`Indicator.stream`); `apply(seq, record)` folds in one canonical
transfer (the output of `kalasag.ingest.validate_record`) in O(1) amortized per indicator, and
`columns_of` / `columns` return the same evidence columns as `compute_evidence` would for
the transfers applied so far. The decision is each indicator's `decide` over `ops.SCALAR`; the
per-transfer flags are Context.build's, through the same functions (`night_flag`, `round_flag`,
`keyword_of`, `pair_flags`, the name rule over `ops.Text`).

What is exact, and how (docs/service.md, "Parity with batch"):

- Transfers of an account are folded in time order. One that arrives earlier than the account's
  latest (late) is applied exactly by rebuilding the account's side from its log (`history`), in
  timestamp order, when it is at most `max_lateness` seconds late; later than that it is folded in
  as if it had happened at the account's latest time (approximate; counted in `counters`).
- The relation of a sender–receiver pair is the maximum over all its transfers (batch rule): when a
  new transfer changes it, both accounts' sides are rebuilt from the log with the new relation.
- Forms that read another account's evidence (I-03 sender form, I-04 receiver form) are evaluated
  lazily from the counterpart's current evidence; when an account's I-03 (receiver) or I-04 (sender)
  evidence changes, its counterparts are marked stale and `dirty` (their scores must be recomputed).
- Indicators without a stream form (graph and population evidence) are not here: the service
  refreshes them periodically with the batch code.
- The state horizon (`horizon`, seconds; 0 = keep everything): an account side whose transfers span
  more than `horizon × (1 + compact_slack)` (plus its own share, from a hash of the account, of
  `horizon × compact_jitter`, so accounts that started together come due at different times) is queued and later *compacted* (`compact`): rebuilt from
  its log restricted to the last `horizon` before its latest transfer, so it again holds exactly
  what batch computes over that period. An account without a transfer in the last `horizon` (of
  the latest time seen) is dropped; a sender–receiver pair not seen for between one and two
  horizons is forgotten. Memory is bounded by the active accounts × (1 + slack) horizons; while the
  data spans less than the horizon nothing is compacted and the result is exactly batch's.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kalasag.indicators import names as N
from kalasag.indicators.context import keyword_of, keyword_pattern, night_flag, pair_flags, round_flag
from kalasag.indicators.evidence import CORE_RULE, core_rule
from kalasag.indicators.ops import SCALAR, Text, compile_decide, compile_mapping, compile_scalar
from kalasag.indicators.registry import INDICATORS
from kalasag.indicators.timezones import local_hour_of
from kalasag.indicators.windows import exact, from_exact
from kalasag.model import SIDES, KalasagConfig

# (side, account, upto, since, since_ts) → (seq, record) with since ≤ seq ≤ upto, in log order, leaving
# out records whose ts_epoch < since_ts (0: none) — `Store.read_account`
History = Callable[[str, str, int, int, int], Iterable[tuple[int, Mapping[str, Any]]]]
_MISSING = object()


class Tx:
    """One canonical transfer with the per-transfer flags of Context.build (the stream's row)."""

    __slots__ = (
        "seq", "txn_id", "ts", "us", "timestamp", "amount", "amount_usd", "xusd", "channel", "channel_lower",
        "sender_id", "receiver_id", "sender_country", "receiver_country", "receiver_region", "watched", "night",
        "micro", "core_micro", "round_amount", "keyword", "rel", "receiver_family", "receiver_key",
        "receiver_phone_key",
    )

    def moved(self, ts: int) -> Tx:
        """A copy placed at another time (a transfer too late to be applied exactly)."""
        t = Tx.__new__(Tx)
        for k in Tx.__slots__:
            setattr(t, k, getattr(self, k))
        t.us += (ts - t.ts) * 1_000_000
        t.ts = ts
        return t


def _micros(ts: int, iso: str) -> int:
    """Microseconds since 1970 of a canonical UTC timestamp text (YYYY-MM-DDThh:mm:ss[.ffffff]Z)."""
    frac = iso[20:-1] if len(iso) > 21 and iso[19] == "." else ""
    return ts * 1_000_000 + (int(frac.ljust(6, "0")[:6]) if frac else 0)


class RecordPrep:
    """The scalar twin of Context.build: the flags of one canonical transfer."""

    def __init__(self, config: KalasagConfig, cache_size: int = 200_000) -> None:
        ind = INDICATORS
        self.p01, self.p05 = ind["I-01"].params(config), ind["I-05"].params(config)
        self.p07, self.p08 = ind["I-07"].params(config), ind["I-08"].params(config)
        self.p09, self.p21 = ind["I-09"].params(config), ind["I-21"].params(config)
        p07, p08 = self.p07, self.p08
        # the per-transfer rules of Context, traced once into plain functions (ops.compile_scalar)
        self.night = compile_scalar(lambda hour, X: night_flag(hour, p07, X), "hour")
        self.round = compile_scalar(lambda amount, X: round_flag(amount, p08.multiple, X), "amount")
        self.targets = frozenset(c.upper() for c in config.target_countries)
        self.kw_pattern = keyword_pattern(self.p09.keywords)
        self.cache_size = cache_size
        self._names: dict[str | None, tuple[str | None, str | None, str | None]] = {}
        self._phones: dict[str | None, str | None] = {}
        self._refs: dict[str | None, str | None] = {}
        self._rels: dict[tuple, int | None] = {}

    def name(self, raw: str | None) -> tuple[str | None, str | None, str | None]:
        """(surname, middle name, identity key) of a name as typed: names.py over one string."""
        hit = self._names.get(raw)
        if hit is None:
            norm = N.normalize_name(Text(raw))
            hit = (N.surname(norm).v, N.middle_name(norm).v, N.identity_key(norm).v)
            if len(self._names) >= self.cache_size:
                self._names.clear()
            self._names[raw] = hit
        return hit

    def phone(self, raw: str | None) -> str | None:
        if raw in self._phones:
            return self._phones[raw]
        k = N.phone_key(Text(raw), self.p21.phone_digits, SCALAR)
        k = k.v if isinstance(k, Text) else k
        if len(self._phones) >= self.cache_size:
            self._phones.clear()
        self._phones[raw] = k
        return k

    def keyword(self, raw: str | None) -> str | None:
        if raw in self._refs:
            return self._refs[raw]
        k = keyword_of(Text(raw), self.kw_pattern, self.p09.handle_pattern, SCALAR)
        k = k.v if isinstance(k, Text) else k
        if len(self._refs) >= self.cache_size:
            self._refs.clear()
        self._refs[raw] = k
        return k

    def __call__(self, rec: Mapping[str, Any], seq: int) -> Tx:
        t = Tx.__new__(Tx)
        t.seq = seq
        t.txn_id = rec["txn_id"]
        t.ts = ts = int(rec["ts_epoch"])
        t.timestamp = iso = rec["timestamp"]
        t.us = _micros(ts, iso)
        t.amount = float(rec["amount"])
        t.amount_usd = usd = float(rec["amount_usd"])
        t.xusd = exact(usd)
        t.channel = ch = rec.get("channel")
        t.channel_lower = ch.lower() if ch is not None else None
        t.sender_id, t.receiver_id = rec["sender_id"], rec["receiver_id"]
        t.sender_country = sc = rec["sender_country"]
        t.receiver_country = rc = rec["receiver_country"]
        t.receiver_region = rec.get("receiver_region")
        t.watched = sc != rc and rc is not None and rc.upper() in self.targets
        t.night = self.night(local_hour_of(sc, ts))
        t.micro = usd <= self.p01.max_usd
        t.core_micro = usd <= self.p01.core_max_usd
        t.round_amount = bool(self.round(t.amount))
        t.keyword = self.keyword(rec.get("reference"))
        s_sur, s_mid, _ = self.name(rec.get("sender_name"))
        r_sur, r_mid, r_key = self.name(rec.get("receiver_name"))
        key = (s_sur, s_mid, r_sur, r_mid)
        rel = self._rels.get(key, _MISSING)
        if rel is _MISSING:
            rel = N.related(s_sur, s_mid, r_sur, r_mid, self.p05.use_middle_name, SCALAR)
            rel = None if rel is None else int(rel)
            if len(self._rels) >= self.cache_size:
                self._rels.clear()
            self._rels[key] = rel
        t.rel = rel
        t.receiver_family = r_sur if r_sur is not None else "id:" + t.receiver_id
        t.receiver_key = r_key
        t.receiver_phone_key = self.phone(rec.get("receiver_phone"))
        return t


class AccountSide:
    """One account on one side: base counters (every transfer), indicator states (watched ones) and
    the current decisions (fired, strength per stream indicator; derived, not snapshotted)."""

    __slots__ = ("n", "xusd", "first_us", "last_us", "first", "last", "last_ts", "cps", "states", "cut", "seq0",
                 "fired", "strength", "src", "stale")
    _persist = ("n", "xusd", "first_us", "last_us", "first", "last", "last_ts", "cps", "states", "cut", "seq0")

    def __init__(self, n_indicators: int = 0) -> None:
        self.n = self.xusd = self.first_us = self.last_us = self.last_ts = 0
        self.cut = 0    # after a compaction: only transfers at or after this time (epoch s) are held
        self.seq0 = 0   # … and they all have a log position ≥ seq0 (where a rebuild starts reading)
        self.first = self.last = ""
        self.cps: set[str] = set()
        self.states: list[Any] | None = None   # created with the first watched transfer
        self.reset(n_indicators)

    def reset(self, n_indicators: int) -> None:
        """Forget the derived decisions: every indicator is evaluated again when read."""
        self.fired: list[bool] = [False] * n_indicators
        self.strength: list[float] = [0.0] * n_indicators
        self.src: dict[str, dict[str, Any]] = {}     # full columns of the evidence others read (I-03, I-04)
        self.stale = (1 << n_indicators) - 1           # bit k: indicator k must be evaluated again


class _Spec:
    """One stream indicator on one side: its compiled decision and what depends on it."""

    __slots__ = ("k", "id", "ind", "p", "full", "score", "absent", "dep", "reads", "fcol", "scol", "gone")

    def __init__(self, k: int, ind: Any, p: Any, side: str) -> None:
        self.k, self.id, self.ind, self.p = k, ind.id, ind, p
        self.full = compile_decide(ind.decide, p, side, ind.col)           # every column
        self.score = compile_decide(ind.decide, p, side, ind.col, only=("fired", "strength"))
        self.absent = ind.stream_columns(None, p, side)
        self.dep = getattr(ind, "dependent_side", {}).get(side)           # whose evidence reads this one
        self.reads = tuple(ind.col(c) for c in getattr(ind, "dependent_reads", ()))  # … which columns
        # what a counterpart read reads of an account the state horizon dropped: nothing (zeros)
        self.gone = {**{c: 0 for c in self.reads}, **self.absent}
        self.fcol, self.scol = ind.col("fired"), ind.col("strength")


class StreamEvidence:
    """Per-account incremental evidence for every indicator with a stream form (see module doc)."""

    def __init__(self, config: KalasagConfig, history: History | None = None, max_lateness: int | None = None,
                 horizon: int | None = None, compact_slack: float | None = None,
                 on_evict: Callable[[str, str], None] | None = None, compact_jitter: float | None = None) -> None:
        """`horizon` (seconds, 0: keep everything), `compact_slack` and `compact_jitter` default to
        the config's [service] state_horizon_days, state_compact_slack and state_compact_jitter;
        compaction needs `history`."""
        self.config = config
        self.history = history
        svc = getattr(config, "service", None)
        self.max_lateness = int(max_lateness if max_lateness is not None else (svc.max_lateness_seconds if svc else 0))
        if horizon is None:
            horizon = int(round(float(getattr(svc, "state_horizon_days", 0) or 0) * 86400))
        if compact_slack is None:
            compact_slack = float(getattr(svc, "state_compact_slack", 2.0))
        self.horizon = int(horizon) if history is not None else 0
        if compact_jitter is None:
            compact_jitter = float(getattr(svc, "state_compact_jitter", 0.0))
        self.compact_at = int(self.horizon * (1 + compact_slack)) if self.horizon else 0
        self.compact_jitter = int(self.horizon * compact_jitter)
        self.on_evict = on_evict
        self.clock = 0          # the latest transfer time seen (epoch s)
        self.last_seq = 0       # the highest log position applied
        self.due: dict[tuple[str, str], None] = {}   # account sides waiting for compaction (in order)
        self._pairs_old: dict[tuple[str, str], list] = {}   # the previous generation of the pair table
        self._pairs_gen = 0     # when the current generation started (epoch s)
        self._trash: list[Any] = []     # dropped generations, freed a slice at a time
        # accounts left to check for inactivity: (side, its account ids), popped from the end — lists
        # of the ids the dicts already hold (a (side, account) tuple each, 48,000 new objects at
        # once, took 93–97 ms in one slice: the allocations set off the garbage collector)
        self._sweep: list[tuple[str, list[str]]] = []
        self._sweep_at = 0
        # a large account's compaction in progress, built a slice at a time:
        # [side, account, cut, upto, rows (ts, seq, record), position, new AccountSide]
        self._building: list | None = None
        # counterparts of dropped accounts, to compact before anything else; until they are, the
        # dropped accounts' last evidence (the columns they read) is kept as a ghost
        self._urgent: dict[tuple[str, str], None] = {}
        self._ghosts: dict[tuple[str, str], dict[str, Any]] = {}
        self.params = {i.id: i.params(config) for i in INDICATORS.values()}
        self.unknown_unrelated = bool(self.params["I-05"].unknown_counts_as_unrelated)
        self.inds = {s: [i for i in INDICATORS.values() if i.stream and s in i.sides] for s in SIDES}
        self.specs = {s: [_Spec(k, i, self.params[i.id], s) for k, i in enumerate(self.inds[s])] for s in SIDES}
        self.position = {s: {sp.id: sp.k for sp in self.specs[s]} for s in SIDES}
        self.sources = {s: [sp for sp in self.specs[s] if sp.dep is not None] for s in SIDES}
        core = {s: [i for part in ("all", "any") for i in CORE_RULE[s][part]] for s in SIDES}
        self._core_idx = {s: [(self.position[s][i], INDICATORS[i].col("fired")) for i in core[s] if i in self.position[s]]
                          for s in SIDES}
        self._core_fn = {s: compile_mapping(lambda m, X, s=s: core_rule(m, s, X)) for s in SIDES}
        self.prep = RecordPrep(config)
        self.accounts: dict[str, dict[str, AccountSide]] = {s: {} for s in SIDES}
        self.pairs: dict[tuple[str, str], list] = {}   # (sender, receiver) → [relation, transfers, last time]
        self.dirty: set[tuple[str, str]] = set()
        self.counters = {"applied": 0, "late_exact": 0, "late_approximate": 0, "relation_changes": 0, "rebuilds": 0,
                         "compactions": 0, "evicted": 0, "compaction_seconds": 0.0}
        # a snapshot in progress is told of the counters an account side's own history changes
        # (late transfers, rebuilds): (side, account, counter names); see `restore(positions=…)`
        self.on_side_counted: Callable[[str, str, tuple[str, ...]], None] | None = None
        # replay after a snapshot whose account sides were saved at different log positions:
        # side → {account: position}; a transfer at or before an account side's position is already
        # in that side (and only there: the pair table and the counters are as of the snapshot's start)
        self._skip: dict[str, dict[str, int]] | None = None
        self._skip_upto = 0

    # ---- folding in ---------------------------------------------------------------------------
    def apply(self, seq: int, rec: Mapping[str, Any]) -> Tx:
        """Fold in one canonical transfer (log position `seq`); returns its prepared form."""
        tx = self.prep(rec, seq)
        if seq > self.last_seq:
            self.last_seq = seq
        skip = self._skip
        if skip is not None and seq > self._skip_upto:
            self._skip = skip = None
        if tx.ts > self.clock:
            self.clock = tx.ts
            if self.horizon and tx.ts - self._pairs_gen >= self.horizon:
                self._rotate_pairs(tx.ts)
        key = (tx.sender_id, tx.receiver_id)
        pr = self.pairs.get(key)
        if pr is None and self._pairs_old:
            pr = self._pairs_old.pop(key, None)
            if pr is not None:
                self.pairs[key] = pr
        flip = False
        if pr is None:
            self.pairs[key] = [tx.rel, 1, tx.ts]
        else:
            if tx.ts > pr[2]:
                pr[2] = tx.ts
            old = pr[0]
            new = old if tx.rel is None else (tx.rel if old is None or tx.rel > old else old)
            if new != old:
                pr[0] = new
                flip = True
                self.counters["relation_changes"] += 1
            pr[1] += 1
        for side, acc, cp in (("sender", tx.sender_id, tx.receiver_id), ("receiver", tx.receiver_id, tx.sender_id)):
            if skip is not None and skip[side].get(acc, 0) >= seq:
                continue   # (replay: this side was saved after this transfer)
            accounts = self.accounts[side]
            a = accounts.get(acc)
            if a is None:
                a = accounts[acc] = AccountSide(len(self.specs[side]))
            late = a.n > 0 and tx.ts < a.last_ts
            if (flip or late) and self.history is not None and (flip or a.last_ts - tx.ts <= self.max_lateness):
                self._rebuild(side, acc, seq)
                if late:
                    self.counters["late_exact"] += 1
                if self.on_side_counted is not None:
                    self.on_side_counted(side, acc, ("rebuilds", "late_exact") if late else ("rebuilds",))
            else:
                if late:
                    self.counters["late_approximate"] += 1
                    if self.on_side_counted is not None:
                        self.on_side_counted(side, acc, ("late_approximate",))
                self._add(a, side, tx.moved(a.last_ts) if late else tx, cp)
            if self.compact_at and self._is_due(side, acc, a):
                self.due[(side, acc)] = None
        self.counters["applied"] += 1
        # evidence other accounts read (I-03 of the receiver, I-04 of the sender) first: a change
        # reaches the counterparts (stale, dirty) before anybody's score is computed
        for side, acc in (("receiver", tx.receiver_id), ("sender", tx.sender_id)):
            a = self.accounts[side][acc]
            for sp in self.sources[side]:
                if a.stale >> sp.k & 1:
                    self._evaluate(a, sp)
        return tx

    def _add(self, a: AccountSide, side: str, tx: Tx, cp: str) -> None:
        a.n += 1
        a.xusd += tx.xusd
        if a.n == 1 or tx.us < a.first_us:
            a.first_us, a.first = tx.us, tx.timestamp
        if a.n == 1 or tx.us > a.last_us:
            a.last_us, a.last = tx.us, tx.timestamp
        if tx.ts > a.last_ts:
            a.last_ts = tx.ts
        a.cps.add(cp)
        if not tx.watched:
            return
        if a.states is None:
            a.states = [i.new_state(side, self.params) for i in self.inds[side]]
        key = (tx.sender_id, tx.receiver_id)
        pr = self.pairs.get(key)
        if pr is None:
            pr = self._pairs_old.get(key)
        rel = tx.rel if pr is None else pr[0]   # (a pair forgotten by the horizon: this transfer's)
        if rel is None:
            related, unrelated = None, self.unknown_unrelated
        else:
            related, unrelated = rel == 1, rel == 0
        stale = a.stale
        for k, st in enumerate(a.states):
            if st.add(tx, cp, unrelated, related):
                stale |= 1 << k
        a.stale = stale

    def _rebuild(self, side: str, acc: str, upto: int, cut: int | None = None) -> AccountSide:
        """Rebuild one account's side from its log (up to `upto`), in timestamp order: only its
        transfers at or after `cut` (default: the account's current cut; 0 = all)."""
        self.counters["rebuilds"] += 1
        self._cancel_build(side, acc)
        old = self.accounts[side].get(acc)
        if cut is None:
            cut = old.cut if old is not None else 0
        seq0 = old.seq0 if old is not None else 0
        rows = self._read(side, acc, upto, seq0, cut)
        txs = sorted((tx for tx in (self.prep(rec, seq) for seq, rec in rows if seq <= upto) if tx.ts >= cut),
                     key=lambda t: (t.ts, t.seq))
        a = AccountSide(len(self.specs[side]))
        if cut:
            a.cut = cut
            a.seq0 = min((t.seq for t in txs), default=upto + 1)
        for tx in txs:
            self._add(a, side, tx, tx.receiver_id if side == "sender" else tx.sender_id)
        if old is not None:
            a.src = old.src  # previous evidence: changes still reach the dependants
        self.accounts[side][acc] = a
        self.dirty.add((side, acc))
        return a

    def _read(self, side: str, acc: str, upto: int, since: int = 0, since_ts: int = 0) -> Iterable[tuple[int, Mapping[str, Any]]]:
        """The account's log entries with since ≤ seq ≤ upto, without those before `since_ts` (epoch
        s; 0: all). A compaction keeps one horizon of an account that holds up to (1 + slack +
        jitter) of them: the store leaves out the rest before decoding them (SQLite: in SQL)."""
        return self.history(side, acc, upto, since, since_ts)

    # ---- the state horizon (module doc) ---------------------------------------------------------
    def compact_threshold(self, side: str, acc: str) -> int:
        """The span (seconds) above which this account side is compacted: `horizon × (1 + slack)`
        plus its own share of `horizon × jitter`, from a stable hash of the account (CRC-32), so
        that accounts that started together (a bulk load, a replayed world) do not all become
        due at the same moment."""
        if not self.compact_jitter:
            return self.compact_at
        u = zlib.crc32(f"{side}\x00{acc}".encode()) / 4294967296.0
        return self.compact_at + int(self.compact_jitter * u)

    def _is_due(self, side: str, acc: str, a: "AccountSide") -> bool:
        """The account side spans more than its compaction threshold (the hash only past the base one)."""
        span = a.last_ts - a.first_us // 1_000_000
        return span > self.compact_at and span > self.compact_threshold(side, acc)

    def _rotate_pairs(self, now: int) -> None:
        """A new generation of the pair table: pairs not seen since the previous rotation (between
        one and two horizons) are forgotten (freed a slice at a time by `compact`)."""
        if self._pairs_gen:
            if self._pairs_old:
                self._trash.append(self._pairs_old)
            self._pairs_old = self.pairs
            self.pairs = {}
        self._pairs_gen = now

    def pair_count(self) -> int:
        return len(self.pairs) + len(self._pairs_old)

    def pair(self, sender: str, receiver: str) -> list | None:
        """[relation, transfers, last time] of a pair, or None."""
        key = (sender, receiver)
        return self.pairs.get(key) or self._pairs_old.get(key)

    def compact(self, budget: float | None = None, clock: Callable[[], float] | None = None) -> int:
        if not self.horizon or self.history is None:
            return 0
        import time as _time

        t0 = _time.perf_counter()
        try:
            return self._compact(budget, clock or _time.perf_counter)
        finally:
            self.counters["compaction_seconds"] += _time.perf_counter() - t0

    def _compact(self, budget: float | None, clock: Callable[[], float]) -> int:
        """Work off the horizon: rebuild queued account sides over their last horizon, drop
        accounts without a transfer in the last horizon, free forgotten pairs. Stops when `budget`
        seconds have passed (None: all of it, with a sweep over every account). Accounts are checked
        for inactivity in sweeps started every horizon / 8 of stream time. Returns how many account
        sides it rebuilt or dropped."""
        end = None if budget is None else clock() + budget
        done = 0
        while self._trash and (end is None or clock() < end):
            d = self._trash[-1]
            for _ in range(min(len(d), 2000)):
                d.popitem()
            if not d:
                self._trash.pop()
        urgent = self._urgent
        while urgent and (end is None or clock() < end):
            side, acc = key = next(iter(urgent))
            del urgent[key]
            a = self.accounts[side].get(acc)
            cut = self.clock - self.horizon
            if a is not None and a.first_us // 1_000_000 < cut:
                self._compact_one(side, acc, cut)
                done += 1
        if urgent:
            return done
        self._ghosts.clear()
        if self._building is not None:
            if not self._build(end, clock):
                return done
            done += 1
        due = self.due
        while due and (end is None or clock() < end):
            side, acc = key = next(iter(due))
            del due[key]
            a = self.accounts[side].get(acc)
            if a is None or not self._is_due(side, acc, a):
                continue
            if budget is not None and a.n > self.SLICE_ABOVE:
                self._start_build(side, acc, a.last_ts - self.horizon)
                if not self._build(end, clock):
                    return done
            else:
                self._compact_one(side, acc, a.last_ts - self.horizon)
            done += 1
        if budget is None or (not self._sweep and self.clock - self._sweep_at >= self.horizon // 8):
            self._sweep_at = self.clock
            self._sweep = [(s, list(self.accounts[s])) for s in SIDES]
        limit = self.clock - self.horizon
        sweep = self._sweep
        k = 0
        while sweep and (end is None or k % 32 or clock() < end):
            side, ids = sweep[-1]
            if not ids:
                sweep.pop()
                continue
            acc = ids.pop()
            k += 1
            a = self.accounts[side].get(acc)
            if a is not None and a.last_ts < limit:
                self._drop(side, acc)
                done += 1
                k = 0   # check the clock after every drop
        if end is None and (urgent or self.due):   # all of it: what the drops queued too
            done += self._compact(None, clock)
        return done

    SLICE_ABOVE = 64    # an account holding more transfers is compacted a slice at a time …
    SLICE_ROWS = 32     # … the clock checked every this many transfers

    def _start_build(self, side: str, acc: str, cut: int) -> None:
        """Begin compacting a large account side a slice at a time (`_build`); meanwhile the
        account goes on as it is. A late transfer or a relation change of it (a rebuild) or its
        dropping cancels the build (it is queued again by its next transfer)."""
        old = self.accounts[side][acc]
        upto = self.last_seq
        # its log is read in parts too — the log positions from seq0 to now, cut into parts of
        # about READ_ROWS of its transfers (it holds `old.n`) — a part per clock check: read at
        # once, an account of thousands of transfers took 30–66 ms in one slice (measured)
        parts = max(1, -(-old.n // self.READ_ROWS))
        lo, span = old.seq0, upto - old.seq0 + 1
        bounds = [lo + span * k // parts for k in range(parts + 1)]
        ranges = [(bounds[k], bounds[k + 1] - 1) for k in range(parts) if bounds[k + 1] > bounds[k]]
        new = AccountSide(len(self.specs[side]))
        new.cut = cut
        self._building = [side, acc, cut, upto, [], 0, new, ranges]

    READ_ROWS = 256   # a large account's log is read about this many of its transfers at a time

    def _build(self, end: float | None, clock: Callable[[], float]) -> bool:
        """Read or fold the next slice of the build in progress; True when it is finished (and
        swapped in)."""
        side, acc, cut, upto, rows, pos, new, ranges = self._building
        if ranges is not None:   # still reading its log: the parts left
            while ranges:
                lo, hi = ranges.pop(0)
                rows.extend((int(rec["ts_epoch"]), seq, rec) for seq, rec in self._read(side, acc, hi, lo, cut)
                            if seq <= upto and int(rec["ts_epoch"]) >= cut)
                if ranges and end is not None and clock() >= end:
                    return False
            rows.sort(key=lambda r: (r[0], r[1]))
            new.seq0 = min((r[1] for r in rows), default=upto + 1)
            self._building[7] = None
            if end is not None and clock() >= end:
                return False
        counterpart = "receiver_id" if side == "sender" else "sender_id"
        n = len(rows)
        while pos < n:
            step = self.SLICE_ROWS
            for ts, seq, rec in rows[pos:pos + step]:
                tx = self.prep(rec, seq)
                self._add(new, side, tx, getattr(tx, counterpart))
            pos += step
            if end is not None and pos < n and clock() >= end:
                self._building[5] = pos
                return False
        self._building = None
        old = self.accounts[side].get(acc)
        if old is None:
            return True
        # the account's transfers applied meanwhile (in time order: a late one would have cancelled)
        tail = self._read(side, acc, self.last_seq, upto + 1, cut)
        for tx in sorted((t for t in (self.prep(rec, seq) for seq, rec in tail if upto < seq <= self.last_seq)
                          if t.ts >= cut), key=lambda t: (t.ts, t.seq)):
            self._add(new, side, tx, getattr(tx, counterpart))
        before = self._dependants(side, old)
        new.src = old.src
        self.accounts[side][acc] = new
        self.dirty.add((side, acc))
        self.counters["rebuilds"] += 1
        self.counters["compactions"] += 1
        self._touch(before, side)
        for sp in self.sources[side]:
            if new.stale >> sp.k & 1:
                self._evaluate(new, sp)
        return True

    def _cancel_build(self, side: str, acc: str) -> None:
        b = self._building
        if b is not None and b[0] == side and b[1] == acc:
            self._building = None

    def _dependants(self, side: str, a: AccountSide | None) -> list[tuple[str, str]]:
        """(side, account) of the counterparts whose evidence reads this account's (I-03, I-04)."""
        if a is None or a.states is None:
            return []
        return [(sp.dep, cp) for sp in self.sources[side] for cp in a.states[sp.k].dependants()]

    def _touch(self, dependants: list[tuple[str, str]], side: str) -> None:
        for sp in self.sources[side]:
            bit = 1 << self.position[sp.dep][sp.id]
            others = self.accounts[sp.dep]
            for dside, cp in dependants:
                if dside == sp.dep:
                    b = others.get(cp)
                    if b is not None:
                        b.stale |= bit
                        self.dirty.add((dside, cp))

    def _compact_one(self, side: str, acc: str, cut: int) -> None:
        old = self.accounts[side].get(acc)
        if old is None:
            return
        if old.last_ts < cut:   # nothing left after the cut
            self._drop(side, acc)
            return
        before = self._dependants(side, old)
        a = self._rebuild(side, acc, self.last_seq, cut)
        self.counters["compactions"] += 1
        self._touch(before, side)   # also those it no longer counts: they read it again
        for sp in self.sources[side]:  # evidence others read: a change reaches them now
            if a.stale >> sp.k & 1:
                self._evaluate(a, sp)

    def _drop(self, side: str, acc: str) -> None:
        """Forget an account side without a transfer since `clock − horizon`. Its counterparts that
        read its evidence (I-03, I-04) and hold transfers older than that are compacted too, so no
        state reads an account that is gone."""
        a = self.accounts[side].pop(acc)
        self._cancel_build(side, acc)
        self.dirty.discard((side, acc))
        self.due.pop((side, acc), None)
        self.counters["evicted"] += 1
        cut = self.clock - self.horizon
        dependants = self._dependants(side, a)
        if dependants:
            self._ghosts[(side, acc)] = a.src
            for dside, cp in dependants:
                b = self.accounts[dside].get(cp)
                if b is not None and b.first_us // 1_000_000 < cut:
                    self._urgent[(dside, cp)] = None
        self._touch(dependants, side)
        if self.on_evict is not None:
            self.on_evict(side, acc)

    def trim(self, cut: int, log: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
        """Hold exactly the transfers at or after `cut` (epoch s), as batch over them: the pair table
        is rebuilt from `log` (every log entry), accounts without such a transfer are dropped and
        the others rebuilt. A maintenance operation (and the test of the horizon); `compact` does
        the same per account and incrementally."""
        pairs: dict[tuple[str, str], list] = {}
        for seq, rec in log:
            if seq > self.last_seq:
                break
            tx = self.prep(rec, seq)
            if tx.ts < cut:
                continue
            key = (tx.sender_id, tx.receiver_id)
            pr = pairs.get(key)
            if pr is None:
                pairs[key] = [tx.rel, 1, tx.ts]
            else:
                pr[0] = pr[0] if tx.rel is None else (tx.rel if pr[0] is None or tx.rel > pr[0] else pr[0])
                pr[1] += 1
                pr[2] = max(pr[2], tx.ts)
        self.pairs, self._pairs_old, self._trash, self._building = pairs, {}, [], None
        for side in SIDES:
            for acc in list(self.accounts[side]):
                a = self.accounts[side].get(acc)
                if a is None:
                    continue
                if a.last_ts < cut:
                    self._drop(side, acc)
                elif a.first_us // 1_000_000 < cut or a.cut < cut:
                    self._compact_one(side, acc, cut)
        self._urgent.clear()   # every account was compacted to the cut above
        self._ghosts.clear()

    # ---- evaluating ---------------------------------------------------------------------------
    def _metrics(self, a: AccountSide, sp: _Spec) -> dict[str, Any] | None:
        return a.states[sp.k].metrics(self) if a.states is not None else None

    def _evaluate(self, a: AccountSide, sp: _Spec) -> None:
        a.stale &= ~(1 << sp.k)
        m = a.states[sp.k].metrics(self) if a.states is not None else None
        if sp.dep is None:
            a.fired[sp.k], a.strength[sp.k] = (False, 0.0) if m is None else sp.score(m)
            return
        cols = sp.absent if m is None else sp.full(m)
        old = a.src.get(sp.id)
        a.src[sp.id] = cols
        a.fired[sp.k], a.strength[sp.k] = cols[sp.fcol], cols[sp.scol]
        if a.states is not None and (old is None or any(old.get(c) != cols.get(c) for c in sp.reads)):
            others = self.accounts[sp.dep]
            for cp in a.states[sp.k].dependants():
                b = others.get(cp)
                if b is not None:
                    b.stale |= 1 << self.position[sp.dep][sp.id]
                    self.dirty.add((sp.dep, cp))

    def refresh(self, side: str, acc: str) -> AccountSide | None:
        """The account's side with every decision current (None: no transfer on this side)."""
        a = self.accounts[side].get(acc)
        if a is not None and a.stale:
            # `_evaluate` inlined for the indicators nobody else reads (most of them)
            specs = self.specs[side]
            states, fired, strength = a.states, a.fired, a.strength
            stale = a.stale
            while stale:
                low = stale & -stale
                k = low.bit_length() - 1
                sp = specs[k]
                if sp.dep is None:
                    stale ^= low
                    m = states[k].metrics(self) if states is not None else None
                    fired[k], strength[k] = (False, 0.0) if m is None else sp.score(m)
                else:
                    a.stale = stale
                    self._evaluate(a, sp)
                    stale = a.stale
            a.stale = stale
        return a

    def decisions(self, side: str, acc: str) -> tuple[list[bool], list[float], bool] | None:
        """(fired, strength per stream indicator in `specs` order, the plain published rule)."""
        a = self.refresh(side, acc)
        if a is None:
            return None
        f = a.fired
        core = bool(self._core_fn[side]({col: f[k] for k, col in self._core_idx[side]}))
        return f, a.strength, core

    def indicator_columns(self, side: str, acc: str, ind_id: str) -> dict[str, Any]:
        """One indicator's evidence columns for one account, as compute_evidence would give them
        (what the counterpart forms — I-03 sender, I-04 receiver — read). With the state horizon, an
        account a counterpart still holds may since have been dropped or compacted to no evidence:
        it then reads as zeros (`_Spec.gone`)."""
        cols = self.columns_of(side, acc, ind_id)
        if self.horizon:
            sp = self.specs[side][self.position[side][ind_id]]
            if cols is sp.absent:
                return sp.gone
        return cols

    def columns_of(self, side: str, acc: str, ind_id: str) -> dict[str, Any]:
        """One indicator's evidence columns for one account, exactly as compute_evidence gives them
        (no evidence: fired False, strength 0, no metrics)."""
        sp = self.specs[side][self.position[side][ind_id]]
        a = self.accounts[side].get(acc)
        if a is None:
            ghost = self._ghosts.get((side, acc)) if self._ghosts else None
            if ghost is not None and sp.id in ghost:
                return ghost[sp.id]
            return sp.absent
        if sp.dep is not None:
            if a.stale >> sp.k & 1 or sp.id not in a.src:
                self._evaluate(a, sp)
            return a.src[sp.id]
        m = self._metrics(a, sp)
        return sp.absent if m is None else sp.full(m)

    def base(self, side: str, acc: str) -> dict[str, Any] | None:
        """The base columns of `compute_evidence` (every transfer of the side, watched or not)."""
        a = self.accounts[side].get(acc)
        if a is None:
            return None
        return {"account_id": acc, "n_transactions": a.n, "total_usd": from_exact(a.xusd), "first_seen": a.first,
                "last_seen": a.last, "counterparties": len(a.cps)}

    def columns(self, side: str, acc: str) -> dict[str, Any] | None:
        """One evidence row as compute_evidence gives it (base, stream indicators, core_rule)."""
        d = self.decisions(side, acc)
        if d is None:
            return None
        row = self.base(side, acc)
        for sp in self.specs[side]:
            row.update(self.columns_of(side, acc, sp.id))
        row["core_rule"] = d[2]
        return row

    def account_ids(self, side: str) -> list[str]:
        return list(self.accounts[side])

    def __contains__(self, item: tuple[str, str]) -> bool:
        side, acc = item
        return acc in self.accounts[side]

    # ---- snapshots ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The durable part (decisions and the name caches are rebuilt on load); pairs as columns."""
        keys = list(self._pairs_old) + list(self.pairs)
        vals = list(self._pairs_old.values()) + list(self.pairs.values())
        pairs = [[k[0] for k in keys], [k[1] for k in keys], [v[0] for v in vals], [v[1] for v in vals],
                 [v[2] for v in vals]]
        return {"accounts": self.accounts, "pairs": pairs, "counters": self.counters,
                "horizon": [self.clock, self.last_seq, self._pairs_gen, len(self._pairs_old)]}

    def restore(self, data: Mapping[str, Any], positions: Mapping[str, Sequence[int]] | None = None) -> None:
        """Load `state()`'s output. `positions` (a snapshot encoded in slices while transfers kept
        arriving): per side, runs `[count, position, count, position, …]` over the accounts in
        order — each account side as saved includes every transfer up to its position, while the
        pair table and the counters are as of the snapshot's start; the replay of the log after
        the start then skips, for each side, the transfers it already holds."""
        self.accounts = data["accounts"]
        s, r, rel, n, last = data["pairs"]
        pairs = [((a, b), [x, y, z]) for a, b, x, y, z in zip(s, r, rel, n, last, strict=True)]
        self.clock, self.last_seq, self._pairs_gen, n_old = data.get("horizon", [0, 0, 0, 0])
        self._pairs_old = dict(pairs[:n_old])
        self.pairs = dict(pairs[n_old:])
        self.counters.update(data["counters"])
        self._skip, self._skip_upto = None, 0
        if positions:
            skip: dict[str, dict[str, int]] = {s: {} for s in SIDES}
            for side in SIDES:
                runs = list(positions.get(side) or ())
                accs = iter(self.accounts[side])
                for i in range(0, len(runs) - 1, 2):
                    count, pos = int(runs[i]), int(runs[i + 1])
                    for acc in itertools.islice(accs, count):
                        if pos > self.last_seq:
                            skip[side][acc] = pos
                    self._skip_upto = max(self._skip_upto, pos)
            if self._skip_upto > self.last_seq:
                self._skip = skip
        for side in SIDES:
            n_ind = len(self.specs[side])
            for acc, a in self.accounts[side].items():
                a.reset(n_ind)
                self.dirty.add((side, acc))
                if self.compact_at and self._is_due(side, acc, a):
                    self.due[(side, acc)] = None


def _state_classes() -> tuple[type, ...]:
    from kalasag.indicators.base import StreamState
    from kalasag.indicators.windows import WindowCount, WindowDistinct, WindowSum

    found: list[type] = []
    todo = [StreamState]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return (AccountSide, WindowCount, WindowSum, WindowDistinct, *sorted(found, key=lambda c: c.__name__))


# every class a stream state holds (the whitelist of kalasag.service.state's snapshot codec)
STREAM_CLASSES: tuple[type, ...] = _state_classes()
