"""Filipino-aware name keys used by entity resolution (kalasag.indicators.names), hand-made cases."""

from __future__ import annotations

import pandas as pd
import pytest

from kalasag.engine import connect
from kalasag.indicators import names as N

CASES = {
    # raw: (normalized, sorted words, given names, given initial, surname, surname core)
    "Ma. Cristina Dela Cruz": ("maria cristina delacruz", "cristina delacruz maria", ["maria", "cristina"], "m", "delacruz", "cruz"),
    "MARIA CRISTINA DELACRUZ": ("maria cristina delacruz", "cristina delacruz maria", ["maria", "cristina"], "m", "delacruz", "cruz"),
    "Cristina D. Cruz": ("cristina d cruz", "cristina cruz", ["cristina"], "c", "cruz", "cruz"),
    "DELA CRUZ, MARIA C.": ("maria c delacruz", "delacruz maria", ["maria"], "m", "delacruz", "cruz"),
    # surname first without a comma: read given-name-first, but the sorted words still agree
    "DELA CRUZ MARIA CRISTINA": ("delacruz maria cristina", "cristina delacruz maria", ["delacruz", "maria"], "d", "cristina", "cristina"),
    "maria cristina s. dela cruz": ("maria cristina s delacruz", "cristina delacruz maria", ["maria", "cristina"], "m", "delacruz", "cruz"),
    "Juan D. Santos Jr.": ("juan d santos", "juan santos", ["juan"], "j", "santos", "santos"),
    "Maria Delos Santos": ("maria delossantos", "delossantos maria", ["maria"], "m", "delossantos", "santos"),
    "Sta. Maria, José": ("jose santamaria", "jose santamaria", ["jose"], "j", "santamaria", "maria"),
    "J. Smith": ("j smith", "smith", None, "j", "smith", "smith"),
    "SMITH, JOHN": ("john smith", "john smith", ["john"], "j", "smith", "smith"),
    "Santos": ("santos", "santos", None, None, "santos", "santos"),
}


@pytest.fixture(scope="module")
def keys() -> pd.DataFrame:
    eng = connect()
    t = eng.from_records(pd.DataFrame({"raw": list(CASES)}))
    n = N.normalize_name(t.raw)
    s = N.surname(n)
    e = t.select(
        "raw", norm=n, sig=N.name_signature(n), given=N.given_tokens(n), initial=N.given_initial(n),
        surname=s, core=N.surname_core(s),
    )
    return eng.fetch(e).set_index("raw")


def _none(v):
    return None if v is None or (isinstance(v, float) and v != v) else v


@pytest.mark.parametrize("raw", list(CASES))
def test_name_keys(keys: pd.DataFrame, raw: str) -> None:
    norm, sig, given, initial, sur, core = CASES[raw]
    row = keys.loc[raw]
    assert row["norm"] == norm
    assert row["sig"] == sig
    got = _none(row["given"]) if not hasattr(row["given"], "__len__") or isinstance(row["given"], str) else list(row["given"])
    assert got == given
    assert _none(row["initial"]) == initial
    assert row["surname"] == sur
    assert row["core"] == core


def test_variants_of_one_person_share_keys(keys: pd.DataFrame) -> None:
    a, b, c, d = (keys.loc[r] for r in ("Ma. Cristina Dela Cruz", "MARIA CRISTINA DELACRUZ", "Cristina D. Cruz", "DELA CRUZ, MARIA C."))
    assert a["norm"] == b["norm"]                     # "Ma." and glued surname
    assert a["core"] == c["core"] == d["core"] == "cruz"  # "D. Cruz" meets "Dela Cruz"
    assert set(c["given"]) <= set(a["given"])         # the given names of one are among the other's
    assert set(d["given"]) <= set(a["given"])
    assert keys.loc["DELA CRUZ MARIA CRISTINA"]["sig"] == a["sig"]  # surname-first order


def test_particle_stripping_keeps_plain_surnames(keys: pd.DataFrame) -> None:
    # "Santos" must not lose "san"/"santo": it has to meet "Delos Santos"
    assert keys.loc["Santos"]["core"] == keys.loc["Maria Delos Santos"]["core"] == "santos"
