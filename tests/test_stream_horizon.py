"""The state horizon ([service] state_horizon_days): the scorer's state stops growing when the same
accounts keep paying for years, and what it holds is exactly batch's evidence over the last horizon.

A small simulated world (one year) is streamed several times, each lap moved one year later (the
same accounts paying on, as bench/realtime's --laps does)."""

from __future__ import annotations

import csv
import gzip
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from kalasag.indicators import INDICATORS, StreamEvidence
from kalasag.ingest import validate_record
from kalasag.model import SIDES, load_config
from kalasag.service.scorer import StreamScorer
from kalasag.service.sqlite_store import SQLiteStore

NOW = datetime(2026, 11, 26, tzinfo=UTC)
LAPS = 4
HORIZON_DAYS = 100
SLACK = 0.5
STREAM = [i for i in INDICATORS.values() if i.stream]


@pytest.fixture(scope="module")
def laps(tmp_path_factory):
    """The world's rows LAPS times, lap k moved back by (LAPS - 1 - k) years (time runs forward)."""
    from kalasag.simulate import simulate_world

    out = tmp_path_factory.mktemp("world")
    simulate_world(out, seed=3, scale=0.004, inject_errors=0.0, progress=False)
    with gzip.open(out / "transfers.csv.gz", "rt", newline="") as fh:
        rows = [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(fh)]
    cfg = load_config()
    rows.sort(key=lambda r: validate_record(r, cfg, now=NOW)["ts_epoch"])
    span = timedelta(days=366)
    out_laps = []
    for k in range(LAPS):
        shift = -(LAPS - 1 - k) * span
        lap = []
        for r in rows:
            r = dict(r)
            r["txn_id"] = f"L{k}-{r['txn_id']}"
            r["timestamp"] = (datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")) + shift).isoformat()
            lap.append(r)
        out_laps.append(lap)
    return out_laps


def horizon_config(days: float = HORIZON_DAYS):
    return load_config(overrides={"service": {"state_horizon_days": days, "state_compact_slack": SLACK,
                                              "snapshot_every": 0}})


def size(sc: StreamScorer) -> dict[str, int]:
    """What grows with history when nothing is dropped: I-01's stored amounts, counterparty sets,
    the pair table, the account sides."""
    ev = sc.evidence
    amounts = cps = 0
    k01 = ev.position["receiver"]["I-01"]
    for side in SIDES:
        for a in ev.accounts[side].values():
            cps += len(a.cps)
            if side == "receiver" and a.states is not None:
                amounts += len(a.states[k01].amounts)
    return {"amounts": amounts, "cps": cps, "pairs": ev.pair_count(),
            "accounts": sum(len(ev.accounts[s]) for s in SIDES)}


@pytest.fixture(scope="module")
def streamed(laps, tmp_path_factory):
    """Per lap, the state size with the horizon and without (state_horizon_days = 0)."""
    out = {}
    for days in (HORIZON_DAYS, 0):
        sc = StreamScorer(horizon_config(days), SQLiteStore(tmp_path_factory.mktemp("state")), now=lambda: NOW)
        sizes = []
        for lap in laps:
            for i in range(0, len(lap), 50):
                sc.submit(lap[i:i + 50])
            sc.evidence.compact()   # whatever the per-submit budget left queued
            sizes.append(size(sc))
        out[days] = (sc, sizes)
    return out


def test_state_stops_growing_with_the_horizon(streamed):
    _, with_h = streamed[HORIZON_DAYS]
    _, without = streamed[0]
    # without a horizon every lap adds its amounts (the laps repeat the same accounts and pairs, so
    # counterparty sets and the pair table stop growing after the first lap anyway)
    assert [s["amounts"] for s in without] == [without[0]["amounts"] * (k + 1) for k in range(LAPS)]
    # with it: flat from the second lap on (what is held depends on where each account is in its
    # compaction cycle, so it wobbles, but it does not grow lap after lap) and below one lap's worth
    amounts = [s["amounts"] for s in with_h[1:]]
    assert max(amounts) <= 1.2 * min(amounts), with_h
    assert max(s["amounts"] for s in with_h) < without[0]["amounts"] / 2
    for key in ("cps", "pairs", "accounts"):  # forgotten with their last transfer
        assert all(w[key] < wo[key] for w, wo in zip(with_h[1:], without[1:])), (key, with_h, without)


def test_held_transfers_are_within_the_horizon_bound(streamed):
    """Every account side holds only transfers of its last (1 + slack + its jitter share) horizons,
    and has one in the last horizon of the stream (else it was dropped)."""
    sc, _ = streamed[HORIZON_DAYS]
    ev = sc.evidence
    h = HORIZON_DAYS * 86400
    jitter = sc.svc.state_compact_jitter
    assert jitter > 0   # the default: the bound below is each account's own
    assert ev.counters["compactions"] > 0 and ev.counters["evicted"] > 0
    for side in SIDES:
        for acc, a in ev.accounts[side].items():
            assert a.last_ts >= ev.clock - h, (side, acc)
            span = a.last_ts - a.first_us // 1_000_000
            assert span <= ev.compact_threshold(side, acc) <= h * (1 + SLACK + jitter), (side, acc)


def test_compaction_thresholds_are_spread_per_account(streamed):
    """Accounts that started together do not all come due at once: each account side's threshold
    is horizon × (1 + slack) plus its own share (a hash of the id) of horizon × jitter — stable,
    spread over the whole range, and without jitter the same for everybody."""
    sc, _ = streamed[HORIZON_DAYS]
    ev = sc.evidence
    h = HORIZON_DAYS * 86400
    base, extra = int(h * (1 + SLACK)), int(h * sc.svc.state_compact_jitter)
    ids = [f"ACC{i:05d}" for i in range(2000)]
    th = [ev.compact_threshold("receiver", a) for a in ids]
    assert all(base <= t < base + extra for t in th)
    assert th == [ev.compact_threshold("receiver", a) for a in ids]          # stable
    quarters = [sum(base + q * extra / 4 <= t < base + (q + 1) * extra / 4 for t in th) for q in range(4)]
    assert min(quarters) > 400, quarters                                       # ≈ 500 each: spread
    assert ev.compact_threshold("sender", "ACC00001") != ev.compact_threshold("receiver", "ACC00001")
    flat = StreamEvidence(horizon_config(), history=lambda *a: iter(()), compact_jitter=0.0)
    assert {flat.compact_threshold("receiver", a) for a in ids} == {base}


def _batch_evidence(records: list[dict], cfg) -> dict[str, pd.DataFrame]:
    """compute_evidence over canonical records (as the network refresh builds its frame)."""
    from kalasag.engine import Engine
    from kalasag.indicators import compute_evidence
    from kalasag.model import DERIVED_COLUMNS, TRANSFER_COLUMNS

    names = [c.name for c in TRANSFER_COLUMNS] + [c.name for c in DERIVED_COLUMNS if c.name != "row_number"]
    df = pd.DataFrame({c: [r.get(c) for r in records] for c in names})
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601").dt.tz_localize(None).astype("datetime64[us]")
    for c in ("amount", "amount_usd", "fx_rate"):
        df[c] = df[c].astype("float64")
    df["ts_epoch"] = df["ts_epoch"].astype("int64")
    df["row_number"] = range(1, len(records) + 1)
    for c in names:
        if c not in ("timestamp", "amount", "amount_usd", "fx_rate", "ts_epoch"):
            df[c] = df[c].astype("string")
    eng = Engine(threads=1)
    try:
        ev = compute_evidence(eng, eng.from_records(df), cfg)
        return {s: eng.fetch(ev.side(s)).set_index("account_id") for s in SIDES}
    finally:
        eng.close()


def _same(x, y) -> bool:
    x = None if x is None or (isinstance(x, float) and math.isnan(x)) else x
    y = None if y is None or (isinstance(y, float) and math.isnan(y)) or y is pd.NaT else y
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, (bool, int, float)) and not isinstance(x, str):
        return abs(float(x) - float(y)) <= 1e-9 * max(1.0, abs(float(y)))
    return x == y


def test_trimmed_state_equals_batch_over_the_last_horizon(streamed):
    """trim(clock − horizon): every account's evidence (every stream indicator, the base columns, the
    published rule) equals compute_evidence over the log's transfers of the last horizon."""
    sc, _ = streamed[HORIZON_DAYS]
    ev = sc.evidence
    cut = ev.clock - HORIZON_DAYS * 86400
    ev.trim(cut, sc.store.read_since(0))
    recent = [rec for _, rec in sc.store.read_since(0) if rec["ts_epoch"] >= cut]
    assert 0 < len(recent) < sc.applied_seq / 2
    batch = _batch_evidence(recent, sc.config)
    compared = 0
    for side in SIDES:
        b = batch[side]
        assert sorted(ev.account_ids(side)) == sorted(b.index), side
        cols = [c for i in STREAM if side in i.sides for c in b.columns if c.startswith(i.slug + "_")]
        for acc in b.index:
            row = ev.columns(side, acc)
            for c in cols + ["n_transactions", "total_usd", "counterparties", "core_rule"]:
                assert _same(row.get(c), b.at[acc, c]), (side, acc, c, row.get(c), b.at[acc, c])
                compared += 1
    assert compared > 5_000


def test_a_compaction_built_a_slice_at_a_time_equals_one_built_at_once(laps, tmp_path):
    """Large accounts are compacted a slice at a time across submits — their log read in parts,
    then folded — (transfers of the account arriving meanwhile are folded in at the end): each
    compacted account's evidence equals a rebuild of it over the same period done at once."""
    sc = StreamScorer(horizon_config(), SQLiteStore(tmp_path), now=lambda: NOW)
    ev = sc.evidence
    ev.SLICE_ABOVE, ev.SLICE_ROWS = 3, 1   # nearly every compaction is sliced …
    ev.READ_ROWS = 2                       # … and its log read in parts of about 2 transfers …
    sc.svc = sc.svc.model_copy(update={"state_compact_share": 0.0001})   # … in slices of ≥ 1 ms
    sliced = reading = 0
    for lap in laps:
        for i in range(0, len(lap), 20):
            sc.submit(lap[i:i + 20])
            sliced += ev._building is not None
            reading += ev._building is not None and ev._building[7] is not None
    assert sliced >= 5 and ev.counters["compactions"] > 20, (sliced, ev.counters["compactions"])
    assert reading >= 1, reading   # a build was seen between two parts of its reading
    ev.compact()
    compared = 0
    for side in SIDES:
        for acc in ev.account_ids(side):
            a = ev.accounts[side][acc]
            if not a.cut:
                continue
            got = ev.columns(side, acc)
            ev._compact_one(side, acc, a.cut)
            assert ev.columns(side, acc) == got, (side, acc)
            compared += 1
    assert compared > 50


def test_a_compaction_reads_only_the_kept_horizon_from_the_store(laps, tmp_path):
    """A compaction keeps one horizon of an account that holds up to (1 + slack + jitter) of them:
    it asks the store for the transfers from its cut on (`since_ts`), and the store leaves the
    older ones out before decoding them — every compaction passes its cut, nothing older comes
    back, and far fewer rows are returned than the account's whole log range."""
    sc = StreamScorer(horizon_config(), SQLiteStore(tmp_path), now=lambda: NOW)
    real = sc.store.read_account
    calls = []

    def spy(side, acc, upto=None, since=0, *, since_ts=0):
        rows = real(side, acc, upto, since, since_ts=since_ts)
        calls.append((since_ts, [r["ts_epoch"] for _, r in rows], len(real(side, acc, upto, since))))
        return rows

    sc.store.read_account = spy
    for lap in laps:
        for i in range(0, len(lap), 50):
            sc.submit(lap[i:i + 50])
    ev = sc.evidence
    cut_reads = [c for c in calls if c[0] > 0]
    assert ev.counters["compactions"] > 20 and len(cut_reads) >= ev.counters["compactions"]
    assert all(ts >= since_ts for since_ts, tss, _ in cut_reads for ts in tss)
    returned, whole = sum(len(tss) for _, tss, _ in cut_reads), sum(n for *_, n in cut_reads)
    assert returned < 0.7 * whole, (returned, whole)
