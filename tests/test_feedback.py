"""`kalasag feedback` (learned weights from dispositions), `scan --model`, evidence.parquet and capacity thresholds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kalasag.cli import app
from kalasag.engine import connect
from kalasag.model import ConfigError, load_config
from kalasag.model.config import ScoringConfig
from kalasag.pipeline import indicator_refs
from kalasag.scoring import (
    IndicatorRef,
    LearnedModel,
    apply_model,
    explain_row,
    load_model,
    save_model,
    score_table,
    weight_for,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fbworld")
    res = runner.invoke(app, ["simulate", "--out", str(d), "--seed", "5", "--scale", "0.03", "--quiet"])
    assert res.exit_code == 0, res.output
    return d


@pytest.fixture(scope="module")
def run_dir(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fbrun")
    res = runner.invoke(app, ["scan", str(world / "transfers.csv.gz"), "--out", str(out), "--no-report", "--quiet"])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def dispositions(run_dir, tmp_path_factory) -> Path:
    """Hand-made review: per side the 6 best-scored accounts are true, the next 24 false; one unknown id."""
    scores = pd.read_parquet(run_dir / "scores.parquet")
    rows = []
    for side, g in scores.groupby("side"):
        g = g.sort_values(["score", "account_id"], ascending=[False, True])
        rows += [(a, side, "true_positive", "confirmed by analyst") for a in g.account_id[:6]]
        rows += [(a, side, "false_positive", "") for a in g.account_id[6:30]]
    rows.append(("no-such-account", "sender", "false_positive", "typo"))
    path = tmp_path_factory.mktemp("fbdisp") / "dispositions.csv"
    pd.DataFrame(rows, columns=["account_id", "side", "disposition", "note"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(run_dir, dispositions, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fbmodel")
    res = runner.invoke(app, ["feedback", str(dispositions), "--run", str(run_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 dispositioned account(s) are not in" in res.output
    return out


@pytest.fixture(scope="module")
def model_run(world, model_dir, tmp_path_factory) -> Path:
    """A second scan with the learned model and a capacity threshold on the sender side."""
    d = tmp_path_factory.mktemp("fbrun2")
    cfg = d / "capacity.toml"
    cfg.write_text("[scoring]\nalerts_per_10k = { sender = 150.0 }\n")
    out = d / "run"
    res = runner.invoke(
        app,
        ["scan", str(world / "transfers.csv.gz"), "--out", str(out), "--no-report", "--quiet", "--model", str(model_dir), "--config", str(cfg)],
    )
    assert res.exit_code == 0, res.output
    return out


# ---- evidence.parquet ------------------------------------------------------------------------
def test_evidence_parquet_has_every_scored_account_and_matches_alert_evidence(run_dir):
    ev = pd.read_parquet(run_dir / "evidence.parquet")
    scores = pd.read_parquet(run_dir / "scores.parquet")
    assert len(ev) == len(scores)
    assert set(zip(ev.account_id, ev.side)) == set(zip(scores.account_id, scores.side))
    strength = [c for c in ev.columns if c.endswith("_strength")]
    assert {"i01_strength", "i03_strength", "n04_strength"} <= set(strength)
    vals = ev[strength].to_numpy(dtype=float)
    assert np.nanmin(vals) >= 0.0 and np.nanmax(vals) <= 1.0
    al = pd.read_parquet(run_dir / "alert_evidence.parquet")
    merged = al.merge(ev, on=["account_id", "side"], suffixes=("_a", ""))
    assert len(merged) == len(al) > 0
    for c in ("i01_strength", "n04_strength"):
        assert np.allclose(merged[c + "_a"].fillna(0), merged[c].fillna(0))


# ---- feedback / model.json -------------------------------------------------------------------
def test_model_json_contents_and_round_trip(model_dir, run_dir, dispositions, tmp_path):
    raw = json.loads((model_dir / "model.json").read_text())
    assert raw["format"] == "kalasag-logistic-v1" and raw["class_weight"] == "balanced"
    assert raw["unknown_accounts"] == 1 and raw["config_sha256"] == load_config().digest()
    m = load_model(model_dir)
    for side in ("sender", "receiver"):
        sm = m.sides[side]
        assert (sm.n_true_positive, sm.n_false_positive) == (6, 24)
        assert sm.cv.folds == 5  # min(5, minority count 6)
        for v in (sm.cv.precision, sm.cv.recall, sm.cv.f1, sm.cv.average_precision):
            assert 0.0 <= v <= 1.0
    assert "core_rule" in m.sides["sender"].weights
    save_model(m, tmp_path / "copy")
    assert load_model(tmp_path / "copy") == m
    assert load_model(tmp_path / "copy" / "model.json") == m


def test_learned_weights_equal_a_direct_logistic_fit(model_dir, run_dir, dispositions):
    from sklearn.linear_model import LogisticRegression

    m = load_model(model_dir)
    ev = pd.read_parquet(run_dir / "evidence.parquet")
    d = pd.read_csv(dispositions)
    part = ev.merge(d, on=["account_id", "side"])
    part = part[part.side == "sender"]
    refs = {r.id: r.slug for r in indicator_refs()}
    feats = list(m.sides["sender"].weights)
    cols = [f"{refs[f]}_strength" if f != "core_rule" else "core_rule" for f in feats]
    x = part[cols].astype(float).fillna(0).to_numpy()
    y = (part.disposition == "true_positive").astype(int).to_numpy()
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(x, y)
    assert m.sides["sender"].intercept == pytest.approx(clf.intercept_[0], rel=1e-6)
    assert [m.sides["sender"].weights[f] for f in feats] == pytest.approx(list(clf.coef_[0]), rel=1e-6)


def test_scan_with_model_scores_as_the_model_says(model_run, model_dir, run_dir):
    m = load_model(model_dir)
    run = json.loads((model_run / "run.json").read_text())
    assert run["model"]["sides"] == ["receiver", "sender"]
    ev = pd.read_parquet(model_run / "evidence.parquet")
    sc = pd.read_parquet(model_run / "scores.parquet")[["account_id", "side", "score"]].merge(ev, on=["account_id", "side"])
    slug = {r.id: r.slug for r in indicator_refs()}
    for side in ("sender", "receiver"):
        sm = m.sides[side]
        row = sc[sc.side == side].sort_values("score", ascending=False).iloc[0]
        logit = sm.intercept
        for f, w in sm.weights.items():
            v = float(row["core_rule"]) if f == "core_rule" else row[f"{slug[f]}_strength"]
            logit += w * (0.0 if pd.isna(v) else float(v))
        assert row["score"] == pytest.approx(1 / (1 + math.exp(-logit)), rel=1e-9)
    before = pd.read_parquet(run_dir / "scores.parquet").set_index(["account_id", "side"]).score
    after = pd.read_parquet(model_run / "scores.parquet").set_index(["account_id", "side"]).score
    assert not np.allclose(before.sort_index(), after.sort_index())


def test_capacity_threshold_recorded_in_run_json(model_run):
    run = json.loads((model_run / "run.json").read_text())
    snd = run["thresholds"]["alert_by_side"]["sender"]
    scores = pd.read_parquet(model_run / "scores.parquet")
    s = scores[scores.side == "sender"].score.sort_values(ascending=False).to_numpy()
    k = math.ceil(len(s) * 150.0 / 10_000)  # 798 senders → ceil(11.97) = 12
    assert snd["mode"] == "capacity" and snd["k"] == k and snd["n_accounts"] == len(s)
    assert snd["threshold"] == pytest.approx(s[k - 1])
    alerted = scores[(scores.side == "sender") & scores.alerted]
    assert len(alerted) == int((s >= s[k - 1]).sum())
    assert run["thresholds"]["alert_by_side"]["receiver"] == {"mode": "fixed", "threshold": 0.3}


# ---- capacity on a tiny hand-made table ------------------------------------------------------
REFS = [IndicatorRef("I-01", "i01", "Low value")]


def test_capacity_threshold_hand_computed_with_ties():
    scoring = ScoringConfig(
        prior_log_odds={"sender": -2.0, "receiver": -2.0}, alert_threshold=0.99, risk_high=0.9, risk_medium=0.5,
        max_explained=8, weights={"I-01": 4.0}, alerts_per_10k={"sender": 2500.0},
    )
    config = load_config().model_copy(update={"scoring": scoring})
    eng = connect()
    strengths = [1.0, 0.9, 0.5, 0.5, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0]  # 10 accounts
    t = eng.from_records(pd.DataFrame({
        "account_id": [f"a{i}" for i in range(10)], "i01_fired": [s > 0 for s in strengths], "i01_strength": strengths,
    }))
    res = eng.fetch(score_table(t, "sender", REFS, config)).set_index("account_id")
    # k = ceil(10 × 2500 / 10,000) = ceil(2.5) = 3; the 3rd highest score is a tie (a2, a3): both alerted
    assert sorted(res.index[res.alerted]) == ["a0", "a1", "a2", "a3"]
    # the receiver side has no capacity: the fixed threshold 0.99 alerts nobody (best logit 2.0 → 0.88)
    assert not eng.fetch(score_table(t, "receiver", REFS, config)).alerted.any()


def test_capacity_config_is_validated():
    with pytest.raises(ConfigError, match="alerts_per_10k"):
        load_config(overrides={"scoring": {"alerts_per_10k": {"customer": 5.0}}})
    with pytest.raises(ConfigError, match="alerts_per_10k"):
        load_config(overrides={"scoring": {"alerts_per_10k": {"sender": 0.0}}})


# ---- negative learned weights in explanations ------------------------------------------------
def test_apply_model_allows_negative_weights_and_explains_their_sign():
    config = load_config()
    model = LearnedModel.model_validate({
        "trained_at": "2026-11-26T00:00:00+00:00", "kalasag_version": "0.1.0", "config_sha256": "x", "run_dir": "r",
        "sides": {"receiver": {"intercept": -1.5, "weights": {"I-01": 2.0, "I-08": -0.75}, "n_true_positive": 5,
                               "n_false_positive": 9, "cv": {"folds": 5, "precision": 1, "recall": 1, "f1": 1, "average_precision": 1}}},
    })
    refs = indicator_refs()
    learned = apply_model(config, model, refs)
    assert learned.scoring.prior_log_odds == {"sender": config.scoring.prior_log_odds["sender"], "receiver": -1.5}
    assert weight_for(learned, "I-08", "receiver") == -0.75 and weight_for(learned, "I-03", "receiver") == 0.0
    # the sender side keeps the configured weights
    # (the configured default, whatever bench/calibrate_weights.py last fitted; it is not 0)
    assert weight_for(learned, "N-04", "sender") == weight_for(config, "N-04", "sender") == config.scoring.weights["N-04.sender"] > 0
    row = {"i01_fired": True, "i01_strength": 1.0, "i08_fired": True, "i08_strength": 0.8, "core_rule": False}
    text = explain_row(row, "receiver", refs, learned, lambda i, r, s: f"sentence for {i}")
    assert "I-01: Sentence for I-01 (+2.00 log-odds)." in text
    assert "I-08: Sentence for I-08 (-0.60 log-odds)." in text
    assert text.index("I-01") < text.index("I-08")
    with pytest.raises(ConfigError, match="non-negative"):  # a plain config still refuses negatives
        load_config(overrides={"scoring": {"weights": {"I-08": -0.75}}})


# ---- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, needle",
    [
        ("account_id,side\nA,sender\n", "line 1: missing column(s) disposition"),
        ("account_id,side,disposition\nA,sender,true_positive\nB,sender,maybe\n", "line 3: disposition 'maybe'"),
        ("account_id,side,disposition\nA,both,true_positive\n", "line 2: side 'both'"),
        ("account_id,side,disposition\n,sender,true_positive\n", "line 2: empty account_id"),
        ("account_id,side,disposition\nA,sender,true_positive\nA,sender,false_positive\n", "line 3: sender A already dispositioned on line 2"),
        ("account_id,side,disposition,note\nA,sender,true_positive,ok,extra\n", "line 2: more fields"),
        ("account_id,side,disposition\n", "no dispositions"),
    ],
)
def test_bad_dispositions_exit_2_naming_the_line(body, needle, run_dir, tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(body)
    res = runner.invoke(app, ["feedback", str(p), "--run", str(run_dir), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2, res.output
    assert needle in " ".join(res.output.split())
    assert "Traceback" not in res.output
    assert not (tmp_path / "m" / "model.json").exists()


def test_too_few_dispositions_and_missing_run_are_refused(run_dir, tmp_path):
    scores = pd.read_parquet(run_dir / "scores.parquet")
    snd = scores[scores.side == "sender"].account_id.tolist()
    d = pd.DataFrame({"account_id": snd[:10], "side": "sender", "disposition": ["true_positive"] * 4 + ["false_positive"] * 6})
    p = tmp_path / "d.csv"
    d.to_csv(p, index=False)
    res = runner.invoke(app, ["feedback", str(p), "--run", str(run_dir), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "sender: 4 true_positive and 6 false_positive (need at least 5 of each)" in out
    res = runner.invoke(app, ["feedback", str(p), "--run", str(tmp_path), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "no evidence.parquet" in res.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.json").write_text('{"format": "kalasag-logistic-v1"}')
    res = runner.invoke(app, ["scan", "x.csv", "--out", str(tmp_path / "o"), "--model", str(bad)])
    assert res.exit_code == 2 and "invalid model" in res.output
