"""compute_evidence on one fixture: one row per account and side, no NULL flags, the core rule."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "indicators"))
from kalasag_tx_fixtures import config, table, tx  # noqa: E402

from kalasag.engine import Engine  # noqa: E402
from kalasag.indicators import INDICATORS, compute_evidence, for_side  # noqa: E402


@pytest.fixture(scope="module")
def evidence():
    eng = Engine()
    rows = []
    # customer C: micro payments, unrelated, 5 per 30 days to facilitator F (core rule: I-01, I-05, I-02)
    rows += [tx("C", "F", d, 40, sender_name="John Smith", receiver_name="Liza Bautista") for d in (0, 5, 10, 15, 20)]
    # three more unrelated customers pay F once each (F: fan-in 4 senders)
    rows += [tx(f"K{i}", "F", 30 + i, 25, sender_name=f"Peter Miller{i}", receiver_name="Liza Bautista",
                sender_country="GB") for i in range(3)]
    # OFW O: monthly 300 USD to his wife (same surname) — nothing in the core rule
    rows += [tx("O", "W", 30 * m, 300, sender_name="Jose Reyes", receiver_name="Ana Reyes", sender_country="SA",
                channel="bank") for m in range(4)]
    # relative H: micro and frequent but related (I-05 fails → no core rule)
    rows += [tx("H", "N", d, 30, sender_name="Mark Bautista", receiver_name="Rosa Bautista") for d in (0, 3, 6, 9)]
    # P: 2 micro payments to F 40 days apart: I-01, I-05 and the sender form of I-03, but no I-02/I-04
    rows += [tx("P", "F", d, 30, sender_name="Hans Weber", receiver_name="Liza Bautista", sender_country="DE")
             for d in (45, 85)]
    # G: 4 micro payments in 30 days from one unrelated sender S2: I-02 (receiver form) but no fan-in
    rows += [tx("S2", "G", d, 35, sender_name="Tom Brown", receiver_name="Joy Mendoza") for d in (0, 7, 14, 21)]
    # domestic transfer: F pays a local account (F also appears on the sender side)
    rows.append(tx("F", "L", 40, 20, sender_country="PH", sender_name="Liza Bautista", receiver_name="Aling Nena"))
    ev = compute_evidence(eng, table(eng, rows), config())
    return {"sender": eng.fetch(ev.sender).set_index("account_id"),
            "receiver": eng.fetch(ev.receiver).set_index("account_id")}


def test_one_row_per_account_per_side(evidence):
    assert sorted(evidence["sender"].index) == ["C", "F", "H", "K0", "K1", "K2", "O", "P", "S2"]
    assert sorted(evidence["receiver"].index) == ["F", "G", "L", "N", "W"]


def test_base_columns(evidence):
    s = evidence["sender"]
    assert s.loc["C", "n_transactions"] == 5 and s.loc["C", "total_usd"] == pytest.approx(200.0)
    assert s.loc["C", "counterparties"] == 1
    assert s.loc["C", "first_seen"] == pd.Timestamp("2025-01-06 12:00") and s.loc["C", "last_seen"] == pd.Timestamp("2025-01-26 12:00")
    r = evidence["receiver"]
    assert r.loc["F", "n_transactions"] == 10 and r.loc["F", "counterparties"] == 5
    assert r.loc["F", "total_usd"] == pytest.approx(5 * 40 + 3 * 25 + 2 * 30)


@pytest.mark.parametrize("side", ["sender", "receiver"])
def test_every_indicator_column_present_and_never_null(evidence, side):
    df = evidence[side]
    for ind in for_side(side):
        for c in (ind.col("fired"), ind.col("strength")):
            assert c in df.columns, c
            assert df[c].notna().all(), c
        assert df[ind.col("strength")].between(0, 1).all()
        assert (df.loc[~df[ind.col("fired")].astype(bool), ind.col("strength")] == 0).all()
    assert df["core_rule"].notna().all()
    other = {i.slug for i in INDICATORS.values() if side not in i.sides}
    assert not any(c.split("_")[0] in other for c in df.columns)


def test_core_rule(evidence):
    s, r = evidence["sender"], evidence["receiver"]
    # senders: I-01 ∧ I-05 ∧ (I-02 ∨ I-04)
    # C: 5 micro, unrelated, 5 in 30 days → core
    assert s.loc["C", ["i01_fired", "i05_fired", "i02_fired"]].all() and bool(s.loc["C", "core_rule"])
    # P: I-01, I-05 and pays a fan-in beneficiary (sender form of I-03) — not part of the plain rule
    assert s.loc["P", ["i01_fired", "i05_fired", "i03_fired"]].all()
    assert not s.loc["P", ["i02_fired", "i04_fired"]].any() and not s.loc["P", "core_rule"]
    # K0: a single payment: I-01 needs 2 micro payments
    assert not s.loc["K0", "i01_fired"] and not s.loc["K0", "core_rule"]
    assert not s.loc["O", "core_rule"] and not s.loc["O", "i01_fired"]
    # H: micro and frequent, but related to the receiver
    assert bool(s.loc["H", "i02_fired"]) and not s.loc["H", "i05_fired"] and not s.loc["H", "core_rule"]
    assert bool(s.loc["S2", "core_rule"])
    # receivers: I-01 ∧ I-05 ∧ I-03 — F: 5 unrelated senders within 90 days
    assert r.loc["F", ["i01_fired", "i05_fired", "i03_fired"]].all() and bool(r.loc["F", "core_rule"])
    assert r.loc["F", "i03_max_senders"] == 5
    # G: frequent payments from one sender (receiver form of I-02) but no fan-in → no core rule
    assert r.loc["G", ["i01_fired", "i05_fired", "i02_fired"]].all() and not r.loc["G", "i03_fired"]
    assert not r.loc["G", "core_rule"]
    assert not r.loc["N", "core_rule"] and not r.loc["W", "core_rule"] and not r.loc["L", "core_rule"]
    # F as a sender only has a domestic payment: no watched evidence, flags false
    assert not s.loc["F", [c for c in s.columns if c.endswith("_fired")]].any()


def test_missing_canonical_column_is_one_line_error():
    from kalasag.indicators import IndicatorInputError

    eng = Engine()
    t = table(eng, [tx("A", "B", 0)]).drop("reference", "receiver_region")
    with pytest.raises(IndicatorInputError, match="lacks canonical column.*receiver_region, reference"):
        compute_evidence(eng, t, config())


def test_no_watched_payments_and_no_names():
    """All-domestic input without names: every account present, every flag false, no crash."""
    eng = Engine()
    rows = [tx("A", "B", d, 20, sender_country="PH") for d in range(5)] + [tx("C", "D", 1, 30, sender_country="GB",
                                                                              receiver_country="FR")]
    ev = compute_evidence(eng, table(eng, rows), config())
    s, r = eng.fetch(ev.sender), eng.fetch(ev.receiver)
    assert sorted(s.account_id) == ["A", "C"] and sorted(r.account_id) == ["B", "D"]
    for df in (s, r):
        fired = [c for c in df.columns if c.endswith("_fired")]
        assert not df[fired].any().any() and not df["core_rule"].any()
        assert (df[[c for c in df.columns if c.endswith("_strength")]] == 0).all().all()
