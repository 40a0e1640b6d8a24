"""P-01 (receivers paid by high-scoring senders) and scoring_evidence, hand-computed on tiny tables."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from kalasag.engine import connect
from kalasag.model import ConfigError, load_config
from kalasag.scoring import (
    ANOMALY_REF,
    PROPAGATION_REF,
    IndicatorRef,
    customer_evidence,
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


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="strong_expected"):
        propagation_params(_config(min_expected=2.0, strong_expected=1.0))
    with pytest.raises(ConfigError, match="flag_score"):
        propagation_params(_config(flag_score=1.5))


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
    senders = pd.DataFrame({"account_id": ["s1", "s2"], "i03_fired": [True, False], "i03_strength": [1.0, 0.0],
                            "i01_n": [3, 1], "i01_n_micro": [3, 0], "i05_cp_unrelated": [1, 1]})
    receivers = pd.DataFrame({"account_id": ["r1", "r2"], "i01_n": [3, 1], "i01_n_micro": [3, 1],
                              "i05_cp_unrelated": [2, 1]})
    transfers = _transfers([("s1", "r1", "US", "PH"), ("s1", "r1", "US", "PH"), ("s2", "r1", "GB", "PH"),
                            ("s2", "r2", "GB", "PH")])
    ev = SimpleNamespace(side=lambda s: eng.from_records(senders if s == "sender" else receivers))
    tables = scoring_evidence(eng, ev, eng.from_records(transfers), cfg, refs)
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
