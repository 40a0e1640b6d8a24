"""Name normalization and the family-name relation rule (I-05), on hand-made Filipino name pairs."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalasag.engine import Engine
from kalasag.indicators import names as N


@pytest.fixture(scope="module")
def engine():
    return Engine()


def normalize(engine, values):
    t = engine.from_records(pd.DataFrame({"n": pd.Series(values, dtype="string")}))
    p = N.name_parts(t, "n", "x")
    df = engine.fetch(p).set_index("n")
    return {v: (None if pd.isna(df.loc[v, "x_norm"]) else df.loc[v, "x_norm"]) for v in values if v in df.index}


def relate(engine, pairs, use_middle=True):
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    t = engine.from_records(pd.DataFrame({"i": range(len(pairs)), "a": pd.Series(a, dtype="string"),
                                          "b": pd.Series(b, dtype="string")}))
    na, nb = N.normalize_name(t.a), N.normalize_name(t.b)
    rel = N.related(N.surname(na), N.middle_name(na), N.surname(nb), N.middle_name(nb), use_middle)
    df = engine.fetch(t.select("i", r=rel)).sort_values("i")
    return [None if pd.isna(v) else bool(v) for v in df["r"]]


NORMALIZED = {
    "Juan D. Santos": "juan d santos",
    "  JUAN   d.  SANTOS ": "juan d santos",
    "DELA CRUZ, MARIA C.": "maria c delacruz",
    "Ma. Cristina de la Cruz": "maria cristina delacruz",
    "Maria Cristina Delacruz": "maria cristina delacruz",
    "Ma Cristina Dela Cruz": "maria cristina delacruz",
    "Ana de los Santos": "ana delossantos",
    "Ana Delos Santos": "ana delossantos",
    "Luz Reyes Del Rosario": "luz reyes delrosario",
    "Pedro San Juan III": "pedro sanjuan",
    "Jose Sta. Maria": "jose santamaria",
    "Jose Santa Maria": "jose santamaria",
    "José Peñaflor Jr.": "jose penaflor",
    "O'Brien, Seán": "sean obrien",
    "van der Berg, Piet": "piet vanderberg",
}


def test_normalization_hand_cases(engine):
    got = normalize(engine, list(NORMALIZED))
    assert got == NORMALIZED


def test_parts_surname_middle_key(engine):
    t = engine.from_records(pd.DataFrame({"n": ["DELA CRUZ, MARIA C.", "Ma. Cristina Santos Dela Cruz", "Maria S.", "Cher"]}))
    df = engine.fetch(N.name_parts(t, "n", "x")).set_index("n")
    assert df.loc["DELA CRUZ, MARIA C.", "x_surname"] == "delacruz"
    assert pd.isna(df.loc["DELA CRUZ, MARIA C.", "x_middle"])  # "c" is an initial
    assert df.loc["DELA CRUZ, MARIA C.", "x_key"] == "maria|delacruz"
    assert df.loc["Ma. Cristina Santos Dela Cruz", "x_middle"] == "santos"
    assert df.loc["Ma. Cristina Santos Dela Cruz", "x_key"] == "maria|delacruz"
    assert pd.isna(df.loc["Maria S.", "x_surname"])  # only an initial: no usable family name
    assert df.loc["Cher", "x_surname"] == "cher" and pd.isna(df.loc["Cher", "x_key"])


PAIRS = [
    # (a, b, related?)
    ("Juan D. Santos", "Maria Santos", True),
    ("JUAN SANTOS", "maría  santos", True),
    ("Jose Dela Cruz", "DELA CRUZ, MARIA C.", True),
    ("Jose De la Cruz", "Ana Delacruz", True),
    ("Ramon de los Santos", "Liza Delos Santos", True),
    ("Ramon de los Santos", "Liza Santos", False),  # delossantos ≠ santos
    ("Carlo Del Rosario", "Ma. Luz del Rosario", True),
    ("Carlo San Juan", "Ana Sanjuan", True),
    ("Ana Sta. Maria", "Ben Santa Maria", True),
    ("John Smith", "Maria Santos", False),
    ("John Smith", "SANTOS, MARIA", False),
    # Filipino middle names: the mother's maiden surname
    ("Jose Cruz Santos", "Maria Santos Reyes", True),   # father's surname = daughter's middle name
    ("Ana Lopez Reyes", "Ben Lopez Garcia", True),     # siblings' children via mothers: shared middle
    ("Ana Lopez Reyes", "Ben Garcia", False),
    ("John Smith", "Maria C. Santos", False),           # initial "c" is not a family name
    ("Juan C. Cruz", "Pedro Cruz", True),
    # unknown: a missing or initial-only name
    (None, "Maria Santos", None),
    ("John Smith", None, None),
    ("", "Maria Santos", None),
    ("John S.", "Maria Santos", None),
]


def test_relation_hand_pairs(engine):
    got = relate(engine, [(a, b) for a, b, _ in PAIRS])
    assert got == [r for _, _, r in PAIRS]


def test_middle_name_can_be_switched_off(engine):
    got = relate(engine, [("Jose Cruz Santos", "Maria Santos Reyes"), ("Juan Santos", "Ana Santos")], use_middle=False)
    assert got == [False, True]


def test_phone_key(engine):
    t = engine.from_records(pd.DataFrame({"p": pd.Series(["+63 917 123 4567", "0917-123-4567", "(0917) 1234567", "12345", None], dtype="string")}))
    got = engine.fetch(t.select(k=N.phone_key(t.p, 10)))["k"].tolist()
    assert got[:3] == ["9171234567"] * 3
    assert all(pd.isna(v) for v in got[3:])


SURNAMES = st.sampled_from(["Santos", "Reyes", "Cruz", "Dela Cruz", "de los Santos", "Del Rosario", "Garcia",
                            "Bautista", "San Juan", "Smith", "Müller", "Peñaflor"])
GIVEN = st.sampled_from(["Maria", "Ma.", "Juan", "José", "Ana", "John", "Cristina", "Pedro"])


VARIANT = st.tuples(GIVEN, SURNAMES, GIVEN, SURNAMES, st.booleans(), st.booleans(), st.integers(1, 3))
CANON = {"Dela Cruz": "delacruz", "de los Santos": "delossantos", "Del Rosario": "delrosario",
         "San Juan": "sanjuan", "Müller": "muller", "Peñaflor": "penaflor"}


@settings(max_examples=5, deadline=None)
@given(st.lists(VARIANT, min_size=1, max_size=30))
def test_relation_property(engine, variants):
    """Related iff the surnames are the same after normalization, whatever the typing variant
    (case, comma surname-first form, extra spaces, accents, Ma.), and the relation is symmetric."""
    pairs, expect = [], []
    for g1, s1, g2, s2, upper, comma, spaces in variants:
        b = f"{s2}, {g2}" if comma else (" " * spaces).join([g2, s2])
        a = f"{g1} {s1}"
        pairs += [(a, b.upper() if upper else b), (b.upper() if upper else b, a)]
        same = CANON.get(s1, s1.lower()) == CANON.get(s2, s2.lower())
        expect += [same, same]
    assert relate(engine, pairs) == expect
