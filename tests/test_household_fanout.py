"""I-21's sender form, household fan-out (kalasag.indicators.household), on a hand-made fixture.

Expectations are counted by hand from the rows below: a sender fires when it pays at least
`household_min_accounts` (3) distinct receiving accounts it is unrelated to that share a surname and
a region, or a phone number."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "indicators"))
from kalasag_tx_fixtures import config, table, tx  # noqa: E402

from kalasag.engine import Engine  # noqa: E402
from kalasag.indicators import INDICATORS, Context, compute_evidence, explain  # noqa: E402
from kalasag.scoring import score_table  # noqa: E402
from kalasag.pipeline import indicator_refs  # noqa: E402

FOREIGN = "John Smith"  # unrelated (by surname) to every Filipino name below


@pytest.fixture(scope="module")
def engine():
    return Engine()


def u(s, r, at, usd, rname, region=None, phone=None, sname=FOREIGN, **kw):
    """A watched payment US → PH."""
    return tx(s, r, at, usd, sender_name=sname, receiver_name=rname, receiver_region=region, receiver_phone=phone, **kw)


# The Santos household of Cebu: three accounts (H1-H3); H4 is a Santos in Davao (another household).
SANTOS = [("H1", "Ana Santos", "Cebu"), ("H2", "Ben Santos", "cebu "), ("H3", "Carla V. Santos", "CEBU")]
ROWS = (
    # A: all three Santos/Cebu accounts, four payments: 40 + 60 + 50 + 30 = USD 180 → fires (exactly 3)
    [u("A", "H1", 0, 40, *SANTOS[0][1:]), u("A", "H2", 1, 60, *SANTOS[1][1:]), u("A", "H3", 2, 50, *SANTOS[2][1:]),
     u("A", "H1", 3, 30, *SANTOS[0][1:])]
    # B: two of them (one below the threshold) and the Davao Santos → does not fire (2 in one household)
    + [u("B", "H1", 0, 40, *SANTOS[0][1:]), u("B", "H2", 1, 40, *SANTOS[1][1:]), u("B", "H4", 2, 40, "Dina Santos", "Davao")]
    # K: a Santos himself (an OFW paying relatives): related to every account → does not fire
    + [u("K", h, i, 100, n, r, sname="Jose Santos") for i, (h, n, r) in enumerate(SANTOS)]
    # P: three accounts with different names sharing one phone number, written three ways → fires
    + [u("P", "Q1", 0, 20, "Liza Reyes", phone="+63 917 555 0101"), u("P", "Q2", 1, 25, "Mark Cruz", phone="0917-555-0101"),
       u("P", "Q3", 2, 30, "Nora Lim", phone="9175550101")]
    # S: three Santos accounts without a region, no phone → no household key → does not fire
    + [u("S", f"N{i}", i, 10, f"{n} Santos") for i, n in enumerate(("Eva", "Fe", "Gil"))]
    # D: the same three Santos/Cebu accounts, but domestic payments (not watched) → no evidence row
    + [tx("D", h, i, 10, sender_country="PH", sender_name=FOREIGN, receiver_name=n, receiver_region=r)
       for i, (h, n, r) in enumerate(SANTOS)]
)


def evidence(engine, **over):
    ctx = Context.build(engine, table(engine, ROWS), config(**over))
    return engine.fetch(INDICATORS["I-21"].evidence(ctx, "sender")).set_index("account_id")


def test_fires_at_exactly_the_threshold_via_surname_and_region(engine):
    ev = evidence(engine)
    a = ev.loc["A"]
    assert bool(a.i21_fired) and a.i21_strength == 1.0
    assert (a.i21_household_accounts, a.i21_household_kind, a.i21_household_key) == (3, "name", "santos|CEBU")
    assert a.i21_household_paid_usd == pytest.approx(180.0) and a.i21_household_payments == 4
    assert a.i21_households == 1


def test_not_below_the_threshold_nor_for_related_payers_nor_without_a_key(engine):
    ev = evidence(engine)
    b = ev.loc["B"]
    assert not b.i21_fired and b.i21_strength == 0.0
    assert (b.i21_household_accounts, b.i21_household_key) == (2, "santos|CEBU")  # Davao is another household
    assert "K" not in ev.index  # no unrelated payment at all
    s = ev.loc["S"]
    assert not s.i21_fired and s.i21_household_accounts == 0
    assert "D" not in ev.index  # domestic payments are not watched


def test_household_via_a_shared_phone_number(engine):
    ev = evidence(engine)
    p = ev.loc["P"]
    assert bool(p.i21_fired) and (p.i21_household_accounts, p.i21_household_kind) == (3, "phone")
    assert p.i21_household_key == "9175550101" and p.i21_household_paid_usd == pytest.approx(75.0)
    assert not evidence(engine, I_21={"household_use_phone": False}).loc["P", "i21_fired"]


def test_thresholds_come_from_config(engine):
    ev = evidence(engine, I_21={"household_min_accounts": 4})
    assert not ev["i21_fired"].any()
    ev = evidence(engine, I_21={"household_min_accounts": 2})
    assert bool(ev.loc["B", "i21_fired"]) and ev.loc["B", "i21_households"] == 1
    assert not evidence(engine, I_21={"household_use_name": False}).loc["A", "i21_fired"]
    off = evidence(engine, I_21={"household_use_name": False, "household_use_phone": False})
    assert not off["i21_fired"].any() and set(off.index) == {"A", "B", "P", "S"}
    # A pays 3 unrelated accounts: a payroll-like payer above max_sender_beneficiaries is left out
    assert "A" not in evidence(engine, I_21={"max_sender_beneficiaries": 2}).index


def test_explanation_names_the_household_the_accounts_and_the_amount(engine):
    ev = evidence(engine)
    text = explain("I-21", ev.loc["A"].to_dict(), "sender")
    assert text == "paid 3 unrelated receiving accounts of one household (surname SANTOS, region CEBU): USD 180 in 4 payments"
    text = explain("I-21", ev.loc["P"].to_dict(), "sender")
    assert "paid 3 unrelated receiving accounts of one household (shared phone number 9175550101): USD 75 in 3 payments" == text


def test_sender_form_enters_the_score_with_its_own_weight(engine):
    ev = compute_evidence(engine, table(engine, ROWS), config())
    refs = indicator_refs()
    cfg = config()
    base = engine.fetch(score_table(ev.sender, "sender", refs, cfg).select("account_id", "logit")).set_index("account_id")
    w = cfg.scoring.model_copy(update={"weights": {**cfg.scoring.weights, "I-21.sender": 2.5}})
    with_w = engine.fetch(score_table(ev.sender, "sender", refs, cfg.model_copy(update={"scoring": w}))
                          .select("account_id", "logit")).set_index("account_id")
    assert with_w.loc["A", "logit"] - base.loc["A", "logit"] == pytest.approx(2.5 - cfg.scoring.weights.get("I-21.sender", 0.0))
    assert with_w.loc["B", "logit"] == pytest.approx(base.loc["B", "logit"])
