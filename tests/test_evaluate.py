"""evaluate(): hand-computed precision / recall / F1 / AP on tiny score tables, and its errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kalasag.evaluate import EvaluationError, evaluate, format_evaluation, to_markdown

# sender side: A, C, D positives scored; F a positive that was never scored; E scored, unlabelled.
# receiver side: R1 positive and R2 negative tie at 0.7.
SCORES = [
    # account_id, side, score, alerted, core_rule
    ("A", "sender", 0.9, True, True),
    ("B", "sender", 0.8, True, False),
    ("C", "sender", 0.6, True, True),
    ("D", "sender", 0.3, False, False),
    ("E", "sender", 0.1, False, False),
    ("R1", "receiver", 0.7, True, False),
    ("R2", "receiver", 0.7, True, True),
    ("R3", "receiver", 0.2, False, False),
]
LABELS = [
    # account_id, side, role, group
    ("A", "sender", "osec_customer", "g1"),
    ("B", "sender", "ofw_family", "h1"),
    ("C", "sender", "osec_customer", "g2"),
    ("D", "sender", "osec_customer", "g3"),
    ("F", "sender", "osec_customer", "g4"),
    ("R1", "receiver", "osec_facilitator", "g1"),
    ("R2", "receiver", "ofw_family", "h1"),
    ("R3", "receiver", "ofw_family", "h2"),
    ("Z", "receiver", "ofw_family", "h3"),  # labelled negative never scored: ignored
]


def write_run(tmp_path, scores=SCORES, labels=LABELS, *, labels_name="labels.csv"):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    pd.DataFrame(scores, columns=["account_id", "side", "score", "alerted", "core_rule"]).assign(
        risk_level="low", indicators=""
    ).to_parquet(run / "scores.parquet", index=False)
    lab = pd.DataFrame(labels, columns=["account_id", "side", "role", "group"])
    path = tmp_path / labels_name
    if labels_name.endswith(".parquet"):
        lab.to_parquet(path, index=False)
    else:
        lab.to_csv(path, index=False)
    return run, path


def test_sender_side_hand_computed(tmp_path):
    run, labels = write_run(tmp_path)
    s = evaluate(run, labels)["sides"]["sender"]
    assert (s["n_accounts"], s["n_positive"], s["n_alerts"]) == (5, 4, 3)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 2)  # D not alerted, F never scored
    assert s["n_unlabelled"] == 1 and s["n_positive_unscored"] == 1
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(4 / 7)
    # ranking A+ B- C+ D+ E-, 4 positives (F never retrieved): (1 + 2/3 + 3/4) / 4
    assert s["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 4)
    assert s["k"] == 4
    assert s["precision_at_k"] == pytest.approx(0.75)  # top 4 = A B C D
    assert s["recall_at_k"] == pytest.approx(0.75)
    r = s["rule"]
    assert (r["n_alerts"], r["tp"], r["fp"], r["fn"]) == (2, 2, 0, 2)
    assert (r["precision"], r["recall"]) == pytest.approx((1.0, 0.5))
    assert r["f1"] == pytest.approx(2 / 3)


def test_receiver_side_ties_are_one_threshold(tmp_path):
    run, labels = write_run(tmp_path)
    s = evaluate(run, labels)["sides"]["receiver"]
    assert (s["n_accounts"], s["n_positive"], s["n_alerts"], s["tp"], s["fp"], s["fn"]) == (3, 1, 2, 1, 1, 0)
    assert (s["precision"], s["recall"], s["f1"]) == pytest.approx((0.5, 1.0, 2 / 3))
    # R1+ and R2- share 0.7: one threshold with precision 1/2 reaching recall 1
    assert s["average_precision"] == pytest.approx(0.5)
    assert s["precision_at_k"] == pytest.approx(0.5)  # 1 slot, tie of R1+ and R2-: half a hit expected
    assert s["rule"] == {"n_alerts": 1, "tp": 0, "fp": 1, "fn": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                         "groups_detected": 0}
    assert s["n_unlabelled"] == 0


def test_overall_pools_both_sides(tmp_path):
    run, labels = write_run(tmp_path)
    result = evaluate(run, labels)
    o = result["overall"]
    assert (o["n_accounts"], o["n_positive"], o["n_alerts"], o["tp"], o["fp"], o["fn"]) == (8, 5, 5, 3, 2, 2)
    assert (o["precision"], o["recall"], o["f1"]) == pytest.approx((0.6, 0.6, 0.6))
    # thresholds .9 (P 1), .7 (P 2/4), .6 (P 3/5), .3 (P 4/6) each add recall 1/5
    assert o["average_precision"] == pytest.approx((1 + 0.5 + 0.6 + 4 / 6) / 5)
    assert o["precision_at_k"] == pytest.approx(3 / 5)  # A B R1 R2 C (the tie lies inside the top 5)
    assert (o["rule"]["precision"], o["rule"]["recall"], o["rule"]["f1"]) == pytest.approx((2 / 3, 0.4, 0.5))
    assert any("1 scored account(s) have no label" in n for n in result["notes"])
    assert any("1 labelled positive(s) were not scored" in n for n in result["notes"])


def test_operations_detected(tmp_path):
    run, labels = write_run(tmp_path)
    result = evaluate(run, labels)
    s, r, o = result["sides"]["sender"], result["sides"]["receiver"], result["overall"]
    # sender positives: A g1, C g2 (alerted), D g3 (not), F g4 (not scored)
    assert (s["n_positive_groups"], s["groups_detected"], s["group_recall"]) == (4, 2, 0.5)
    assert (r["n_positive_groups"], r["groups_detected"]) == (1, 1)
    assert (o["n_positive_groups"], o["groups_detected"]) == (4, 2)  # g1 counted once over both sides
    assert (s["rule"]["groups_detected"], r["rule"]["groups_detected"], o["rule"]["groups_detected"]) == (2, 0, 2)


def test_precision_at_k_with_a_tie_across_the_cut(tmp_path):
    # 2 positives (k = 2): P1 0.9 alone on top, then P2+, N1-, N2- tied at 0.5 for the one free slot
    scores = [("P1", "sender", 0.9, True, False), ("P2", "sender", 0.5, True, False),
              ("N1", "sender", 0.5, True, False), ("N2", "sender", 0.5, False, False)]
    labels = [("P1", "sender", "osec_customer", "g"), ("P2", "sender", "osec_customer", "g")]
    run, path = write_run(tmp_path, scores, labels)
    s = evaluate(run, path)["sides"]["sender"]
    assert s["precision_at_k"] == pytest.approx((1 + 1 / 3) / 2)
    assert s["recall_at_k"] == pytest.approx((1 + 1 / 3) / 2)
    # AP: threshold .9 → P 1, R 1/2; threshold .5 → P 2/4, R 1
    assert s["average_precision"] == pytest.approx(0.5 * 1 + 0.5 * 0.5)


def test_zero_alerts_give_zero_precision(tmp_path):
    scores = [(a, s, sc, False, False) for a, s, sc, _, _ in SCORES]
    run, labels = write_run(tmp_path, scores)
    result = evaluate(run, labels)
    for block in (*result["sides"].values(), result["overall"]):
        assert (block["n_alerts"], block["tp"], block["fp"]) == (0, 0, 0)
        assert (block["precision"], block["recall"], block["f1"]) == (0.0, 0.0, 0.0)
        assert block["rule"]["precision"] == 0.0
    assert result["overall"]["fn"] == 5
    # the ranking is still there: AP does not depend on the alert threshold
    assert result["sides"]["sender"]["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 4)
    assert "nothing was alerted: precision is 0 by convention" in result["notes"]


def test_no_positive_labels(tmp_path):
    labels = [(a, s, "ofw_family", "h") for a, s, _, _ in LABELS]
    run, path = write_run(tmp_path, SCORES, labels)
    o = evaluate(run, path)["overall"]
    assert (o["n_positive"], o["tp"], o["fp"], o["fn"]) == (0, 0, 5, 0)
    assert (o["precision"], o["recall"], o["f1"], o["average_precision"]) == (0.0, 0.0, 0.0, 0.0)
    assert o["k"] == 0 and o["precision_at_k"] == 0.0


def test_all_unlabelled_scores_are_negatives(tmp_path):
    run, path = write_run(tmp_path, SCORES, [("X", "sender", "osec_customer", "g")])
    s = evaluate(run, path)["sides"]["sender"]
    assert s["n_unlabelled"] == 5 and s["n_positive"] == 1 and s["n_positive_unscored"] == 1
    assert (s["tp"], s["fp"], s["fn"], s["recall"], s["average_precision"]) == (0, 3, 1, 0.0, 0.0)


def test_same_account_on_both_sides_is_judged_per_side(tmp_path):
    scores = [("A", "sender", 0.9, True, False), ("A", "receiver", 0.9, True, False)]
    run, path = write_run(tmp_path, scores, [("A", "receiver", "osec_facilitator", "g")])
    result = evaluate(run, path)
    assert result["sides"]["receiver"]["tp"] == 1
    assert result["sides"]["sender"]["fp"] == 1 and result["sides"]["sender"]["n_unlabelled"] == 1


def test_parquet_labels_and_scores_file_accepted(tmp_path):
    run, path = write_run(tmp_path, labels_name="labels.parquet")
    result = evaluate(run / "scores.parquet", path)
    assert result["overall"]["tp"] == 3


def test_numeric_account_ids_match_csv_labels(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame(
        {"account_id": [101, 102], "side": ["sender", "sender"], "score": [0.9, 0.2],
         "alerted": [True, False], "core_rule": [False, False]}
    ).to_parquet(run / "scores.parquet")
    (tmp_path / "l.csv").write_text("account_id,side,role,group\n101,sender,osec_customer,g\n")
    assert evaluate(run, tmp_path / "l.csv")["sides"]["sender"]["tp"] == 1


# ---- errors: one line, naming the file and the problem -----------------------------------------


def _err(run, labels) -> str:
    with pytest.raises(EvaluationError) as info:
        evaluate(run, labels)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_missing_run_dir_and_scores(tmp_path):
    run, labels = write_run(tmp_path)
    assert "run directory not found" in _err(tmp_path / "nope", labels)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no scores.parquet" in _err(empty, labels)
    assert "not a run directory" in _err(labels, labels)


def test_missing_labels_file(tmp_path):
    run, _ = write_run(tmp_path)
    msg = _err(run, tmp_path / "missing.csv")
    assert "missing.csv" in msg and "labels file not found" in msg


def test_missing_columns(tmp_path):
    run, labels = write_run(tmp_path)
    pd.DataFrame({"account_id": ["A"], "side": ["sender"], "score": [0.5]}).to_parquet(run / "scores.parquet")
    assert _err(run, labels).endswith("missing column(s) alerted, core_rule")
    run, _ = write_run(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("account_id,side,label\nA,sender,x\n")
    assert _err(run, bad) == f"{bad}: missing column(s) role"


def test_unknown_sides(tmp_path):
    run, _ = write_run(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("account_id,side,role\nA,sender,osec_customer\nB,payer,osec_customer\n")
    assert _err(run, bad) == f"{bad} line 3: unknown side 'payer' (expected sender or receiver)"
    run, labels = write_run(tmp_path, [("A", "both", 0.5, False, False)])
    assert "unknown side 'both'" in _err(run, labels)


def test_bad_scores(tmp_path):
    run, labels = write_run(tmp_path, [("A", "sender", 1.5, True, False)])
    assert "score must be a number between 0 and 1, found 1.5 (account 'A', sender)" in _err(run, labels)
    run, labels = write_run(tmp_path, [("A", "sender", 0.5, True, False), ("A", "sender", 0.4, False, False)])
    assert "account 'A' is scored twice on the sender side" in _err(run, labels)
    (run / "scores.parquet").write_text("not parquet at all")
    assert "cannot read as Parquet" in _err(run, labels)


def test_empty_labels_file(tmp_path):
    run, _ = write_run(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert _err(run, empty) == f"{empty}: labels file is empty"


# ---- rendering ---------------------------------------------------------------------------------


def test_format_evaluation_table(tmp_path):
    run, labels = write_run(tmp_path)
    text = format_evaluation(evaluate(run, labels))
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "sender", "receiver", "overall"]
    row = next(line for line in lines if line.startswith("precision "))
    assert row.split()[-3:] == ["0.667", "0.500", "0.600"]
    ap = next(line for line in lines if line.startswith("average precision"))
    assert ap.split()[-3:] == ["0.604", "0.500", "0.553"]
    assert "rule: F1" in text and "note: 1 labelled positive(s) were not scored" in text


def test_to_markdown_rows(tmp_path):
    run, labels = write_run(tmp_path)
    md = to_markdown(evaluate(run, labels), "Held-out seed 7")
    lines = md.splitlines()
    assert lines[0] == "### Held-out seed 7"
    assert lines[2].startswith("| side | accounts | positives | alerts | precision | recall | F1 | AP |")
    assert lines[4] == "| sender | 5 | 4 | 3 | 0.667 | 0.500 | 0.571 | 0.604 | 2 | 1.000 | 0.500 | 0.667 |"
    assert lines[5] == "| receiver | 3 | 1 | 2 | 0.500 | 1.000 | 0.667 | 0.500 | 1 | 0.000 | 0.000 | 0.000 |"
    assert lines[6].startswith("| overall | 8 | 5 | 5 | 0.600 | 0.600 | 0.600 | 0.553 | 3 | 0.667 | 0.400 | 0.500 |")
    assert not math.isnan(evaluate(run, labels)["overall"]["average_precision"])


def test_labels_without_group_column(tmp_path):
    run, _ = write_run(tmp_path)
    path = tmp_path / "nogroup.csv"
    path.write_text("account_id,side,role\nA,sender,osec_customer\nB,sender,ofw_family\n")
    s = evaluate(run, path)["sides"]["sender"]
    assert (s["tp"], s["fp"], s["n_positive"], s["n_positive_groups"], s["group_recall"]) == (1, 2, 1, 0, 0.0)


def test_scores_as_a_directory_of_parts(tmp_path):
    run, labels = write_run(tmp_path)
    parts = run / "scores.parquet"
    frame = pd.read_parquet(parts)
    parts.unlink()
    parts.mkdir()
    frame.iloc[:4].to_parquet(parts / "part-0.parquet", index=False)
    frame.iloc[4:].to_parquet(parts / "part-1.parquet", index=False)
    assert evaluate(run, labels)["overall"]["tp"] == 3


def test_label_rows_are_cleaned(tmp_path):
    run, _ = write_run(tmp_path)
    path = tmp_path / "l.csv"
    path.write_text("account_id,side,role,group\n A ,Sender,osec_customer,g\nA,sender,ofw_family,h\n")
    s = evaluate(run, path)["sides"]["sender"]
    assert (s["n_positive"], s["tp"]) == (1, 1)  # any positive row makes the account positive
    path.write_text("account_id,side,role\n,sender,osec_customer\n")
    assert _err(run, path) == f"{path} line 2: empty account_id"
