"""Scoring: the logistic combination, risk levels and explanations, hand-computed."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kalasag.engine import connect
from kalasag.model import ConfigError, load_config
from kalasag.model.config import ScoringConfig
from kalasag.scoring import IndicatorRef, contributions, explain_row, score_table, weight_for

REFS = [IndicatorRef("I-01", "i01", "Low value"), IndicatorRef("I-03", "i03", "Fan-in")]


@pytest.fixture()
def config():
    scoring = ScoringConfig(
        prior_log_odds={"sender": -5.0, "receiver": -4.0},
        alert_threshold=0.5,
        risk_high=0.8,
        risk_medium=0.65,
        max_explained=8,
        weights={"I-01": 2.0, "I-03": 3.0, "I-03.sender": 0.5, "core_rule": 1.0},
    )
    return load_config().model_copy(update={"scoring": scoring})


def test_config_rejects_negative_weights_and_missing_priors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[scoring.weights]\n"I-01" = -1.0\n')
    with pytest.raises(ConfigError, match="non-negative"):
        load_config(bad)
    with pytest.raises(ConfigError, match="prior_log_odds"):
        load_config(overrides={"scoring": {"prior_log_odds": {"sender": -3.0, "receiver": None}}})


def test_weight_lookup_prefers_side_specific(config):
    assert weight_for(config, "I-03", "receiver") == 3.0
    assert weight_for(config, "I-03", "sender") == 0.5
    assert weight_for(config, "I-99", "sender") == 0.0


def test_score_table_hand_computed(config):
    eng = connect()
    df = pd.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "i01_fired": [True, True, False],
            "i01_strength": [1.0, 0.5, 0.0],
            "i03_fired": [True, False, False],
            "i03_strength": [1.0, 0.0, 0.0],
            "core_rule": [True, False, False],
        }
    )
    t = eng.from_records(df)
    res = eng.fetch(score_table(t, "receiver", REFS, config).order_by("account_id")).set_index("account_id")
    # a: -4 + 2*1 + 3*1 + 1 (core) = 2 ; b: -4 + 2*0.5 = -3 ; c: -4
    expect = {"a": 2.0, "b": -3.0, "c": -4.0}
    for acc, logit in expect.items():
        assert res.loc[acc, "logit"] == pytest.approx(logit)
        assert res.loc[acc, "score"] == pytest.approx(1 / (1 + math.exp(-logit)))
    assert res.loc["a", "risk_level"] == "high"  # 0.881
    assert bool(res.loc["a", "alerted"]) is True
    assert res.loc["b", "risk_level"] == "low" and not bool(res.loc["b", "alerted"])
    assert res.loc["a", "indicators"] == "I-01;I-03"
    assert res.loc["b", "indicators"] == "I-01"
    assert res.loc["c", "indicators"] == ""


def test_medium_band(config):
    eng = connect()
    # logit for 0.7 score = ln(0.7/0.3) = 0.8473 ; choose strength so that -4 + 3*s = 0.8473
    s = (math.log(0.7 / 0.3) + 4.0) / 3.0
    t = eng.from_records(pd.DataFrame({"account_id": ["m"], "i03_fired": [True], "i03_strength": [s]}))
    res = eng.fetch(score_table(t, "receiver", REFS, config))
    assert res.loc[0, "score"] == pytest.approx(0.7)
    assert res.loc[0, "risk_level"] == "medium"


def test_explanation_orders_by_contribution_and_keeps_numbers(config):
    row = {"i01_fired": True, "i01_strength": 1.0, "i03_fired": True, "i03_strength": 1.0, "core_rule": True,
           "i03_n": 7}

    def explain(ind_id, r, side):
        return {"I-01": "all 12 payments were under USD 100", "I-03": f"received from {r['i03_n']} unrelated foreign senders within 90 days"}[ind_id]

    assert contributions(row, "receiver", REFS, config) == [("I-03", 3.0), ("I-01", 2.0)]
    text = explain_row(row, "receiver", REFS, config, explain)
    assert text.index("I-03") < text.index("I-01")
    assert "Received from 7 unrelated foreign senders within 90 days (+3.00 log-odds)." in text
    assert "plain published rule holds" in text


def test_unfired_indicators_are_not_explained(config):
    row = {"i01_fired": False, "i01_strength": 0.0, "i03_fired": True, "i03_strength": 0.5, "core_rule": False}
    text = explain_row(row, "receiver", REFS, config, lambda i, r, s: f"sentence {i}")
    assert text == "I-03: Sentence I-03 (+1.50 log-odds)."
