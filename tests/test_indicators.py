"""Every indicator on a hand-made fixture with hand-computed metrics, fired flag and strength,
including the edges (exactly at a threshold, just below, window boundary, related vs unrelated)."""

from __future__ import annotations

import statistics
import sys
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "indicators"))
from kalasag_tx_fixtures import config, table, tx  # noqa: E402

from kalasag.engine import Engine  # noqa: E402
from kalasag.indicators import INDICATORS, Context, explain  # noqa: E402

FOREIGN = "John Smith"  # unrelated to every Filipino name below


@pytest.fixture(scope="module")
def engine():
    return Engine()


def run(engine, rows, ind_id, side, **over):
    ctx = Context.build(engine, table(engine, rows), config(**over))
    df = engine.fetch(INDICATORS[ind_id].evidence(ctx, side))
    return df.set_index("account_id")


def u(s, r, at, usd=50.0, rname="Maria Santos", **kw):
    """An unrelated foreign payment (US sender named John Smith → Filipino receiver)."""
    kw.setdefault("sender_name", FOREIGN)
    return tx(s, r, at, usd, receiver_name=rname, **kw)


def sentence(ind_id, row, side):
    return explain(ind_id, row.to_dict(), side)


# ---- I-01 --------------------------------------------------------------------------------------
def test_i01_low_value_sender_and_receiver(engine):
    rows = [u("A", "R", 0, 50), u("A", "R", 1, 200), u("A", "R", 2, 300),  # 200 exactly is micro
            u("B", "R", 0, 50), u("B", "R", 1, 250),                        # 1 micro: below min_transfers
            u("C", "R", 0, 40), u("C", "R", 1, 60), u("C", "R", 2, 300), u("C", "R", 3, 400),  # share 0.5 exactly
            tx("D", "R", 0, 10, sender_country="PH")]                        # domestic: not watched
    ev = run(engine, rows, "I-01", "sender")
    a = ev.loc["A"]
    assert (a.i01_n, a.i01_n_micro) == (3, 2) and bool(a.i01_fired)
    # strength = mean(micro share 2/3, core share 1/3) / 0.8
    assert a.i01_strength == pytest.approx((2 / 3 + 1 / 3) / 2 / 0.8)
    assert not ev.loc["B"].i01_fired and ev.loc["B"].i01_strength == 0.0
    c = ev.loc["C"]
    assert bool(c.i01_fired) and c.i01_share == pytest.approx(0.5) and c.i01_strength == pytest.approx(0.5 / 0.8)
    assert "D" not in ev.index
    s = sentence("I-01", a, "sender")
    assert "2 of 3 payments" in s and "67%" in s and "USD 200" in s
    r = run(engine, rows, "I-01", "receiver").loc["R"]
    assert (r.i01_n, r.i01_n_micro) == (9, 5) and bool(r.i01_fired)  # D is domestic
    assert "5 of 9 payments received from abroad" in sentence("I-01", r, "receiver")


# ---- I-02 --------------------------------------------------------------------------------------
def test_i02_frequency_windows(engine):
    rows = [u("A", "R1", d) for d in (0, 10, 20, 29.99)]            # 4 within 30 days
    rows += [u("B", "R2", d) for d in (0, 10, 20, 30)]              # day 0 and 30: exactly 30 days apart
    rows += [u("C", "R3", 0), u("C", "R4", 6.9)]                    # 2 in 7 days
    rows += [u("E", "R5", 0), u("E", "R5", 7)]                      # exactly 7 days apart
    rows += [u("F", "R6", d / 3) for d in range(30)]                # 30 in 10 days: strong
    ev = run(engine, rows, "I-02", "sender")
    assert ev.loc["A", "i02_max_long"] == 4 and bool(ev.loc["A", "i02_fired"])
    assert ev.loc["A", "i02_strength"] == pytest.approx(0.4)
    assert ev.loc["B", "i02_max_long"] == 3 and ev.loc["B", "i02_max_short"] == 1 and not ev.loc["B", "i02_fired"]
    assert ev.loc["C", "i02_max_short"] == 2 and bool(ev.loc["C", "i02_fired"])
    assert ev.loc["C", "i02_strength"] == pytest.approx(0.2)
    assert ev.loc["E", "i02_max_short"] == 1 and not ev.loc["E", "i02_fired"]
    assert ev.loc["F", "i02_strength"] == 1.0
    assert "sent 4 payments within 30 days" in sentence("I-02", ev.loc["A"], "sender")
    # receiver form: the most frequent single sender; four different senders once each do not fire
    rows = [u("S", "R", d) for d in (0, 5, 10, 15)] + [u(f"X{i}", "Q", i) for i in range(4)]
    ev = run(engine, rows, "I-02", "receiver")
    assert ev.loc["R", "i02_max_long"] == 4 and bool(ev.loc["R", "i02_fired"])
    assert ev.loc["Q", "i02_max_long"] == 1 and not ev.loc["Q", "i02_fired"]
    assert "received 4 payments from a single foreign sender within 30 days and 2 within 7 days" in sentence("I-02", ev.loc["R"], "receiver")


# ---- I-03 --------------------------------------------------------------------------------------
def test_i03_fan_in_window_relation_countries(engine):
    rows = [u("A", "R", 0), u("B", "R", 50, sender_country="GB"), u("C", "R", 89),
            tx("K", "R", 10, sender_name="Jose Santos", receiver_name="Maria Santos"),  # related: ignored
            u("A", "Q", 0), u("B", "Q", 50), u("C", "Q", 90)]                            # C exactly 90 days after A
    ev = run(engine, rows, "I-03", "receiver")
    r = ev.loc["R"]
    assert r.i03_max_senders == 3 and r.i03_n_countries == 2 and bool(r.i03_fired)
    assert r.i03_strength == pytest.approx(3 / 5 + 0.2)
    q = ev.loc["Q"]
    assert q.i03_max_senders == 2 and not q.i03_fired and q.i03_strength == 0.0
    s = sentence("I-03", r, "receiver")
    assert "received from 3 unrelated foreign senders within 90 days (threshold 3)" in s and "2 countries" in s
    snd = run(engine, rows, "I-03", "sender")
    assert bool(snd.loc["A", "i03_fired"]) and snd.loc["A", "i03_n_fanin_receivers"] == 1
    assert snd.loc["A", "i03_strength"] == pytest.approx(0.8)
    assert "K" not in snd.index  # K's only payment is to a relative
    assert sentence("I-03", snd.loc["A"], "sender") == (
        "paid 1 beneficiary who receives from many unrelated foreign senders (up to 3 within 90 days; threshold 3)")
    # five senders: high
    ev = run(engine, [u(f"S{i}", "R", i) for i in range(5)], "I-03", "receiver")
    assert ev.loc["R", "i03_strength"] == 1.0


# ---- I-04 --------------------------------------------------------------------------------------
def test_i04_fan_out_surname_families(engine):
    rows = [u("A", "R1", 0, rname="Ana Santos"), u("A", "R2", 10, rname="Ben Reyes"), u("A", "R3", 20, rname="Carla Cruz")]
    rows += [u("B", "R1", 0, rname="Ana Santos"), u("B", "R4", 10, rname="Lito Santos"), u("B", "R2", 20, rname="Ben Reyes")]
    rows += [u("C", "R1", 0, rname="Ana Santos"), u("C", "R2", 10, rname="Ben Reyes"), u("C", "R3", 90, rname="Carla Cruz")]
    ev = run(engine, rows, "I-04", "sender")
    assert ev.loc["A", "i04_max_beneficiaries"] == 3 and bool(ev.loc["A", "i04_fired"])
    assert ev.loc["A", "i04_strength"] == pytest.approx(0.6)
    # B: two Santos accounts count as one family
    assert ev.loc["B", "i04_max_beneficiaries"] == 2 and ev.loc["B", "i04_n_beneficiaries"] == 3
    assert not ev.loc["B", "i04_fired"]
    assert ev.loc["C", "i04_max_beneficiaries"] == 2 and not ev.loc["C", "i04_fired"]  # window boundary
    assert "paid 3 unrelated beneficiaries with different surnames within 90 days (threshold 3)" in sentence(
        "I-04", ev.loc["A"], "sender")
    rec = run(engine, rows, "I-04", "receiver")
    assert bool(rec.loc["R3", "i04_fired"]) and rec.loc["R3", "i04_n_fanout_senders"] == 1
    assert bool(rec.loc["R1", "i04_fired"]) and not rec.loc["R4", "i04_fired"]
    assert sentence("I-04", rec.loc["R3"], "receiver") == (
        "paid by 1 foreign sender who pays many unrelated beneficiaries (up to 3 within 90 days; threshold 3)")


# ---- I-05 --------------------------------------------------------------------------------------
def test_i05_unrelated_share_and_unknown_names(engine):
    rows = [u("A", "R1", 0, rname="Maria Santos"), tx("A", "R2", 1, sender_name="John Smith", receiver_name="Ana Smith"),
            tx("B", "R3", 0, sender_name="Jose Cruz Santos", receiver_name="Maria Santos Reyes"),   # middle name
            tx("C", "R4", 0), tx("C", "R4", 1)]                                                    # no names
    ev = run(engine, rows, "I-05", "sender")
    a = ev.loc["A"]
    assert (a.i05_n, a.i05_n_unrelated, a.i05_cp_unrelated, a.i05_cp_related) == (2, 1, 1, 1)
    assert bool(a.i05_fired) and a.i05_strength == pytest.approx(0.5)
    assert not ev.loc["B", "i05_fired"] and ev.loc["B", "i05_n_unrelated"] == 0
    assert not ev.loc["C", "i05_fired"] and ev.loc["C", "i05_cp_unknown"] == 1
    s = sentence("I-05", a, "sender")
    assert "1 of 2 cross-border payments (50%)" in s and "1 of 2 beneficiaries" in s
    ev = run(engine, rows, "I-05", "sender", I_05={"unknown_counts_as_unrelated": True})
    assert bool(ev.loc["C", "i05_fired"]) and ev.loc["C", "i05_strength"] == 1.0
    ev = run(engine, rows, "I-05", "sender", I_05={"use_middle_name": False})
    assert bool(ev.loc["B", "i05_fired"])
    rec = run(engine, rows, "I-05", "receiver")
    assert bool(rec.loc["R1", "i05_fired"]) and not rec.loc["R2", "i05_fired"]


# ---- I-06 --------------------------------------------------------------------------------------
def test_i06_irregular_rhythm(engine):
    monthly = [u("M", "R", d) for d in (0, 31, 59, 90, 120, 151)]
    bursty = [u("B", "R", d) for d in (0, 1, 10, 11, 20, 21, 30, 31)]
    lumpy = [u("L", "R", d) for d in (0, 1, 2, 60)]
    ev = run(engine, monthly + bursty + lumpy, "I-06", "sender")
    assert not ev.loc["M", "i06_fired"] and ev.loc["M", "i06_max_bursts"] == 0
    b = ev.loc["B"]
    cv_b = statistics.stdev([1, 9, 1, 9, 1, 9, 1]) / statistics.mean([1, 9, 1, 9, 1, 9, 1])
    assert b.i06_max_bursts == 4 and bool(b.i06_fired) and b.i06_cv == pytest.approx(cv_b)
    assert b.i06_strength == pytest.approx(max(cv_b / 2.0, 4 / 8))
    cv_l = statistics.stdev([1, 1, 58]) / 20.0
    lrow = ev.loc["L"]
    assert bool(lrow.i06_fired) and lrow.i06_cv == pytest.approx(cv_l) and lrow.i06_strength == pytest.approx(cv_l / 2)
    assert f"coefficient of variation {cv_l:.1f}" in sentence("I-06", lrow, "sender")


# ---- I-07 --------------------------------------------------------------------------------------
def test_i07_night_in_sender_local_time_with_dst(engine):
    jan = lambda h: datetime(2025, 1, 15, h, 0)  # noqa: E731  New York = UTC−5 in January
    jul = lambda h: datetime(2025, 7, 15, h, 0)  # noqa: E731  New York = UTC−4 in July (DST)
    rows = [u("A", "R", jan(4)), u("A", "R", jan(4)), u("A", "R", jan(3)),    # 23:00, 23:00, 22:00 local
            u("A", "R", jan(17)), u("A", "R", jan(11))]                        # 12:00, 06:00 local (not night)
    rows += [u("B", "R", jan(2))] * 5                                          # 21:00 local: not night
    rows += [u("C", "R", jul(2))] * 5                                          # 22:00 EDT: night
    rows += [u("D", "R", jan(4))] * 4                                          # below min_transfers
    rows += [u("E", "R", jan(4), sender_country="XX")] * 5                    # unknown zone: excluded
    rows += [u("G", "R", jan(15), sender_country="AU")] * 5                   # Sydney UTC+11: 02:00 local
    ev = run(engine, rows, "I-07", "sender")
    a = ev.loc["A"]
    assert (a.i07_n, a.i07_n_night) == (5, 3) and bool(a.i07_fired) and a.i07_strength == pytest.approx(0.6 / 0.8)
    assert ev.loc["B", "i07_n_night"] == 0 and not ev.loc["B", "i07_fired"]
    assert ev.loc["C", "i07_n_night"] == 5 and ev.loc["C", "i07_strength"] == 1.0
    assert ev.loc["D", "i07_n_night"] == 4 and not ev.loc["D", "i07_fired"]
    assert "E" not in ev.index
    assert bool(ev.loc["G", "i07_fired"])
    assert sentence("I-07", a, "sender").startswith("60% of the 5 payments were sent between 22:00 and 06:00 sender local time")
    r = run(engine, rows, "I-07", "receiver").loc["R"]
    assert (r.i07_n, r.i07_n_night) == (24, 3 + 5 + 4 + 5)  # E (unknown zone) excluded


# ---- I-08 --------------------------------------------------------------------------------------
def test_i08_round_amounts_in_sending_currency(engine):
    rows = [u("A", "R", i, usd=1.0, amount=a, currency="GBP") for i, a in enumerate([50, 100, 45])]
    rows += [u("B", "R", i, usd=1.0, amount=a) for i, a in enumerate([50, 100, 45, 20.5])]  # 3/4 < 0.8
    rows += [u("C", "R", i, usd=1.0, amount=a) for i, a in enumerate([52, 55.0, 60])]
    ev = run(engine, rows, "I-08", "sender")
    assert ev.loc["A", "i08_n_round"] == 3 and ev.loc["A", "i08_strength"] == 1.0
    assert ev.loc["B", "i08_n_round"] == 3 and not ev.loc["B", "i08_fired"]
    assert ev.loc["C", "i08_n_round"] == 2 and not ev.loc["C", "i08_fired"]
    assert "3 of 3 payments (100%) were round multiples of 5" in sentence("I-08", ev.loc["A"], "sender")


# ---- I-09 --------------------------------------------------------------------------------------
def test_i09_narrative_keywords(engine):
    rows = [u("A", "R", 0, reference="For SCHOOL  fees po"), u("A", "R", 1, reference="Pang-gatas ni baby"),
            u("A", "R", 2, reference="invoice 42")]
    rows += [u("B", "R", 0, reference="download"), u("B", "R", 1, reference="reload@")]  # no whole-word "load"
    rows += [u("C", "R", 0, reference="follow @juan.cruz99"), u("C", "R", 1, reference="baon")]
    rows += [tx("D", "Q", i, sender_name="Jose Reyes", receiver_name="Ana Reyes", reference="gift") for i in range(3)]
    ev = run(engine, rows, "I-09", "sender")
    a = ev.loc["A"]
    assert a.i09_n_keyword == 3 and bool(a.i09_fired) and a.i09_strength == 1.0
    assert a.i09_example == "school fees"  # max of {'school fees', 'pang-gatas', 'invoice'}
    assert ev.loc["B", "i09_n_keyword"] == 0 and not ev.loc["B", "i09_fired"]
    assert ev.loc["C", "i09_n_keyword"] == 2 and ev.loc["C", "i09_example"] == "baon"
    assert ev.loc["D", "i09_n_keyword"] == 0  # related pair: not counted
    assert "3 of 3 payments (100%)" in sentence("I-09", a, "sender") and "'school fees'" in sentence("I-09", a, "sender")
    ev = run(engine, rows, "I-09", "sender", I_09={"only_unrelated": False})
    assert ev.loc["D", "i09_n_keyword"] == 3


# ---- I-10 --------------------------------------------------------------------------------------
def test_i10_escalation(engine):
    rows = [u("A", "R", d) for d in (0, 30, 100, 110, 120, 130, 140)]
    rows += [u("B", "R", d) for d in (0, 30, 100, 110, 120, 130)]          # exactly 2× → fires at 0.5
    rows += [u("C", "R", d, 300) for d in (0, 30, 100, 110, 120, 130, 140)]  # average above micro band
    ev = run(engine, rows, "I-10", "sender")
    a = ev.loc["A"]
    assert (a.i10_count_recent, a.i10_count_previous) == (5, 2) and a.i10_growth == pytest.approx(2.5)
    assert bool(a.i10_fired) and a.i10_strength == pytest.approx(2.5 / 4)
    assert ev.loc["B", "i10_growth"] == pytest.approx(2.0) and ev.loc["B", "i10_strength"] == pytest.approx(0.5)
    assert "C" not in ev.index
    assert "escalated 2.5-fold: 5 payments (USD 250) in 90 days against 2 (USD 100)" in sentence("I-10", a, "sender")


# ---- I-11 --------------------------------------------------------------------------------------
def test_i11_long_running(engine):
    rows = [u("A", "R", d) for d in (0, 73, 146, 219, 292, 365)]
    rows += [u("B", "R", d) for d in (0, 73, 146, 219, 292, 364)]
    rows += [u("C", "R", d * 10, 200) for d in range(26)]                  # 26 × 200 = 5,200 in 250 days
    ev = run(engine, rows, "I-11", "sender")
    assert ev.loc["A", "i11_span_days"] == pytest.approx(365) and bool(ev.loc["A", "i11_fired"])
    assert ev.loc["A", "i11_strength"] == pytest.approx(0.5)
    assert not ev.loc["B", "i11_fired"]
    c = ev.loc["C"]
    assert c.i11_max_usd_window == pytest.approx(5200) and bool(c.i11_fired)
    assert c.i11_strength == pytest.approx(max(250 / 730, 0.52))
    assert "6 micro payments to unrelated beneficiaries over 365 days (USD 300" in sentence("I-11", ev.loc["A"], "sender")


# ---- I-12 and I-18 -------------------------------------------------------------------------------
def test_i12_channel_and_i18_crypto(engine):
    rows = [u("A", "R", 0, channel="mto"), u("A", "R", 1, channel="bank"), u("A", "R", 2, channel="ewallet"),
            u("A", "R", 3, channel=None)]
    rows += [u("B", "R", 0, channel="crypto"), u("B", "R", 1, channel="bank")]
    rows += [u("C", "R", 0, channel="crypto"), u("C", "R", 1, channel="bank"), u("C", "R", 2, channel="card")]
    ev = run(engine, rows, "I-12", "sender")
    a = ev.loc["A"]
    assert (a.i12_n, a.i12_n_channel) == (3, 2) and bool(a.i12_fired) and a.i12_strength == pytest.approx(2 / 3)
    assert not ev.loc["B", "i12_fired"]
    assert "2 of 3 payments (67%) went through mto/ewallet channels" in sentence("I-12", a, "sender")
    cr = run(engine, rows, "I-18", "sender")
    assert bool(cr.loc["B", "i18_fired"]) and cr.loc["B", "i18_strength"] == pytest.approx(0.5)
    assert cr.loc["C", "i18_n_channel"] == 1 and not cr.loc["C", "i18_fired"]
    assert "1 of 2 payments (50%) used crypto" in sentence("I-18", cr.loc["B"], "sender")
    rec = run(engine, rows, "I-18", "receiver").loc["R"]
    assert (rec.i18_n, rec.i18_n_channel) == (8, 2) and not rec.i18_fired


# ---- I-14 --------------------------------------------------------------------------------------
def test_i14_country_weight(engine):
    rows = [u("A", "R", 0), u("B", "R", 0, sender_country="SA"), u("C", "R", 0, sender_country="XX"),
            u("D", "R", 0, sender_country="PH")]
    ev = run(engine, rows, "I-14", "sender")
    assert ev.loc["A", "i14_strength"] == 1.0 and bool(ev.loc["A", "i14_fired"])
    assert ev.loc["B", "i14_weight"] == pytest.approx(0.3) and bool(ev.loc["B", "i14_fired"])  # exactly min_weight
    assert ev.loc["C", "i14_weight"] == 0.0 and not ev.loc["C", "i14_fired"]
    assert "D" not in ev.index  # domestic
    assert "sends from US, a country with risk weight 1.00" in sentence("I-14", ev.loc["A"], "sender")


# ---- I-19 --------------------------------------------------------------------------------------
def test_i19_foreign_micro_inflows(engine):
    rows = [u("A", "R", 0), u("B", "R", 5), u("A", "R", 10), u("B", "R", 29)]      # 4 in 30 days from 2
    rows += [u("A", "Q", d) for d in (0, 5, 10, 15)]                               # one sender only
    rows += [u("A", "P", 0), u("B", "P", 10), u("A", "P", 20), u("B", "P", 30)]    # 0 and 30: 3 in window
    rows += [u("A", "M", d, 300) for d in (0, 1)] + [u("B", "M", d, 300) for d in (2, 3)]  # not micro
    # Z: 4 inflows from one sender, later 2 senders: both maxima reached, never in the same window
    rows += [u("A", "Z", d) for d in (0, 1, 2, 3)] + [u("B", "Z", 100), u("C", "Z", 101)]
    ev = run(engine, rows, "I-19", "receiver")
    r = ev.loc["R"]
    assert (r.i19_max_inflows, r.i19_max_senders, r.i19_qualified_inflows) == (4, 2, 4)
    assert bool(r.i19_fired) and r.i19_strength == pytest.approx(0.4)
    assert ev.loc["Q", "i19_max_senders"] == 1 and ev.loc["Q", "i19_qualified_inflows"] == 0 and not ev.loc["Q", "i19_fired"]
    assert ev.loc["P", "i19_max_inflows"] == 3 and not ev.loc["P", "i19_fired"]
    assert "M" not in ev.index
    z = ev.loc["Z"]
    assert (z.i19_max_inflows, z.i19_max_senders, z.i19_qualified_inflows) == (4, 2, 2) and not z.i19_fired
    assert "received 4 foreign micro payments from at least 2 unrelated senders within 30 days (threshold 4)" in sentence(
        "I-19", r, "receiver")


# ---- I-21 --------------------------------------------------------------------------------------
def test_i21_several_accounts_and_channels(engine):
    rows = [u("S", "R1", 0, rname="Ma. Cristina Dela Cruz"), u("S", "R2", 1, rname="DELA CRUZ, MARIA C."),
            u("T", "R5", 0, rname="Maria Dela Cruz"),                               # same name, no common sender
            u("P", "R3", 0, rname="Ana Reyes", receiver_phone="+63 917 123 4567"),
            u("P", "R4", 1, rname="Liza Bautista", receiver_phone="0917-123-4567"),
            u("Z", "R6", 0, rname="Ben Garcia", channel="mto"), u("Z", "R6", 1, rname="Ben Garcia", channel="ewallet")]
    # a family's accounts: R7 and R8 (surname Rivera) share two unrelated senders; R9 shares only one
    rows += [u(s, r, 2, rname=n) for s in ("U1", "U2") for r, n in (("R7", "Rosa Rivera"), ("R8", "Mary Ann V. Rivera"))]
    rows += [u("U1", "R9", 3, rname="Joy Rivera")]
    ev = run(engine, rows, "I-21", "receiver")
    assert ev.loc["R1", "i21_linked_accounts"] == 1 and bool(ev.loc["R1", "i21_fired"])
    assert ev.loc["R1", "i21_strength"] == pytest.approx(1 / 3)
    assert bool(ev.loc["R2", "i21_fired"])
    assert ev.loc["R5", "i21_linked_accounts"] == 0 and not ev.loc["R5", "i21_fired"]
    assert ev.loc["R3", "i21_linked_accounts"] == 1 and bool(ev.loc["R4", "i21_fired"])
    assert (ev.loc["R7", "i21_family_accounts"], ev.loc["R8", "i21_family_accounts"]) == (1, 1)
    assert ev.loc["R9", "i21_family_accounts"] == 0 and not ev.loc["R9", "i21_fired"]
    assert bool(ev.loc["R7", "i21_fired"]) and ev.loc["R7", "i21_strength"] == pytest.approx(0.5)
    assert ev.loc["R1", "i21_family_accounts"] == 0  # same surname, but a single common sender
    assert "its unrelated foreign senders also pay 1 other account of people with the same surname" in sentence(
        "I-21", ev.loc["R7"], "receiver")
    # the multi-channel form is off by default (min_multichannel_senders = 0) but measured
    assert ev.loc["R6", "i21_multichannel_senders"] == 1 and not ev.loc["R6", "i21_fired"]
    assert "its senders also pay 1 other account under the same name or phone number" in sentence("I-21", ev.loc["R1"], "receiver")
    ev2 = run(engine, rows, "I-21", "receiver", I_21={"max_sender_beneficiaries": 1})  # S pays 2 accounts
    assert ev2.loc["R1", "i21_linked_accounts"] == 0 and not ev2.loc["R1", "i21_fired"]
    ev = run(engine, rows, "I-21", "receiver", I_21={"use_phone": False, "min_multichannel_senders": 1})
    assert not ev.loc["R3", "i21_fired"]
    assert bool(ev.loc["R6", "i21_fired"]) and ev.loc["R6", "i21_strength"] == pytest.approx(0.4)
    assert "1 sender paid it through 2 different channels" in sentence("I-21", ev.loc["R6"], "receiver")


# ---- I-22 --------------------------------------------------------------------------------------
def test_i22_area_anomaly(engine):
    rows = []
    for m in range(1, 7):  # Jan–Jun 2025: one unrelated micro inflow per month in each region
        rows.append(u(f"C{m}", "RC1", datetime(2025, m, 10), receiver_region="Cebu"))
        rows.append(u(f"D{m}", "RD1", datetime(2025, m, 10), receiver_region="Davao"))
    for m in range(7, 10):  # Jul–Sep: Cebu jumps to 4 a month, Davao stays at 1
        for k in range(4):
            rows.append(u(f"X{m}{k}", f"RC{k + 2}", datetime(2025, m, 5 + k), receiver_region="Cebu"))
        rows.append(u(f"D{m}", "RD1", datetime(2025, m, 10), receiver_region="Davao"))
    ev = run(engine, rows, "I-22", "receiver")
    c = ev.loc["RC2"]
    assert c.i22_recent_per_month == pytest.approx(4.0) and c.i22_baseline_per_month == pytest.approx(1.0)
    assert c.i22_growth == pytest.approx(4.0) and bool(c.i22_fired) and c.i22_strength == 1.0
    assert bool(ev.loc["RC1", "i22_fired"])
    assert ev.loc["RD1", "i22_growth"] == pytest.approx(1.0) and not ev.loc["RD1", "i22_fired"]
    assert "its region Cebu received 4.0 foreign micro payments" in sentence("I-22", c, "receiver")
    ev = run(engine, rows, "I-22", "receiver", I_22={"min_recent_inflows": 13})  # Cebu has 12
    assert not ev.loc["RC2", "i22_fired"]


# ---- registry and config -----------------------------------------------------------------------
def test_registry_metadata_and_config():
    cfg = config()
    assert set(INDICATORS) == {"I-01", "I-02", "I-03", "I-04", "I-05", "I-06", "I-07", "I-08", "I-09", "I-10",
                               "I-11", "I-12", "I-14", "I-18", "I-19", "I-21", "I-22", "I-23",
                               "N-01", "N-02", "N-03", "N-04"}  # N-xx and I-23: the network room (docs/network.md)
    for ind_id, ind in INDICATORS.items():
        assert ind.slug == ind_id[0].lower() + ind_id[2:] and ind.description and "http" in ind.source
        assert set(ind.sides) <= {"sender", "receiver"}
        ind.params(cfg)  # every indicator has a valid [indicators."I-xx"] table


def test_bad_indicator_config_is_one_line_error():
    from kalasag.model import ConfigError

    with pytest.raises(ConfigError, match=r'indicators."I-02".long_min'):
        INDICATORS["I-02"].params(config(I_02={"long_min": "many"}))
    with pytest.raises(ConfigError, match="Extra inputs"):
        INDICATORS["I-02"].params(config(I_02={"typo_key": 1}))
    with pytest.raises(ConfigError, match=r'indicators."I-03".window_days'):
        INDICATORS["I-03"].params(config(I_03={"window_days": 0}))


def test_docs_cover_every_indicator_and_parameter_default():
    import json
    import re

    docs = Path(__file__).parents[1] / "docs"
    doc = (docs / "indicators.md").read_text() + "\n" + (docs / "network.md").read_text()
    cfg = config()
    for ind_id, ind in INDICATORS.items():
        section = doc.split(f"## {ind_id} ")[1].split("\n## ")[0]
        for key, value in cfg.indicator_params(ind_id).items():
            if isinstance(value, (list, dict)):
                assert f"`{key}`" in section, (ind_id, key)
                continue
            shown = json.dumps(value) if isinstance(value, (bool, str)) else str(value)
            assert re.search(rf"\| `{key}` \| `{re.escape(shown)}` \|", section), (ind_id, key, shown)
        for url in ind.source.split(" ; "):
            assert url.strip() in section, (ind_id, url)
    for ind_id in ("I-13", "I-15", "I-16", "I-17", "I-20"):
        assert f"| {ind_id} |" in doc
