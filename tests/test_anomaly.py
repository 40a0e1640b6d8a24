"""A-01, the anomaly component: top shares, surprise, firing and strength hand-computed on tiny tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kalasag.engine import connect
from kalasag.model import ConfigError, load_config
from kalasag.scoring import (
    ANOMALY_REF,
    IndicatorRef,
    anomaly_evidence,
    anomaly_params,
    explain_anomaly,
    explainer,
    score_table,
)


def _config(**a01):
    base = {
        "sender_metrics": ["counterparties", "micro"],
        "receiver_metrics": ["counterparties", "micro"],
        "sender_population": "side",
        "receiver_population": "side",
        "min_population": 2,
        "min_transfers": 5,
        "fire_top_share": 0.3,
        "strong_top_share": 0.1,
    }
    base.update(a01)
    return load_config(overrides={"indicators": {"A-01": base}})


# a–e are in the population (at least one watched payment); f has none.
EVIDENCE = pd.DataFrame({
    "account_id": ["a", "b", "c", "d", "e", "f"],
    "i01_n": [10, 2, 10, 4, 20, 0],
    "i01_n_micro": [10, 2, 0, 1, 10, 0],
    "i05_cp_unrelated": [4, 1, 1, 0, 2, 0],
})
PROFILE = pd.DataFrame({
    "account_id": ["a", "b", "c", "d", "e", "f"],
    "a01_span_days": [300.0, 10.0, 60.0, 90.0, 365.0, 0.0],
    "a01_country": ["US", "US", "US", "GB", "GB", "US"],
})


def _run(config, evidence=EVIDENCE, profile=PROFILE, side="sender"):
    eng = connect()
    out = anomaly_evidence(eng.from_records(evidence), eng.from_records(profile), side, config)
    return eng.fetch(out).set_index("account_id").sort_index()


def test_top_shares_surprise_and_firing_hand_computed():
    res = _run(_config())
    # counterparties 4,1,1,0,2 -> share of the 5 with a value at least as high: a 1/5, b 4/5, c 4/5, d 5/5, e 2/5
    assert res.loc[list("abcde"), "a01_counterparties_top"].tolist() == pytest.approx([0.2, 0.8, 0.8, 1.0, 0.4])
    # micro share over max(n, 5): a 10/10, b 2/5, c 0/10, d 1/5, e 10/20 -> 1.0, 0.4, 0.0, 0.2, 0.5
    assert res.loc[list("abcde"), "a01_micro"].tolist() == pytest.approx([1.0, 0.4, 0.0, 0.2, 0.5])
    assert res.loc[list("abcde"), "a01_micro_top"].tolist() == pytest.approx([0.2, 0.6, 1.0, 0.8, 0.4])
    # surprise = mean of -ln(top share)
    want = {
        "a": (-math.log(0.2) - math.log(0.2)) / 2,
        "b": (-math.log(0.8) - math.log(0.6)) / 2,
        "c": (-math.log(0.8) - math.log(1.0)) / 2,
        "d": (-math.log(1.0) - math.log(0.8)) / 2,
        "e": (-math.log(0.4) - math.log(0.4)) / 2,
    }
    for acc, s in want.items():
        assert res.loc[acc, "a01_surprise"] == pytest.approx(s)
        assert res.loc[acc, "a01_geo_top_share"] == pytest.approx(math.exp(-s))
        assert res.loc[acc, "a01_population"] == 5
    # fires at geometric mean top share <= 0.3: only a (0.2); e (0.4) does not
    assert res["a01_fired"].to_dict() == {"a": True, "b": False, "c": False, "d": False, "e": False, "f": False}
    # strength = surprise / -ln(0.1) = ln 5 / ln 10
    assert res.loc["a", "a01_strength"] == pytest.approx(math.log(5) / math.log(10))
    assert res.loc[list("bcdef"), "a01_strength"].tolist() == [0.0] * 5


def test_account_without_watched_payments_is_outside_the_population():
    res = _run(_config())
    f = res.loc["f"]
    assert not f["a01_fired"] and f["a01_strength"] == 0.0
    assert pd.isna(f["a01_surprise"]) and pd.isna(f["a01_population"]) and pd.isna(f["a01_micro"])


def test_rate_uses_the_active_span_of_at_least_one_month_and_strength_caps_at_one():
    res = _run(_config(sender_metrics=["rate"], fire_top_share=0.25, strong_top_share=0.2))
    # payments per 30 days: a 10/(300/30)=1, b 2/max(10/30,1)=2, c 10/2=5, d 4/3, e 20/(365/30)=1.644
    assert res.loc[list("abcde"), "a01_rate"].tolist() == pytest.approx([1.0, 2.0, 5.0, 4 / 3, 20 / (365 / 30)])
    # top shares: c 1/5, b 2/5, e 3/5, d 4/5, a 5/5
    assert res.loc[list("abcde"), "a01_rate_top"].tolist() == pytest.approx([1.0, 0.4, 0.2, 0.8, 0.6])
    # c fires (0.2 <= 0.25); strength ln5/ln5 = 1, capped at 1
    assert res.loc["c", "a01_fired"] and res.loc["c", "a01_strength"] == pytest.approx(1.0)
    assert res["a01_fired"].sum() == 1


def test_population_per_country_pools_small_groups():
    # US: a, b, c (3 accounts); GB: d, e (2). min_population 3 -> US kept, GB pooled as "other"
    res = _run(_config(sender_population="country", min_population=3))
    assert res.loc[list("abcde"), "a01_group"].tolist() == ["US", "US", "US", "other", "other"]
    assert res.loc[list("abcde"), "a01_population"].tolist() == [3, 3, 3, 2, 2]
    # counterparties within US (4,1,1): a 1/3, b 3/3, c 3/3; within other (0,2): d 2/2, e 1/2
    assert res.loc[list("abcde"), "a01_counterparties_top"].tolist() == pytest.approx([1 / 3, 1.0, 1.0, 1.0, 0.5])


def test_night_share_and_irregularity():
    ev = EVIDENCE.assign(i07_n=[10, 1, 8, 4, 0, 0], i07_n_night=[8, 1, 0, 2, 0, 0],
                         i06_cv=[0.5, 7.0, None, 1.0, 2.0, None])
    res = _run(_config(sender_metrics=["night", "irregular"]), evidence=ev)
    # night over max(n, 5): 8/10, 1/5, 0/8, 2/5, 0/5 ; irregularity capped at 5, missing = 0
    assert res.loc[list("abcde"), "a01_night"].tolist() == pytest.approx([0.8, 0.2, 0.0, 0.4, 0.0])
    assert res.loc[list("abcde"), "a01_irregular"].tolist() == pytest.approx([0.5, 5.0, 0.0, 1.0, 2.0])
    assert res.loc[list("abcde"), "a01_night_top"].tolist() == pytest.approx([0.2, 0.6, 1.0, 0.4, 1.0])


def test_receiver_side_uses_its_own_metric_list():
    res = _run(_config(receiver_metrics=["micro"]), side="receiver")
    assert "a01_micro_top" in res.columns and "a01_counterparties_top" not in res.columns
    assert res.loc["a", "a01_surprise"] == pytest.approx(-math.log(0.2))


def test_missing_evidence_column_and_bad_params_are_config_errors():
    with pytest.raises(ConfigError, match="i07_n"):
        _run(_config(sender_metrics=["night"]))
    with pytest.raises(ConfigError, match="unknown metric"):
        anomaly_params(_config(sender_metrics=["height"]))
    with pytest.raises(ConfigError, match="strong_top_share"):
        anomaly_params(_config(fire_top_share=0.05, strong_top_share=0.2))


def test_weight_enters_the_logistic_score_like_an_indicator():
    cfg = _config()
    scoring = cfg.scoring.model_copy(update={"prior_log_odds": {"sender": -6.0, "receiver": -6.0},
                                             "weights": {"A-01": 3.0}})
    cfg = cfg.model_copy(update={"scoring": scoring})
    eng = connect()
    t = anomaly_evidence(eng.from_records(EVIDENCE), eng.from_records(PROFILE), "sender", cfg)
    res = eng.fetch(score_table(t, "sender", [ANOMALY_REF], cfg)).set_index("account_id")
    # a: -6 + 3 * ln5/ln10 ; the others: -6
    assert res.loc["a", "logit"] == pytest.approx(-6.0 + 3.0 * math.log(5) / math.log(10))
    assert res.loc["b", "logit"] == pytest.approx(-6.0)
    assert res.loc["a", "indicators"] == "A-01" and res.loc["b", "indicators"] == ""


def test_explanation_sentence_lists_the_numbers_most_unusual_first():
    row = {"a01_population": 26530, "a01_group": "all", "a01_geo_top_share": 0.0123,
           "a01_rate": 9.04, "a01_rate_top": 0.004, "a01_counterparties": 3.0, "a01_counterparties_top": 0.012,
           "a01_micro": 0.9, "a01_micro_top": 0.11, "a01_night": 0.6, "a01_night_top": 0.07}
    text = explain_anomaly(row, "sender")
    assert text == ("unusual among the 26,530 senders of cross-border payments: 9.0 payments per 30 days (top 0.4%), "
                    "3 unrelated counterparties (top 1.2%), 60% at night (sender time) (top 7.0%), "
                    "90% micro payments (top 11%); geometric mean of the top shares 1.2%")
    assert "in US" in explain_anomaly({**row, "a01_group": "US"}, "sender")
    assert explain_anomaly({"a01_population": None}, "sender") == ""


def test_explainer_speaks_for_a01_and_delegates_the_rest():
    calls = []

    def fallback(i, r, s):
        calls.append(i)
        return f"sentence {i}"

    explain = explainer(fallback)
    assert explain("I-03", {}, "receiver") == "sentence I-03"
    assert explain("A-01", {"a01_population": 5, "a01_geo_top_share": 0.2, "a01_micro": 1.0, "a01_micro_top": 0.2},
                   "receiver").startswith("unusual among the 5 receivers")
    assert calls == ["I-03"]
    assert ANOMALY_REF == IndicatorRef("A-01", "a01", ANOMALY_REF.name)
