"""Network indicators on hand-made graphs with hand-computed values: N-01 shared customers, N-02
co-moving bursts, I-23 watchlist linkage (0, 1 and 2 hops, through whom), N-03 links to suspicious
receivers, N-04 two-hop exposure, and the network stage's first-pass score."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "indicators"))
from kalasag_tx_fixtures import config, table, tx  # noqa: E402

from kalasag.engine import Engine  # noqa: E402
from kalasag.indicators import INDICATORS, Context, compute_evidence, explain, for_side  # noqa: E402
from kalasag.network import FirstPassMissing, first_pass_logit, load_watchlist, network_evidence  # noqa: E402

FOREIGN = "John Smith"


@pytest.fixture(scope="module")
def engine():
    return Engine(threads=1)


def u(s, r, at, usd=50.0, rname="Maria Santos", **kw):
    kw.setdefault("sender_name", FOREIGN)
    return tx(s, r, at, usd, receiver_name=rname, **kw)


def run(engine, rows, ind_id, side, watchlist=None, first_pass=None, **over):
    ctx = Context.build(engine, table(engine, rows), config(**over), watchlist=watchlist)
    for s, scores in (first_pass or {}).items():
        ctx.cache[f"network_first_pass_{s}"] = engine.from_records(
            pd.DataFrame({"account_id": list(scores), "score": [float(v) for v in scores.values()]}))
    return engine.fetch(INDICATORS[ind_id].evidence(ctx, side)).set_index("account_id")


def sentence(ind_id, df, acc, side):
    return explain(ind_id, df.loc[acc].to_dict(), side)


# ---- N-01 shared customers ----------------------------------------------------------------------
# R1 and R2 are both paid by A, B, C; R3 by C and D; R4 by E. Pedro Santos pays R1 and R2 but is
# related to both (same surname): not a customer edge.
N01_ROWS = [
    u("A", "R1", 0), u("A", "R2", 1), u("B", "R1", 2), u("B", "R2", 3),
    u("C", "R1", 4), u("C", "R2", 5), u("C", "R3", 6), u("D", "R3", 7), u("E", "R4", 8),
    u("P", "R1", 9, sender_name="Pedro Santos"), u("P", "R2", 10, sender_name="Pedro Santos"),
]


def test_n01_receivers_share_customers(engine):
    ev = run(engine, N01_ROWS, "N-01", "receiver")
    # R1–R2: 3 shared of 3 and 3 senders → Jaccard 3 / (3 + 3 − 3) = 1; R1–R3 share only C (1 < 2)
    r1 = ev.loc["R1"]
    assert bool(r1.n01_fired) and r1.n01_linked_receivers == 1 and r1.n01_max_shared == 3
    assert r1.n01_max_jaccard == pytest.approx(1.0) and r1.n01_linked_example == "R2"
    assert r1.n01_customers == 3 and r1.n01_shared_customers == 3
    assert r1.n01_strength == pytest.approx(3 / 4)  # strong_shared_customers = 4
    r3 = ev.loc["R3"]
    assert not r3.n01_fired and r3.n01_strength == 0 and r3.n01_customers == 2 and r3.n01_shared_customers == 1
    assert not ev.loc["R4"].n01_fired
    s = sentence("N-01", ev, "R1", "receiver")
    assert "3 of its 3 unrelated foreign senders also pay other receivers" in s
    assert "at least 2 customers with 1 other receiver (up to 3 in common, with R2; sender-set overlap 1.00)" in s


def test_n01_senders_and_busy_sender_cap(engine):
    ev = run(engine, N01_ROWS, "N-01", "sender")
    assert bool(ev.loc["A"].n01_fired) and ev.loc["A"].n01_linked_beneficiaries == 2 and ev.loc["A"].n01_strength == pytest.approx(0.75)
    assert bool(ev.loc["C"].n01_fired)  # pays R1, R2 (linked) and R3
    assert "D" not in ev.index or not ev.loc["D"].n01_fired
    assert "pays 2 beneficiaries that share customers with each other (up to 3 senders in common)" in sentence("N-01", ev, "A", "sender")
    # C pays 3 receivers: with max_sender_beneficiaries = 2 it no longer links anybody
    ev = run(engine, N01_ROWS, "N-01", "receiver", N_01={"max_sender_beneficiaries": 2})
    assert ev.loc["R1"].n01_max_shared == 2 and ev.loc["R1"].n01_strength == pytest.approx(0.5)
    assert ev.loc["R3"].n01_shared_customers == 0
    # a stricter overlap requirement: Jaccard 1.0 still passes, 2 shared < 3 does not
    ev = run(engine, N01_ROWS, "N-01", "receiver", N_01={"min_shared_customers": 4})
    assert not ev.loc["R1"].n01_fired


# ---- N-02 co-moving bursts ----------------------------------------------------------------------
# weeks from the first payment: R1 [2,0,2,0], R2 [1,0,1,0] (corr +1, both active in weeks 0 and 2),
# R3 [0,1,0,1] (corr −1 with both). A and B pay all three (2 shared customers per pair).
N02_ROWS = [
    u("A", "R1", 0), u("B", "R1", 1), u("A", "R1", 14), u("B", "R1", 15),
    u("A", "R2", 2), u("B", "R2", 16),
    u("A", "R3", 8), u("B", "R3", 22),
]


def test_n02_pearson_and_common_weeks(engine):
    ev = run(engine, N02_ROWS, "N-02", "receiver", N_02={"min_corr": 0.25, "min_co_weeks": 2, "burst_min": 1})
    # n = 4 weeks; R1: Σx = 4, Σx² = 8; R2: Σy = 2, Σy² = 2; Σxy = 4
    # corr = (4·4 − 4·2) / sqrt((4·8 − 16)(4·2 − 4)) = 8 / 8 = 1
    r1 = ev.loc["R1"]
    assert bool(r1.n02_fired) and r1.n02_comoving_receivers == 1 and r1.n02_max_corr == pytest.approx(1.0)
    assert r1.n02_co_burst_weeks == 2 and r1.n02_comoving_example == "R2"
    assert r1.n02_strength == pytest.approx(2 / 6)
    assert not ev.loc["R3"].n02_fired and ev.loc["R3"].n02_strength == 0
    assert "correlation up to 1.00; bursts in the same 2 periods of 7 days, e.g. with R2" in sentence("N-02", ev, "R1", "receiver")
    # three common weeks required: only 2 → nobody fires; burst_min 2: R2 never has 2 in a week
    assert not run(engine, N02_ROWS, "N-02", "receiver", N_02={"min_co_weeks": 3, "burst_min": 1, "min_corr": 0.25}).n02_fired.any()
    assert not run(engine, N02_ROWS, "N-02", "receiver", N_02={"min_co_weeks": 1, "burst_min": 2, "min_corr": 0.25}).n02_fired.any()


# ---- I-23 watchlist linkage -----------------------------------------------------------------------
I23_ROWS = [
    u("S1", "R1", 0, sender_phone="+1 212 555 0000"),      # S1 is listed (account id, line 2)
    u("S2", "R1", 1), u("S2", "R2", 2),                      # S2: two hops via R1; R2: three hops
    u("S3", "R3", 3, receiver_phone="0917 555 0101"),        # R3 listed by phone (line 3)
    u("S4", "R9", 4, rname="REYES, ANA"),                    # R9 listed by name (line 4)
    u("S6", "R7", 5, sender_phone="(212) 555-0000"),         # S6 shares S1's phone: one hop
]


@pytest.fixture(scope="module")
def watchlist(engine, tmp_path_factory):
    p = tmp_path_factory.mktemp("wl") / "known.csv"
    p.write_text("account_id,name,phone\nS1,,\n,,+63 917 555 0101\n,Ana Reyes,\n")
    return load_watchlist(engine, p)


def test_i23_hops_and_through_whom(engine, watchlist):
    s = run(engine, I23_ROWS, "I-23", "sender", watchlist=watchlist)
    r = run(engine, I23_ROWS, "I-23", "receiver", watchlist=watchlist)
    assert s.loc["S1"].i23_hops == 0 and s.loc["S1"].i23_match == "account id" and s.loc["S1"].i23_entry == 2
    assert s.loc["S1"].i23_strength == pytest.approx(1.0)
    assert r.loc["R1"].i23_hops == 1 and r.loc["R1"].i23_subject == "S1" and r.loc["R1"].i23_strength == pytest.approx(0.8)
    assert s.loc["S2"].i23_hops == 2 and s.loc["S2"].i23_via == "R1" and s.loc["S2"].i23_subject == "S1"
    assert s.loc["S2"].i23_strength == pytest.approx(0.4)
    assert "R2" not in r.index  # three hops away
    assert r.loc["R3"].i23_hops == 0 and r.loc["R3"].i23_match == "phone" and r.loc["R3"].i23_entry == 3
    assert s.loc["S3"].i23_hops == 1 and s.loc["S3"].i23_subject == "R3"
    assert r.loc["R9"].i23_hops == 0 and r.loc["R9"].i23_match == "name" and s.loc["S4"].i23_subject == "R9"
    assert s.loc["S6"].i23_hops == 1 and s.loc["S6"].i23_link == "phone" and s.loc["S6"].i23_subject == "S1"
    assert "R7" not in r.index
    assert sentence("I-23", s, "S2", "sender") == (
        "is two hops from the watchlist: it paid receiver R1, who was also paid by listed sender S1 "
        "(watchlist line 2, matched by account id)")
    assert sentence("I-23", r, "R1", "receiver") == "was paid by sender S1, who is on the watchlist (watchlist line 2, matched by account id)"
    assert sentence("I-23", s, "S6", "sender").startswith("shares a phone number with sender S1, who is on the watchlist")
    assert sentence("I-23", r, "R3", "receiver") == "is on the watchlist (watchlist line 3, matched by phone)"


def test_i23_limits(engine, watchlist):
    s = run(engine, I23_ROWS, "I-23", "sender", watchlist=watchlist, I_23={"max_hops": 1})
    assert "S2" not in s.index and s.loc["S3"].i23_hops == 1
    # R1 has 2 senders: with max_via_degree 1 it carries no two-hop link
    s = run(engine, I23_ROWS, "I-23", "sender", watchlist=watchlist, I_23={"max_via_degree": 1})
    assert "S2" not in s.index
    # no watchlist: nothing
    assert run(engine, I23_ROWS, "I-23", "sender").empty


def test_i23_runs_inside_compute_evidence(engine, watchlist):
    ev = compute_evidence(engine, table(engine, I23_ROWS), config(), watchlist=watchlist)
    s = engine.fetch(ev.sender).set_index("account_id")
    assert bool(s.loc["S2"].i23_fired) and bool(s.loc["S6"].i23_fired) and not s.loc["S2"].i23_hops == 1
    assert s["i23_fired"].notna().all() and s.loc["S6"].i23_hops == 1
    ev = compute_evidence(engine, table(engine, I23_ROWS), config())  # old signature: I-23 never fires
    assert not engine.fetch(ev.sender)["i23_fired"].any()


# ---- N-03 links to suspicious receivers ---------------------------------------------------------
N03_ROWS = [
    u("A", "R1", 0, rname="Ana Reyes", receiver_phone="+63 918 000 1111", receiver_region="Cebu"),
    u("B", "R2", 1, rname="Luz Cruz", receiver_phone="0918-000-1111"),   # same phone as R1
    u("A", "R3", 2, rname="REYES, ANA"),                                 # same name as R1 and customer A
    u("E", "R6", 5, rname="Ana Reyes"),                                  # same name, no common customer
    u("A", "R4", 3, rname="Rosa Lim", receiver_region="Cebu"),           # same region, shares customer A
    u("D", "R5", 4, rname="Nena Uy", receiver_region="Cebu"),            # same region, no common customer
]
N03_SCORES = {"receiver": {"R1": 0.9, "R2": 0.1, "R3": 0.1, "R4": 0.1, "R5": 0.1, "R6": 0.1}}


def test_n03_phone_name_region(engine):
    ev = run(engine, N03_ROWS, "N-03", "receiver", first_pass=N03_SCORES)
    assert ev.loc["R2"].n03_phone_links == 1 and ev.loc["R2"].n03_strength == pytest.approx(0.5)  # 1 / strong_links 2
    assert ev.loc["R3"].n03_name_links == 1 and ev.loc["R3"].n03_example == "R1"
    assert ev.loc["R4"].n03_region_links == 1 and ev.loc["R4"].n03_strength == pytest.approx(0.3)
    assert "R5" not in ev.index and "R6" not in ev.index  # region / name without a common customer
    # a common customer alone is not a link: R4 (customer A, region Cebu) has another name than R1,
    # R3 (customer A, same name) has no region
    assert ev.loc["R4"].n03_name_links == 0 and ev.loc["R3"].n03_region_links == 0
    assert "R1" not in ev.index  # R1's neighbours are not suspicious
    assert sentence("N-03", ev, "R2", "receiver") == "shares a phone number with 1 suspicious receiver (first-pass score ≥ 0.30, e.g. R1)"
    ev = run(engine, N03_ROWS, "N-03", "receiver", first_pass=N03_SCORES, N_03={"seed_score": 0.95})
    assert not ev.n03_fired.any()
    ctx = Context.build(engine, table(engine, N03_ROWS), config())
    with pytest.raises(FirstPassMissing):
        INDICATORS["N-03"].evidence(ctx, "receiver")


# ---- N-04 two-hop exposure ----------------------------------------------------------------------
N04_ROWS = [
    u("S2", "R1", 0, 100), u("S2", "R1", 1, 100), u("S2", "R2", 2, 100), u("S2", "R2", 3, 100),
    u("S1", "R2", 4, 50), u("S1", "R2", 5, 50),
    u("S3", "R2", 6, 50), u("S3", "R2", 7, 50), u("S3", "R3", 8, 50),
]
N04_SCORES = {"sender": {"S1": 0.9, "S2": 0.1, "S3": 0.1}, "receiver": {"R1": 0.8, "R2": 0.1, "R3": 0.1}}


def test_n04_one_and_two_hops(engine):
    s = run(engine, N04_ROWS, "N-04", "sender", first_pass=N04_SCORES)
    r = run(engine, N04_ROWS, "N-04", "receiver", first_pass=N04_SCORES)
    # S2: 200 of 400 USD to seed receiver R1 (one hop, 0.5); 200 via R2, which seed S1 also pays (0.5 × 0.5)
    assert s.loc["S2"].n04_share_1hop == pytest.approx(0.5) and s.loc["S2"].n04_share_2hop == pytest.approx(0.5)
    assert s.loc["S2"].n04_strength == pytest.approx(0.5) and s.loc["S2"].n04_via_1hop == "R1"
    # S3: 100 of 150 USD via R2 (two hops) → 0.667 × 0.5
    assert not s.loc["S3"].n04_share_1hop and s.loc["S3"].n04_share_2hop == pytest.approx(2 / 3)
    assert s.loc["S3"].n04_strength == pytest.approx(1 / 3) and s.loc["S3"].n04_seed_2hop == "S1"
    assert "S1" not in s.index or not s.loc["S1"].n04_fired
    # R2: 100 of 400 from seed S1 (0.25 < 0.5); 200 from S2, who also pays seed receiver R1 → 0.5 × 0.5
    assert r.loc["R2"].n04_share_1hop == pytest.approx(0.25) and r.loc["R2"].n04_strength == pytest.approx(0.25)
    assert r.loc["R2"].n04_via_2hop == "S2" and r.loc["R2"].n04_seed_2hop == "R1"
    assert "R1" not in r.index and "R3" not in r.index
    assert sentence("N-04", s, "S2", "sender").startswith("50% of its watched USD was sent to 1 strongly flagged receiver (mostly R1)")
    # R2 has 3 senders: with max_via_degree 2 it carries no two-hop risk
    s = run(engine, N04_ROWS, "N-04", "sender", first_pass=N04_SCORES, N_04={"max_via_degree": 2})
    assert "S3" not in s.index and s.loc["S2"].n04_strength == pytest.approx(0.5)


# ---- the network stage -------------------------------------------------------------------------
def test_network_stage_columns_and_first_pass(engine):
    from kalasag.scoring import IndicatorRef, score_table

    cfg = config()
    t = table(engine, N04_ROWS + N01_ROWS)
    ev = compute_evidence(engine, t, cfg)
    out = network_evidence(engine, t, ev, cfg)
    for side in ("sender", "receiver"):
        df = engine.fetch(out.side(side))
        assert len(df) == engine.count(ev.side(side))
        for ind in for_side(side, "network"):
            assert df[ind.col("fired")].notna().all() and df[ind.col("strength")].between(0, 1).all()
        # the first pass is the scoring formula without the network-stage indicators
        refs = [IndicatorRef(i.id, i.slug, i.name) for i in INDICATORS.values() if i not in for_side(side, "network")]
        want = engine.fetch(score_table(ev.side(side), side, refs, cfg).select("account_id", "logit")).set_index("account_id")
        got = engine.fetch(ev.side(side).select("account_id", fp=first_pass_logit(ev.side(side), side, cfg))).set_index("account_id")
        assert (got.fp - want.logit.reindex(got.index)).abs().max() < 1e-9
    assert [i.id for i in for_side("receiver", "network")] == ["N-03", "N-04"]
    assert {"I-23", "N-01", "N-02"} <= {i.id for i in for_side("receiver")}


def test_i23_watchlist_with_one_column(engine, tmp_path):
    # name and phone absent from the file: all-empty columns must still load and match nothing
    f = tmp_path / "ids.csv"
    f.write_text("account_id\nR3\n")
    s = run(engine, I23_ROWS, "I-23", "sender", watchlist=load_watchlist(engine, f))
    assert list(s.index) == ["S3"] and s.loc["S3"].i23_hops == 1 and s.loc["S3"].i23_subject == "R3"
