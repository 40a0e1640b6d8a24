"""Entity metrics of `kalasag evaluate`: a hand-made run directory (entities.csv, entity and household
alerts) and truth (labels.csv with person_id and group, operations.csv), with hand-computed metrics."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from kalasag.cli import app
from kalasag.evaluate import EvaluationError, entities_markdown_row, entity_metrics, evaluate, format_evaluation

# account, side, entity, household | person, role, group
RECORDS = [
    ("S1", "sender", "E:s1", "H:s1", "P1", "osec_customer", "G1"),
    ("S2", "sender", "E:s1", "H:s1", "P1", "osec_customer", "G1"),   # same person, linked
    ("S3", "sender", "E:s3", "H:s1", "P2", "ofw_sender", "F9"),      # wrongly in S1's household
    ("R1", "receiver", "E:r1", "H:h1", "P3", "osec_facilitator", "G1"),
    ("R2", "receiver", "E:r1", "H:h1", "P3", "osec_facilitator", "G1"),  # same person, linked
    ("R3", "receiver", "E:r3", "H:h1", "P4", "osec_facilitator", "G1"),  # a relative: own entity, same household
    ("R4", "receiver", "E:r4", "H:r4", "P5", "osec_facilitator", "G2"),
    ("R5", "receiver", "E:r4", "H:r4", "P6", "osec_facilitator", "G2"),  # wrong link: another person
    ("R6", "receiver", "E:r6", "H:r6", "P7", "osec_facilitator", "G3"),
    ("R7", "receiver", "E:r7", "H:r7", "P7", "osec_facilitator", "G3"),  # missed link: G3 split
    ("R8", "receiver", "E:r8", "H:h8", "P8", "osec_facilitator", "G4"),
    ("R9", "receiver", "E:r9", "H:h8", "P9", "osec_facilitator", "G4"),  # G4 whole, never alerted on its side
]
UNLABELLED = ("X1", "receiver", "E:x1", "H:x1")
ENTITY_ALERTS = [("E:r1", "receiver", "R1;R2"), ("E:r4", "receiver", "R4;R5"), ("E:r6", "receiver", "R6"),
                 ("E:s1", "sender", "S1;S2")]
HOUSEHOLD_ALERTS = [("H:h1", "receiver", "R1;R2;R3"),
                    ("H:h8", "sender", "R8;R9")]  # the right ids on the wrong side: does not recover G4
# OSEC payments per account (operations.csv): R2, R7 and R9 were never paid by a customer
PAYMENTS = {"R1": 5, "R2": 0, "R3": 2, "R4": 1, "R5": 1, "R6": 3, "R7": 0, "R8": 1, "R9": 0, "S1": 4, "S2": 4}


def _entities() -> pd.DataFrame:
    rows = [r[:4] for r in RECORDS] + [UNLABELLED]
    ent = pd.DataFrame(rows, columns=["account_id", "side", "entity_id", "household_id"])
    return ent.assign(match_probability="", link_evidence="x", household_evidence="y")


def _labels() -> pd.DataFrame:
    lab = pd.DataFrame([(r[0], r[1], r[5], r[6], r[4]) for r in RECORDS],
                       columns=["account_id", "side", "role", "group", "person_id"])
    extra = pd.DataFrame([("Z", "receiver", "ofw_family", "F1", "P99")], columns=lab.columns)  # not in the run
    return pd.concat([lab, extra], ignore_index=True)


def _operations() -> pd.DataFrame:
    rows = [(r[6], r[0], r[1], r[5], r[4], PAYMENTS[r[0]]) for r in RECORDS if r[0] in PAYMENTS]
    return pd.DataFrame(rows, columns=["group", "account_id", "side", "role", "person_id", "osec_payments"])


def _alerts(rows, key) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[key, "side", "accounts"])


@pytest.fixture
def run(tmp_path):
    """A run directory (scores.parquet + the entity files) and labels.csv/operations.csv beside it."""
    d = tmp_path / "run"
    d.mkdir()
    pd.DataFrame({"account_id": [r[0] for r in RECORDS], "side": [r[1] for r in RECORDS], "score": 0.1,
                  "alerted": False, "core_rule": False}).to_parquet(d / "scores.parquet", index=False)
    _entities().to_csv(d / "entities.csv", index=False)
    _alerts(ENTITY_ALERTS, "entity_id").to_csv(d / "entity_alerts.csv", index=False)
    _alerts(HOUSEHOLD_ALERTS, "household_id").to_csv(d / "household_alerts.csv", index=False)
    world = tmp_path / "world"
    world.mkdir()
    _labels().to_csv(world / "labels.csv", index=False)
    _operations().to_csv(world / "operations.csv", index=False)
    return d, world / "labels.csv"


def test_link_pairs_hand_computed() -> None:
    m = entity_metrics(_entities(), _labels())
    # predicted pairs: S1-S2, R1-R2, R4-R5; true pairs: S1-S2, R1-R2, R6-R7; correct: S1-S2, R1-R2
    assert (m["link_pairs_predicted"], m["link_pairs_true"], m["link_pairs_correct"]) == (3, 3, 2)
    assert m["link_precision"] == pytest.approx(2 / 3) and m["link_recall"] == pytest.approx(2 / 3)
    assert (m["records"], m["records_labelled"]) == (13, 12)          # X1 has no label
    assert m["entities"] == 10 and m["multi_account_entities"] == 3
    assert any("1 entity record(s) have no label" in n for n in m["notes"])


def test_household_pairs_hand_computed() -> None:
    m = entity_metrics(_entities(), _labels())
    # H:s1 {S1,S2,S3}: 3 pairs, 1 same group; H:h1 {R1,R2,R3}: 3/3; H:r4: 1/1; H:h8: 1/1 → 6 of 8
    assert (m["household_pairs"], m["household_pairs_same_group"]) == (8, 6)
    assert m["household_pair_precision"] == pytest.approx(0.75)
    assert m["households_multi"] == 3                                  # H:s1, H:h1, H:h8 (H:r4 is one entity)
    # OSEC with unrelated: S3 (ofw_sender, F9) with S1 and with S2 (customers of G1); nothing else mixes
    assert m["household_pairs_osec_with_other"] == 2


def test_operations_recovered_in_one_alert() -> None:
    m = entity_metrics(_entities(), _labels(), entity_alerts=_alerts(ENTITY_ALERTS, "entity_id"),
                       household_alerts=_alerts(HOUSEHOLD_ALERTS, "household_id"))
    # facilitator operations of 2+ accounts: G1, G2, G3, G4
    assert m["operations_multi_account"] == 4
    assert m["operations_in_one_entity"] == 1                         # G2 (wrongly, through R4-R5)
    assert m["operations_in_one_household"] == 3                      # G1, G2, G4 (G3 is split)
    assert m["operations_in_one_alert"] == 2                          # G1 (household alert), G2 (entity alert)
    assert m["operations_share_in_one_alert"] == pytest.approx(0.5)
    assert (m["operations_missed_split"], m["operations_missed_not_alerted"]) == (1, 1)
    missed = {x["group"]: x for x in m["operations_missed"]}
    assert missed["G3"]["why"] == "split" and missed["G3"]["accounts_alerted"] == 1   # R6 in an alert, R7 not
    assert missed["G4"]["why"] == "not_alerted" and missed["G4"]["accounts_alerted"] == 0  # only on the sender side


def test_paid_accounts_view_drops_accounts_never_paid() -> None:
    m = entity_metrics(_entities(), _labels(), entity_alerts=_alerts(ENTITY_ALERTS, "entity_id"),
                       household_alerts=_alerts(HOUSEHOLD_ALERTS, "household_id"), operations=_operations())
    # paid facilitator accounts: R1 R3 (G1), R4 R5 (G2), R6 (G3 alone), R8 (G4 alone) → G1 and G2 have 2+
    assert m["paid_operations_multi_account"] == 2
    assert m["paid_operations_in_one_alert"] == 2                      # R1;R2;R3 covers {R1, R3}
    assert m["paid_operations_share_in_one_alert"] == 1.0
    # the strict view is unchanged by operations.csv
    assert m["operations_in_one_alert"] == 2


def test_without_alerts_or_truth_columns_the_metrics_are_none() -> None:
    m = entity_metrics(_entities(), _labels())
    assert m["operations_in_one_alert"] is None and m["operations_in_one_household"] == 3
    assert any("no entity or household alerts" in n for n in m["notes"])
    m = entity_metrics(_entities(), _labels().drop(columns=["person_id", "group"]))
    assert m["link_precision"] is None and m["operations_multi_account"] is None
    assert m["household_pair_precision"] is None


def test_evaluate_reads_the_run_directory_and_operations_beside_the_labels(run) -> None:
    d, labels = run
    result = evaluate(d, labels)
    ent = result["entities"]
    assert ent["link_precision"] == pytest.approx(2 / 3)
    assert (ent["operations_in_one_alert"], ent["operations_multi_account"]) == (2, 4)
    assert (ent["paid_operations_in_one_alert"], ent["paid_operations_multi_account"]) == (2, 2)
    assert ent["operations_file"].endswith("operations.csv")
    text = format_evaluation(result)
    assert "link precision" in text and "0.667  (2 of 3 linked pairs)" in text
    assert "whole in one alert" in text and "2 (0.500)" in text
    row = entities_markdown_row(result, "w")
    assert row == "| w | 12 | 0.667 | 0.667 | 0.750 | 4 | 1 | 3 | **2/4** = 0.50 | 1 / 1 | **2/2** = 1.00 |"


def test_evaluate_without_operations_file(run) -> None:
    d, labels = run
    (labels.parent / "operations.csv").unlink()
    ent = evaluate(d, labels)["entities"]
    assert ent["paid_operations_multi_account"] is None and ent["operations_file"] is None
    assert ent["operations_in_one_alert"] == 2


def test_run_without_entities_has_no_entity_block(run) -> None:
    d, labels = run
    (d / "entities.csv").unlink()
    result = evaluate(d, labels)
    assert result["entities"] is None
    assert any("no entities.csv" in n for n in result["notes"])
    assert "entity resolution" not in format_evaluation(result)


def test_entity_file_errors_are_one_line(run) -> None:
    d, labels = run
    pd.DataFrame({"account_id": ["R1"], "side": ["receiver"]}).to_csv(d / "entities.csv", index=False)
    with pytest.raises(EvaluationError) as info:
        evaluate(d, labels)
    assert str(info.value) == f"{d / 'entities.csv'}: missing column(s) entity_id, household_id"
    with pytest.raises(EvaluationError, match="operations file not found"):
        _entities().to_csv(d / "entities.csv", index=False)
        evaluate(d, labels, operations_path=labels.parent / "nope.csv")
    (labels.parent / "operations.csv").write_text("account_id,side,role,osec_payments\nR1,receiver,osec_facilitator,many\n")
    with pytest.raises(EvaluationError, match="osec_payments must be a whole number, found 'many'"):
        evaluate(d, labels)


def test_cli_prints_and_writes_json(run) -> None:
    d, labels = run
    res = CliRunner().invoke(app, ["evaluate", str(d), str(labels)])
    assert res.exit_code == 0, res.output
    assert "multi-account facilitator operations" in res.output and "missed: split / not alerted" in res.output
    res = CliRunner().invoke(app, ["evaluate", str(d), str(labels), "--json"])
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert doc["entities"]["link_pairs_correct"] == 2 and doc["entities"]["operations_missed_split"] == 1


def test_simulator_operations_file_agrees_with_transfers_and_labels(tmp_path) -> None:
    from kalasag.simulate import simulate_world

    s = simulate_world(tmp_path, seed=3, scale=0.02, progress=False)
    ops = pd.read_csv(s.files["operations"], dtype={"account_id": str, "group": str, "person_id": str})
    labels = pd.read_csv(s.files["labels"], dtype=str)
    tr = pd.read_csv(s.files["transfers"], dtype=str)
    # every OSEC record of the labels, and only those, with the same group and person
    osec = labels[labels["role"].isin(["osec_customer", "osec_facilitator"])]
    osec = osec[((osec["role"] == "osec_facilitator") & (osec["side"] == "receiver"))
                | ((osec["role"] == "osec_customer") & (osec["side"] == "sender"))]
    m = ops.merge(osec, on=["account_id", "side"], suffixes=("", "_l"), validate="one_to_one")
    assert len(m) == len(ops) == len(osec) > 0
    assert (m["role"] == m["role_l"]).all() and (m["group"] == m["group_l"]).all()
    assert (m["person_id"] == m["person_id_l"]).all()
    # osec_payments = transfers between a customer and a facilitator, counted from the transfers file
    cust = set(osec.loc[osec["role"] == "osec_customer", "account_id"])
    fac = set(osec.loc[osec["role"] == "osec_facilitator", "account_id"])
    paid = tr[tr["sender_id"].isin(cust) & tr["receiver_id"].isin(fac)]
    got = ops.set_index(["account_id", "side"])["osec_payments"]
    want_r = paid.groupby("receiver_id").size()
    want_s = paid.groupby("sender_id").size()
    for (acc, side), n in got.items():
        want = (want_r if side == "receiver" else want_s).get(acc, 0)
        assert n == want, (acc, side)
    assert got.sum() == 2 * len(paid)
