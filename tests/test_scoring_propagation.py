"""P-01 (receivers paid by high-scoring senders), P-02 (senders sharing beneficiaries with high-scoring
senders) and scoring_evidence, hand-computed on tiny tables."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from kalasag.engine import connect
from kalasag.model import ConfigError, load_config
from kalasag.scoring import (
    ANOMALY_REF,
    COPAYER_REF,
    PROPAGATION_REF,
    IndicatorRef,
    copayer_evidence,
    copayer_params,
    customer_evidence,
    explain_copayers,
    explain_propagation,
    explainer,
    payer_edges,
    propagation_params,
    score_table,
    scoring_evidence,
)

P01 = {"min_expected": 0.5, "strong_expected": 2.0, "flag_score": 0.5}
A01 = {"sender_metrics": ["micro"], "receiver_metrics": ["micro"], "sender_population": "side",
       "receiver_population": "side", "min_population": 2, "min_transfers": 1, "fire_top_share": 0.5,
       "strong_top_share": 0.25}


def _config(**p01):
    return load_config(overrides={"indicators": {"P-01": {**P01, **p01}, "A-01": A01}})


def _transfers(rows):
    df = pd.DataFrame(rows, columns=["sender_id", "receiver_id", "sender_country", "receiver_country"])
    df["ts_epoch"] = range(len(df))
    return df


TRANSFERS = _transfers([
    ("s1", "r1", "US", "PH"), ("s1", "r1", "US", "PH"),  # two payments, one payer
    ("s2", "r1", "GB", "PH"),
    ("s3", "r1", "PH", "PH"),                            # domestic: not watched
    ("s1", "r2", "US", "PH"),
    ("s4", "r3", "US", "TH"),                            # not a target country: not watched
    ("s2", "r4", "GB", "PH"),
    ("s6", "r5", "AU", "PH"), ("s5", "r5", "AU", "PH"),  # two payers with the same score
])
SCORES = pd.DataFrame({"account_id": ["s1", "s2", "s3", "s4", "s5", "s6"], "score": [0.9, 0.4, 0.99, 0.8, 0.7, 0.7]})


def test_payer_edges_keep_watched_pairs_only():
    eng = connect()
    e = eng.fetch(payer_edges(eng.from_records(TRANSFERS), _config()))
    got = {(r.sender_id, r.receiver_id): r.n for r in e.itertuples()}
    assert got == {("s1", "r1"): 2, ("s2", "r1"): 1, ("s1", "r2"): 1, ("s2", "r4"): 1, ("s6", "r5"): 1, ("s5", "r5"): 1}


def test_customer_evidence_hand_computed():
    eng = connect()
    cfg = _config()
    receivers = eng.from_records(pd.DataFrame({"account_id": ["r1", "r2", "r3", "r4", "r5"], "other": [1, 2, 3, 4, 5]}))
    out = customer_evidence(receivers, payer_edges(eng.from_records(TRANSFERS), cfg), eng.from_records(SCORES), cfg)
    res = eng.fetch(out).set_index("account_id").sort_index()
    assert res["other"].tolist() == [1, 2, 3, 4, 5]  # the evidence columns are kept
    # r1: s1 (0.9) + s2 (0.4) = 1.3 expected customers, 2 payers, 1 at >= 0.5, strength 1.3 / 2
    assert res.loc["r1", "p01_expected"] == pytest.approx(1.3)
    assert (res.loc["r1", "p01_payers"], res.loc["r1", "p01_flagged"]) == (2, 1)
    assert (res.loc["r1", "p01_top_payer"], res.loc["r1", "p01_top_score"]) == ("s1", 0.9)
    assert res.loc["r1", "p01_fired"] and res.loc["r1", "p01_strength"] == pytest.approx(0.65)
    # r2: 0.9 -> 0.45 ; r4: 0.4 < 0.5, not fired ; r3: no watched payer
    assert res.loc["r2", "p01_strength"] == pytest.approx(0.45)
    assert not res.loc["r4", "p01_fired"] and res.loc["r4", "p01_strength"] == 0.0
    assert res.loc["r4", "p01_expected"] == pytest.approx(0.4)
    assert not res.loc["r3", "p01_fired"] and res.loc["r3", "p01_strength"] == 0.0 and pd.isna(res.loc["r3", "p01_expected"])
    # r5: 1.4 -> 0.7 ; tie at the top -> the smaller id
    assert res.loc["r5", "p01_strength"] == pytest.approx(0.7) and res.loc["r5", "p01_top_payer"] == "s5"


def test_strength_caps_at_one():
    eng = connect()
    cfg = _config(strong_expected=1.0)
    receivers = eng.from_records(pd.DataFrame({"account_id": ["r1"]}))
    res = eng.fetch(customer_evidence(receivers, payer_edges(eng.from_records(TRANSFERS), cfg), eng.from_records(SCORES), cfg))
    assert res.loc[0, "p01_strength"] == 1.0


@pytest.mark.parametrize("which, bad, message", [
    ("P-01", {"min_expected": 2.0, "strong_expected": 1.0}, r'"P-01"\': strong_expected must not be below'),
    ("P-01", {"flag_score": 1.5}, r'"P-01"\.flag_score'),
    ("P-02", {"min_expected": 2.0, "strong_expected": 1.0}, r'"P-02"\': strong_expected must not be below'),
    ("P-02", {"max_via_payers": 0}, r'"P-02"\.max_via_payers'),
])
def test_bad_parameters_are_config_errors(which, bad, message):
    """A bad P-01 / P-02 parameter is a one-line ConfigError naming the indicator and key."""
    with pytest.raises(ConfigError, match=message):
        if which == "P-01":
            propagation_params(_config(**bad))
        else:
            copayer_params(_config02(**bad))


def _two_payer_world(eng, cfg, refs):
    """s1 (I-03 fired) pays r1 twice; s2 pays r1 and r2: both sides' tables after scoring_evidence."""
    senders = pd.DataFrame({"account_id": ["s1", "s2"], "i03_fired": [True, False], "i03_strength": [1.0, 0.0],
                            "i01_n": [3, 1], "i01_n_micro": [3, 0], "i05_cp_unrelated": [1, 1]})
    receivers = pd.DataFrame({"account_id": ["r1", "r2"], "i01_n": [3, 1], "i01_n_micro": [3, 1],
                              "i05_cp_unrelated": [2, 1]})
    transfers = _transfers([("s1", "r1", "US", "PH"), ("s1", "r1", "US", "PH"), ("s2", "r1", "GB", "PH"),
                            ("s2", "r2", "GB", "PH")])
    ev = SimpleNamespace(side=lambda s: eng.from_records(senders if s == "sender" else receivers))
    return scoring_evidence(eng, ev, eng.from_records(transfers), cfg, refs)


def test_scoring_evidence_scores_senders_then_propagates():
    """Senders scored with the configured weights; receivers' P-01 is the sum of those scores."""
    eng = connect()
    cfg = _config()
    scoring = cfg.scoring.model_copy(update={
        "prior_log_odds": {"sender": -2.0, "receiver": -5.0},
        "weights": {"I-03.sender": 4.0, "P-01.receiver": 2.0, "A-01": 0.0},
    })
    cfg = cfg.model_copy(update={"scoring": scoring})
    refs = [IndicatorRef("I-03", "i03", "Fan-in"), ANOMALY_REF, PROPAGATION_REF]
    tables = _two_payer_world(eng, cfg, refs)
    assert "p01_strength" not in tables["sender"].columns and "a01_strength" in tables["sender"].columns
    s1, s2 = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(2.0))  # logit -2 + 4 ; -2
    r = eng.fetch(tables["receiver"]).set_index("account_id").sort_index()
    assert r.loc["r1", "p01_expected"] == pytest.approx(s1 + s2)
    assert r.loc["r2", "p01_expected"] == pytest.approx(s2) and not r.loc["r2", "p01_fired"]
    final = eng.fetch(score_table(tables["receiver"], "receiver", refs, cfg)).set_index("account_id")
    assert final.loc["r1", "logit"] == pytest.approx(-5.0 + 2.0 * (s1 + s2) / 2.0)
    assert final.loc["r2", "logit"] == pytest.approx(-5.0)
    assert final.loc["r1", "indicators"].split(";")[-1] == "P-01"


def test_sentence_and_explainer():
    row = {"p01_expected": 2.34, "p01_payers": 6, "p01_flagged": 2, "p01_top_payer": "abc", "p01_top_score": 0.97}
    assert explain_propagation(row, "receiver") == (
        "paid by 6 foreign senders whose own scores add up to 2.3 expected OSEC customers; 2 of them score 0.50 "
        "or more (highest: abc, score 0.97)")
    one = {"p01_expected": 1.0, "p01_payers": 1, "p01_flagged": 1, "p01_top_payer": "x", "p01_top_score": 1.0}
    assert explain_propagation(one, "receiver").startswith("paid by 1 foreign sender whose own scores add up to 1.0 expected OSEC customer;")
    assert "scores 0.50 or more" in explain_propagation(one, "receiver")
    assert explain_propagation({}, "receiver") == ""
    assert "0.80 or more" in explainer(lambda i, r, s: "", _config(flag_score=0.8))("P-01", row, "receiver")


# ---- P-02: senders sharing beneficiaries with high-scoring senders ---------------------------------
P02 = {"min_expected": 0.5, "strong_expected": 2.0, "max_via_payers": 3, "flag_score": 0.5}


def _config02(**p02):
    return load_config(overrides={"indicators": {"P-01": P01, "P-02": {**P02, **p02}, "A-01": A01}})


CO_TRANSFERS = _transfers([
    ("s1", "r1", "US", "PH"), ("s1", "r1", "US", "PH"), ("s2", "r1", "GB", "PH"), ("s3", "r1", "AU", "PH"),
    ("s1", "r2", "US", "PH"), ("s4", "r2", "CA", "PH"),
    ("s2", "r4", "GB", "PH"), ("s4", "r4", "CA", "PH"),
    ("s12", "r1", "PH", "PH"),                            # domestic: not watched, links nobody
    ("s6", "rb", "US", "PH"), ("s7", "rb", "US", "PH"), ("s8", "rb", "US", "PH"), ("s9", "rb", "US", "PH"),  # 4 payers > 3
    ("s5", "r5", "AU", "PH"), ("s10", "r5", "AU", "PH"), ("s11", "r5", "AU", "PH"),
    ("s13", "r6", "AU", "PH"),                            # alone: no co-payer
])
CO_SCORES = pd.DataFrame({
    "account_id": ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13"],
    "score": [0.9, 0.4, 0.05, 0.6, 0.99, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.99, 0.99]})


def test_copayer_evidence_hand_computed():
    eng = connect()
    cfg = _config02()
    ids = ["s1", "s2", "s3", "s4", "s5", "s6", "s12", "s13"]
    senders = eng.from_records(pd.DataFrame({"account_id": ids, "other": range(len(ids))}))
    out = copayer_evidence(senders, payer_edges(eng.from_records(CO_TRANSFERS), cfg), eng.from_records(CO_SCORES), cfg)
    res = eng.fetch(out).set_index("account_id")
    assert res.loc[ids, "other"].tolist() == list(range(len(ids)))  # the evidence columns are kept
    # s1: via r1 s2 (0.4), s3 (0.05); via r2 s4 (0.6): 1.05 expected, 3 co-payers, 2 beneficiaries, 1 at >= 0.5
    r = res.loc["s1"]
    assert r.p02_expected == pytest.approx(1.05) and (r.p02_copayers, r.p02_via, r.p02_flagged) == (3, 2, 1)
    assert (r.p02_top_copayer, r.p02_top_score) == ("s4", 0.6)
    assert r.p02_fired and r.p02_strength == pytest.approx(1.05 / 2.0)
    # s2: via r1 s1 (0.9), s3 (0.05); via r4 s4 (0.6): 1.55; s4 counted once although it shares r4 only
    r = res.loc["s2"]
    assert r.p02_expected == pytest.approx(1.55) and (r.p02_copayers, r.p02_via, r.p02_flagged) == (3, 2, 2)
    assert r.p02_top_copayer == "s1" and r.p02_strength == pytest.approx(0.775)
    # s3: s1 + s2 = 1.3 ; s4: via r2 s1, via r4 s2 = 1.3 (the sender's own score never counts)
    assert res.loc["s3", "p02_expected"] == pytest.approx(1.3) and res.loc["s3", "p02_via"] == 1
    assert res.loc["s4", "p02_expected"] == pytest.approx(1.3) and res.loc["s4", "p02_via"] == 2
    # s5: co-payers s10 and s11 tie at 0.7 -> the smaller id is named; 1.4 -> strength 0.7
    assert res.loc["s5", "p02_top_copayer"] == "s10" and res.loc["s5", "p02_strength"] == pytest.approx(0.7)
    # s6: its beneficiary has 4 foreign payers (> max_via_payers 3): no co-payer; s12 (domestic) and s13 (alone): none
    for sid in ("s6", "s12", "s13"):
        assert not res.loc[sid, "p02_fired"] and res.loc[sid, "p02_strength"] == 0.0 and pd.isna(res.loc[sid, "p02_expected"])


def test_copayer_threshold_and_cap():
    eng = connect()
    edges = payer_edges(eng.from_records(CO_TRANSFERS), _config02())
    senders = eng.from_records(pd.DataFrame({"account_id": ["s1", "s3"]}))
    # min_expected 1.2: s1 (1.05) does not fire, s3 (1.3) does; strong 1.2 caps s3 at 1
    cfg = _config02(min_expected=1.2, strong_expected=1.2)
    res = eng.fetch(copayer_evidence(senders, edges, eng.from_records(CO_SCORES), cfg)).set_index("account_id")
    assert not res.loc["s1", "p02_fired"] and res.loc["s1", "p02_strength"] == 0.0
    assert res.loc["s1", "p02_expected"] == pytest.approx(1.05)
    assert res.loc["s3", "p02_fired"] and res.loc["s3", "p02_strength"] == 1.0
    # a larger max_via_payers lets rb link s6 to s7, s8, s9 (0.8 each)
    res = eng.fetch(copayer_evidence(eng.from_records(pd.DataFrame({"account_id": ["s6"]})), edges,
                                     eng.from_records(CO_SCORES), _config02(max_via_payers=4)))
    assert res.loc[0, "p02_expected"] == pytest.approx(2.4) and res.loc[0, "p02_copayers"] == 3


def test_scoring_evidence_p02_from_scores_before_p02_then_p01_from_final():
    """P-02 reads the senders' scores without P-02; the final sender scores include it; P-01 reads those."""
    eng = connect()
    cfg = load_config(overrides={"indicators": {"P-01": P01, "A-01": A01,
                                                "P-02": {**P02, "min_expected": 0.1, "strong_expected": 1.0}}})
    scoring = cfg.scoring.model_copy(update={
        "prior_log_odds": {"sender": -2.0, "receiver": -5.0},
        "weights": {"I-03.sender": 4.0, "P-02.sender": 3.0, "P-01.receiver": 2.0, "A-01": 0.0},
    })
    cfg = cfg.model_copy(update={"scoring": scoring})
    refs = [IndicatorRef("I-03", "i03", "Fan-in"), ANOMALY_REF, COPAYER_REF, PROPAGATION_REF]
    tables = _two_payer_world(eng, cfg, refs)
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    b1, b2 = sig(-2.0 + 4.0), sig(-2.0)          # before P-02: 0.8808, 0.1192
    s = eng.fetch(score_table(tables["sender"], "sender", refs, cfg)).set_index("account_id")
    # s1's co-payer is s2 (both pay r1) and vice versa; strength = sum / 1.0
    assert s.loc["s1", "p02_expected"] == pytest.approx(b2) and s.loc["s1", "p02_strength"] == pytest.approx(b2)
    assert s.loc["s2", "p02_expected"] == pytest.approx(b1)
    f1, f2 = sig(-2.0 + 4.0 + 3.0 * b2), sig(-2.0 + 3.0 * b1)
    assert s.loc["s1", "score"] == pytest.approx(f1) and s.loc["s2", "score"] == pytest.approx(f2)
    r = eng.fetch(tables["receiver"]).set_index("account_id").sort_index()
    assert r.loc["r1", "p01_expected"] == pytest.approx(f1 + f2)
    assert r.loc["r2", "p01_expected"] == pytest.approx(f2)
    assert "p02_strength" not in tables["receiver"].columns


def test_copayer_sentence_and_explainer():
    row = {"p02_expected": 2.34, "p02_copayers": 6, "p02_via": 2, "p02_flagged": 2, "p02_top_copayer": "abc",
           "p02_top_score": 0.97}
    assert explain_copayers(row, "sender") == (
        "2 of its beneficiaries are also paid by 6 other foreign senders whose own scores add up to 2.3 expected OSEC "
        "customers; 2 of them score 0.50 or more (highest: abc, score 0.97)")
    one = {"p02_expected": 0.2, "p02_copayers": 1, "p02_via": 1, "p02_flagged": 0, "p02_top_copayer": "x",
           "p02_top_score": 0.2}
    assert explain_copayers(one, "sender") == (
        "its beneficiary is also paid by 1 other foreign sender whose own scores add up to 0.2 expected OSEC "
        "customers (highest: x, score 0.20)")
    assert explain_copayers({}, "sender") == ""
    assert "0.80 or more" in explainer(lambda i, r, s: "", _config02(flag_score=0.8))("P-02", row, "sender")
