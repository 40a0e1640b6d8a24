"""The stream form of every indicator equals its batch form, metric by metric.

1. On the hand-computed fixtures of tests/test_indicators.py: each of its tests runs again with its
   `run` helper replaced by one that computes the batch evidence (the test's own hand-computed
   assertions still apply to it) AND streams the same rows through StreamEvidence, in time order,
   and requires every column of the indicator to be equal for every account.
2. On a small simulated world: every stream column of every account, plus the base columns and the
   plain published rule, equal to compute_evidence's.
3. The traced (compiled) decision equals `decide` over SCALAR on random metrics.
4. Late transfers (applied exactly by rebuilding the account) and relation changes of a pair.
"""

from __future__ import annotations

import math
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "indicators"))
sys.path.insert(0, str(Path(__file__).parent))
import kalasag_tx_fixtures as fx  # noqa: E402
import test_indicators as ti  # noqa: E402

from kalasag.engine import Engine  # noqa: E402
from kalasag.indicators import INDICATORS, SCALAR, Context, StreamEvidence, compute_evidence, for_side  # noqa: E402
from kalasag.indicators.ops import compile_decide  # noqa: E402
from kalasag.model import load_config  # noqa: E402

STREAM = [i for i in INDICATORS.values() if i.stream]


# ---- helpers --------------------------------------------------------------------------------------
def canonical(rows: list[dict]) -> list[dict]:
    """The fixture rows as the canonical records validate_record returns (the same txn ids,
    timestamps, amounts and ts_epoch as kalasag_tx_fixtures.table)."""
    out = []
    for i, r in enumerate(rows, 1):
        ts = pd.Timestamp(r["timestamp"])
        us = ts.value // 1000
        rec = {k: r.get(k) for k in ("currency", "channel", "sender_id", "receiver_id", "sender_name", "receiver_name",
                                    "sender_country", "receiver_country", "receiver_region", "sender_phone",
                                    "receiver_phone", "reference")}
        rec.update(txn_id=f"t{i:04d}", timestamp=ts.strftime("%Y-%m-%dT%H:%M:%S") + (f".{us % 1_000_000:06d}" if us % 1_000_000 else "") + "Z",
                   amount=float(r["amount"]), amount_usd=float(r["amount_usd"]),
                   fx_rate=float(r["amount_usd"]) / float(r["amount"]), ts_epoch=us // 1_000_000)
        out.append(rec)
    return out


def stream(records: list[dict], config, order: str = "time") -> StreamEvidence:
    """Stream records (in time order, or as given) with an in-memory log for rebuilds."""
    log: dict[int, dict] = {}

    def history(side, acc, upto, since=0, since_ts=0):
        col = "sender_id" if side == "sender" else "receiver_id"
        return [(s, r) for s, r in log.items() if since <= s <= upto and r[col] == acc and r["ts_epoch"] >= since_ts]

    se = StreamEvidence(config, history=history)
    recs = sorted(records, key=lambda r: r["ts_epoch"]) if order == "time" else list(records)
    for seq, rec in enumerate(recs, 1):
        log[seq] = rec
        se.apply(seq, rec)
    return se


def same(x, y, tol: float = 1e-9) -> bool:
    x = None if x is None or (isinstance(x, float) and math.isnan(x)) else x
    y = None if y is None or (isinstance(y, float) and math.isnan(y)) or y is pd.NaT else y
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, bool) or isinstance(y, bool):
        return bool(x) == bool(y)
    if isinstance(x, (int, float)) and isinstance(y, (int, float)) or hasattr(y, "dtype"):
        try:
            return abs(float(x) - float(y)) <= tol * max(1.0, abs(float(y)))
        except (TypeError, ValueError):
            pass
    return x == y


def assert_indicator_equal(se: StreamEvidence, batch: pd.DataFrame, ind, side: str) -> int:
    """Every column of `ind` for every account of the side: stream == batch. Returns accounts checked."""
    cols = [c for c in batch.columns if c != "account_id"]
    checked = 0
    for acc in se.account_ids(side):
        got = se.columns_of(side, acc, ind.id)
        if acc not in batch.index:  # batch has no row: fired False, strength 0, no metrics
            assert got[ind.col("fired")] is False and got[ind.col("strength")] == 0.0, (ind.id, side, acc, got)
            continue
        row = batch.loc[acc]
        for c in cols:
            assert same(got.get(c), row[c]), (ind.id, side, acc, c, got.get(c), row[c])
        checked += 1
    assert set(batch.index) <= set(se.account_ids(side)), (ind.id, side)
    return checked


# ---- 1. the hand-computed fixtures ----------------------------------------------------------------
FIXTURE_TESTS = sorted(name for name in dir(ti) if name.startswith("test_i") and name[6:8].isdigit()
                       and INDICATORS[f"I-{name[6:8]}"].stream)
_original_run = ti.run


@pytest.fixture(scope="module")
def engine():
    return Engine()


@pytest.mark.parametrize("name", FIXTURE_TESTS)
def test_stream_equals_batch_on_hand_fixtures(name, engine, monkeypatch):
    compared: list[int] = []

    def run(engine_, rows, ind_id, side, **over):
        batch = _original_run(engine_, rows, ind_id, side, **over)  # the test's own assertions check this
        ind = INDICATORS[ind_id]
        if ind.stream:
            se = stream(canonical(rows), fx.config(**over))
            compared.append(assert_indicator_equal(se, batch, ind, side))
        return batch

    monkeypatch.setattr(ti, "run", run)
    getattr(ti, name)(engine)
    assert compared and sum(compared) > 0, f"{name}: no account compared"


def test_every_stream_indicator_has_a_fixture_test():
    covered = {f"I-{n[6:8]}" for n in FIXTURE_TESTS if n[6:8].isdigit()} | {"I-18"}  # I-18 shares I-12's test
    assert {i.id for i in STREAM} <= covered


# ---- 2. a small simulated world -------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from kalasag.ingest import ingest
    from kalasag.simulate import simulate_world

    out = tmp_path_factory.mktemp("world")
    simulate_world(out, seed=3, scale=0.005, inject_errors=0.0, progress=False)
    cfg = load_config()
    eng = Engine()
    now = datetime(2026, 11, 26, tzinfo=UTC)
    ing = ingest(eng, out / "transfers.csv.gz", config=cfg, now=now)
    df = eng.fetch(ing.transfers)
    ev = compute_evidence(eng, ing.transfers, cfg)
    batch = {s: eng.fetch(ev.side(s)).set_index("account_id") for s in ("sender", "receiver")}
    records = []
    for r in df.sort_values("row_number").to_dict("records"):
        rec = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v) for k, v in r.items()}
        rec["timestamp"] = pd.Timestamp(r["timestamp"]).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
        rec.pop("row_number")
        records.append(rec)
    return cfg, records, batch


def test_stream_equals_batch_on_a_simulated_world(world):
    cfg, records, batch = world
    se = stream(records, cfg)
    n_cols = 0
    for side in ("sender", "receiver"):
        b = batch[side]
        assert sorted(se.account_ids(side)) == sorted(b.index)
        stream_cols = {c for i in STREAM if side in i.sides for c in b.columns if c.startswith(i.slug + "_")}
        base_cols = ["n_transactions", "total_usd", "counterparties", "core_rule"]
        for acc in b.index:
            row = se.columns(side, acc)
            for c in sorted(stream_cols) + base_cols:
                assert same(row.get(c), b.at[acc, c]), (side, acc, c, row.get(c), b.at[acc, c])
                n_cols += 1
            for c in ("first_seen", "last_seen"):
                assert pd.Timestamp(row[c]).tz_localize(None) == b.at[acc, c], (side, acc, c)
    assert n_cols > 10_000
    # the world exercises the indicators: some fire on each side
    fired = {side: {i.id for i in STREAM if side in i.sides
                    for acc in se.account_ids(side) if se.columns_of(side, acc, i.id)[i.col("fired")]}
             for side in ("sender", "receiver")}
    assert {"I-01", "I-02", "I-03", "I-05"} <= fired["sender"] and {"I-01", "I-03", "I-19"} <= fired["receiver"]


def test_out_of_order_arrivals_are_applied_exactly(world):
    """Transfers shuffled by up to a few days (within max_lateness): rebuilds make the result exact."""
    cfg, records, batch = world
    rng = random.Random(7)
    shuffled = sorted(records, key=lambda r: r["ts_epoch"] + rng.uniform(0, 3 * 86400))
    se = stream(shuffled, cfg, order="given")
    assert se.counters["late_exact"] > 50 and se.counters["late_approximate"] == 0
    for side in ("sender", "receiver"):
        b = batch[side]
        for ind in STREAM:
            if side in ind.sides:
                cols = [c for c in b.columns if c.startswith(ind.slug + "_")]
                assert_indicator_equal(se, b[cols], ind, side)


def test_relation_change_of_a_pair_rebuilds_both_accounts():
    """A pair is unrelated until a later transfer shows the shared family name (the batch rule takes
    the pair's maximum): the earlier payments then count as related, on both sides."""
    cfg = load_config()
    rows = [ti.u("A", "R", d, rname="Maria Santos") for d in (0, 1, 2)]
    rows += [fx.tx("A", "R", 3, sender_name="Juan Santos", receiver_name="Maria Santos")]
    rows += [ti.u(f"S{i}", "R", 4 + i) for i in range(3)]
    se = stream(canonical(rows), cfg)
    assert se.counters["relation_changes"] == 1 and se.counters["rebuilds"] >= 2
    eng = Engine()
    ctx = Context.build(eng, fx.table(eng, rows), cfg)
    for side in ("sender", "receiver"):
        for ind in STREAM:
            if side in ind.sides:
                b = eng.fetch(ind.evidence(ctx, side)).set_index("account_id")
                assert_indicator_equal(se, b, ind, side)
    row = se.columns("sender", "A")
    assert row["i05_n_unrelated"] == 0 and row["i05_cp_related"] == 1  # all four now related
    assert se.columns("receiver", "R")["i03_n_senders"] == 3  # S0–S2; A no longer an unrelated sender


def test_too_late_transfer_is_counted_and_approximate():
    """Later than max_lateness: folded in as if it came at the account's latest time (documented)."""
    cfg = load_config()
    recs = canonical([ti.u("A", "R", d) for d in (0, 5, 40, 1)])  # the payment of day 1 arrives last
    se = StreamEvidence(cfg, history=lambda *a: [], max_lateness=86400)
    for seq, r in enumerate(recs, 1):
        se.apply(seq, r)
    assert se.counters["late_approximate"] == 2 and se.counters["late_exact"] == 0  # sender and receiver
    row = se.columns("sender", "A")
    assert row["i01_n"] == 4  # counted…
    # …but at day 40: 7-day windows {0, 5} and {40, 40} hold 2, where batch finds {0, 1, 5}: 3
    assert row["i02_max_short"] == 2


# ---- 3. the compiled decision is `decide` -----------------------------------------------------------
def _random_metrics(rng: random.Random, keys: list[str]) -> dict:
    m = {}
    for k in keys:
        r = rng.random()
        if r < 0.1:
            m[k] = None
        elif k in ("example", "country"):
            m[k] = rng.choice(["gift", "load", "US", "PH"])
        elif r < 0.55:
            m[k] = rng.randint(0, 12)
        else:
            m[k] = rng.choice([0.0, 0.5, 1.0, 2.5, rng.uniform(0, 8), rng.uniform(-1, 1)])
    return m


@pytest.mark.parametrize("ind", STREAM, ids=lambda i: i.id)
def test_compiled_decision_equals_scalar_decide(ind):
    cfg = load_config()
    p = ind.params(cfg)
    rng = random.Random(ind.id)
    for side in ind.sides:
        keys = []

        class Rec(dict):
            def __getitem__(self, k):
                keys.append(k)
                return 1

        ind.decide(Rec(), p, SCALAR, side)
        fn = compile_decide(ind.decide, p, side, ind.col)
        for _ in range(400):
            m = _random_metrics(rng, keys)
            try:
                want = ind.stream_columns(m, p, side)
            except TypeError:  # an impossible mix (e.g. a count that is None with arithmetic on it)
                continue
            got = fn(m)
            assert set(got) == set(want)
            for c in want:
                assert same(got[c], want[c], 0.0), (ind.id, side, c, m, got[c], want[c])


def test_stream_indicators_cover_every_transfer_level_indicator():
    batch_only = {i.id for i in INDICATORS.values() if not i.stream}
    # graph evidence (receivers linked through senders, networks, watchlist) and population baselines
    assert batch_only == {"I-21", "I-22", "I-23", "N-01", "N-02", "N-03", "N-04"}
    assert all(i.stream for s in ("sender", "receiver") for i in for_side(s) if i.id not in batch_only)


@pytest.mark.parametrize("ind_id,side,source_side", [("I-03", "sender", "receiver"), ("I-04", "receiver", "sender")])
def test_counterpart_forms_read_only_the_columns_whose_change_is_propagated(ind_id, side, source_side):
    """A change of the source's evidence is propagated when one of `dependent_reads` changes: the
    counterpart form must read nothing else of it."""
    ind = INDICATORS[ind_id]
    assert ind.dependent_side == {source_side: side}
    read: set[str] = set()

    class Recorder(dict):
        def __getitem__(self, k):
            read.add(k)
            return 1

    class World:
        def indicator_columns(self, s, acc, i):
            assert (s, i) == (source_side, ind_id)
            return Recorder()

    st = ind.new_state(side, {ind_id: ind.params(load_config())})
    st.add(None, "X", True, False)
    st.metrics(World())
    assert read and read <= {ind.col(c) for c in ind.dependent_reads}
