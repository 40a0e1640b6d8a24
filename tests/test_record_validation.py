"""validate_record: one transfer validated exactly as batch ingest validates a row.

Hand-made cases (one per reason code, one per accepted format, with hand-computed values), and a
hypothesis property test holding validate_record and `ingest` on a CSV of the same rows to row-by-row
agreement: accept/reject, reason code, detail, amount_usd, fx_rate, ts_epoch and the canonical text.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalasag.engine import connect
from kalasag.ingest import FxTable, RecordRejected, ingest, load_fx, validate_record
from kalasag.model.config import load_config
from kalasag.model.schema import CHANNELS, COLUMN_NAMES, QUARANTINE_REASONS

from ingest_helpers import BASE

CONFIG = load_config()
NOW = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
EUR_2024_05 = 1.081222727  # bundled fx_monthly.csv, 2024-05,EUR
EUR_2020_01 = 1.110036364  # first month of the bundled table
EUR_2026_10 = 1.120159091  # last month
PHP_2024_05 = 0.01729453625
T_2024_05_01_0630 = 1714545000  # 2024-05-01T06:30:00Z: 19844 days * 86400 + 6.5 h


def check(change: dict, **kw) -> dict:
    return validate_record({**BASE, **change}, CONFIG, now=NOW, **kw)


def rejected(change: dict, **kw) -> RecordRejected:
    with pytest.raises(RecordRejected) as info:
        check(change, **kw)
    return info.value


# ---- the canonical record -------------------------------------------------------------------
def test_valid_record_is_returned_in_canonical_form():
    rec = check({})
    assert list(rec) == [*COLUMN_NAMES, "amount_usd", "fx_rate", "ts_epoch"]
    assert rec == {
        **BASE,
        "timestamp": "2024-05-01T06:30:00Z",
        "amount": 100.0,
        "amount_usd": 100.0,
        "fx_rate": 1.0,
        "ts_epoch": T_2024_05_01_0630,
    }


def test_absent_optional_fields_are_none_and_text_is_trimmed():
    rec = validate_record(
        {
            "txn_id": "  T9\t",
            "timestamp": " 2024-05-01T06:30:00Z\n",
            "amount": " 5 ",
            "currency": " php ",
            "sender_id": "S1",
            "receiver_id": "R1",
            "sender_country": "us",
            "receiver_country": "ph",
            "channel": "",
            "reference": "   ",
        },
        CONFIG,
        now=NOW,
    )
    assert rec["txn_id"] == "T9" and rec["currency"] == "PHP"
    assert (rec["sender_country"], rec["receiver_country"]) == ("US", "PH")
    for name in ("channel", "sender_name", "receiver_name", "receiver_region", "sender_phone", "receiver_phone"):
        assert rec[name] is None, name
    assert rec["reference"] is None  # only spaces: empty
    assert rec["amount_usd"] == 5 * PHP_2024_05
    assert rec["fx_rate"] == PHP_2024_05


def test_unknown_fields_are_ignored_and_derived_fields_recomputed():
    rec = check({"operator_ref": "X-1", "amount_usd": 999.0, "fx_rate": 7.0, "ts_epoch": 1})
    assert "operator_ref" not in rec
    assert (rec["amount_usd"], rec["fx_rate"], rec["ts_epoch"]) == (100.0, 1.0, T_2024_05_01_0630)


def test_output_validates_to_itself():
    rec = check({"timestamp": "2024-05-01T14:30:00.25+08:00", "currency": "eur", "amount": "1,000"})
    assert rec["timestamp"] == "2024-05-01T06:30:00.250000Z"
    assert validate_record(rec, CONFIG, now=NOW) == rec


# ---- accepted formats -----------------------------------------------------------------------
TIMESTAMPS = [
    ("2024-05-01T06:30:00Z", "2024-05-01T06:30:00Z", T_2024_05_01_0630),
    ("2024-05-01T06:30:00z", "2024-05-01T06:30:00Z", T_2024_05_01_0630),
    ("2024-05-01 06:30Z", "2024-05-01T06:30:00Z", T_2024_05_01_0630),  # space, no seconds
    ("2024-05-01T14:30:00+08:00", "2024-05-01T06:30:00Z", T_2024_05_01_0630),
    ("2024-05-01T14:30:00+0800", "2024-05-01T06:30:00Z", T_2024_05_01_0630),
    ("2024-05-01T14:30:00+08", "2024-05-01T06:30:00Z", T_2024_05_01_0630),
    ("2024-05-01T14:30:00 +08:00", "2024-05-01T06:30:00Z", T_2024_05_01_0630),  # one space before
    ("2024-05-01T01:00:00-05:30", "2024-05-01T06:30:00Z", T_2024_05_01_0630),
    ("2024-05-01T06:30:00.5Z", "2024-05-01T06:30:00.500000Z", T_2024_05_01_0630),  # epoch floors
    ("2024-05-01T06:30:00,1234567Z", "2024-05-01T06:30:00.123456Z", T_2024_05_01_0630),  # truncated
    ("2024-04-30T24:00:00Z", "2024-05-01T00:00:00Z", T_2024_05_01_0630 - 6 * 3600 - 1800),
    ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000Z", -1),  # floor, not truncation to 0
    ("2024-02-29T00:00:00+14:00", "2024-02-28T10:00:00Z", 1709114400),
]


@pytest.mark.parametrize(("text", "iso", "epoch"), TIMESTAMPS)
def test_timestamp_formats(text, iso, epoch):
    rec = check({"timestamp": text})
    assert (rec["timestamp"], rec["ts_epoch"]) == (iso, epoch)


AMOUNTS = [
    ("1234.5", 1234.5),
    ("+0.50", 0.5),
    (".5", 0.5),
    ("5.", 5.0),
    ("2e3", 2000.0),
    ("1,234.50", 1234.5),
    ("1,234,567", 1234567.0),
    (250, 250.0),  # JSON numbers
    (0.1, 0.1),
    (Decimal("12.25"), 12.25),
]


@pytest.mark.parametrize(("value", "expected"), AMOUNTS)
def test_amount_formats(value, expected):
    rec = check({"amount": value})
    assert rec["amount"] == expected and rec["amount_usd"] == expected  # USD: rate 1


def test_thousands_separator_off_in_config():
    cfg = CONFIG.model_copy(update={"ingest": CONFIG.ingest.model_copy(update={"amount_thousands_separator": False})})
    assert validate_record({**BASE, "amount": "1234.5"}, cfg, now=NOW)["amount"] == 1234.5
    with pytest.raises(RecordRejected) as info:
        validate_record({**BASE, "amount": "1,234.5"}, cfg, now=NOW)
    assert info.value.reason == "non_numeric_amount"


def test_case_of_codes_and_channel():
    rec = check({"currency": "eur", "sender_country": "gb", "channel": "BANK"})
    assert (rec["currency"], rec["sender_country"], rec["channel"]) == ("EUR", "GB", "bank")
    assert rec["amount_usd"] == 100 * EUR_2024_05


def test_case_folding_is_simple_like_duckdb():
    """'ﬁ' upper-cases to 'FI' in Python (Finland!) but stays 'ﬁ' in DuckDB: rejected, as in batch;
    the dotless i and the Kelvin sign map one-to-one and are accepted, as in batch."""
    assert rejected({"sender_country": "ﬁ"}).reason == "invalid_country_code"
    assert check({"sender_country": "\u0131t"})["sender_country"] == "IT"
    assert check({"channel": "BAN\u212a"})["channel"] == "bank"


def test_every_channel_is_accepted():
    for channel in CHANNELS:
        assert check({"channel": channel.upper()})["channel"] == channel


def test_fx_nearest_month_outside_the_table():
    before = check({"currency": "EUR", "timestamp": "2019-06-15T10:00:00Z", "amount": "10"})
    after = check({"currency": "EUR", "timestamp": "2026-10-31T23:59:00-00:09", "amount": "10"})  # 11-01 00:08Z
    assert before["fx_rate"] == EUR_2020_01 and before["amount_usd"] == 10 * EUR_2020_01
    assert after["fx_rate"] == EUR_2026_10 and after["amount_usd"] == 10 * EUR_2026_10


def test_fx_month_is_the_utc_month():
    # 2024-06-01T05:00+08:00 is 2024-05-31T21:00Z: May's rate
    assert check({"currency": "EUR", "timestamp": "2024-06-01T05:00:00+08:00"})["fx_rate"] == EUR_2024_05


def twd_fx(tmp_path: Path) -> Path:
    path = tmp_path / "twd.csv"
    path.write_text("month,currency,usd_per_unit\n2024-01,TWD,0.032\n2024-02,TWD,0.0316\n2024-04,TWD,0.031\n")
    return path


def test_user_fx_file_and_a_gap_inside_its_range(tmp_path):
    path = twd_fx(tmp_path)
    rec = check({"currency": "TWD", "timestamp": "2024-02-10T00:00:00Z", "amount": "1000"}, fx=path)
    assert rec["fx_rate"] == 0.0316 and rec["amount_usd"] == 1000 * 0.0316
    assert check({"currency": "TWD", "amount": "1000"}, fx=load_fx(path))["fx_rate"] == 0.031  # May -> April
    gap = rejected({"currency": "TWD", "timestamp": "2024-03-10T00:00:00Z"}, fx=path)
    assert (gap.reason, gap.field) == ("no_fx_rate", "currency")
    assert gap.message == "no FX rate for TWD in 2024-03 (not guessed; add it with --fx)"


# ---- one case per reason code -----------------------------------------------------------------
REASONS = [
    ({"sender_id": ""}, "missing_required_field", "sender_id", "required field(s) empty: sender_id"),
    (
        {"receiver_id": "  ", "receiver_country": None},
        "missing_required_field",
        "receiver_id",
        "required field(s) empty: receiver_id, receiver_country",
    ),
    (
        {"timestamp": "05/01/2024 14:30"},
        "unparseable_timestamp",
        "timestamp",
        "timestamp '05/01/2024 14:30' is not an ISO 8601 date-time (e.g. 2024-05-01T14:30:00+08:00)",
    ),
    (
        {"timestamp": "2024-05-01 14:30:00"},
        "unparseable_timestamp",
        "timestamp",
        "timestamp '2024-05-01 14:30:00' has no UTC offset (add Z or +hh:mm, or set [timestamps] "
        "utc_offset in the mapping file)",
    ),
    (
        {"timestamp": "2023-02-29T10:00:00Z"},
        "unparseable_timestamp",
        "timestamp",
        "timestamp '2023-02-29T10:00:00Z' is not a valid calendar date and time",
    ),
    (
        {"timestamp": "2024-05-01T24:00:01Z"},
        "unparseable_timestamp",
        "timestamp",
        "timestamp '2024-05-01T24:00:01Z' is not a valid calendar date and time",
    ),
    (
        {"timestamp": "2024-05-01T10:00:00+14:30"},
        "unparseable_timestamp",
        "timestamp",
        "timestamp '2024-05-01T10:00:00+14:30' has a UTC offset outside -14:00..+14:00",
    ),
    (
        {"timestamp": "2026-11-01T08:10:00.000001+08:00"},
        "future_timestamp",
        "timestamp",
        "timestamp '2026-11-01T08:10:00.000001+08:00' is 2026-11-01 00:10:00 UTC, after the run time "
        "2026-11-01 00:00:00 UTC + 10 min tolerance",
    ),
    ({"amount": "1.234,50"}, "non_numeric_amount", "amount", "amount '1.234,50' is not a number"),
    ({"amount": "12,34"}, "non_numeric_amount", "amount", "amount '12,34' is not a number"),
    ({"amount": "1e999"}, "non_numeric_amount", "amount", "amount '1e999' is not a number"),
    ({"amount": float("nan")}, "non_numeric_amount", "amount", "amount 'nan' is not a number"),
    ({"amount": 10**400}, "non_numeric_amount", "amount", "amount '1" + "0" * 79 + "…' is not a number"),
    ({"amount": "-5.00"}, "non_positive_amount", "amount", "amount '-5.00' is not positive"),
    ({"amount": 0}, "non_positive_amount", "amount", "amount '0' is not positive"),
    ({"amount": "1e-400"}, "non_positive_amount", "amount", "amount '1e-400' is not positive"),  # 0.0
    ({"currency": "dollars"}, "unknown_currency", "currency", "currency 'DOLLARS' is not an ISO 4217 code"),
    (
        {"sender_country": "UK"},
        "invalid_country_code",
        "sender_country",
        "sender_country 'UK' is not an ISO 3166 alpha-2 code",
    ),
    (
        {"receiver_country": "phl"},
        "invalid_country_code",
        "receiver_country",
        "receiver_country 'PHL' is not an ISO 3166 alpha-2 code",
    ),
    (
        {"channel": "Wire"},
        "invalid_channel",
        "channel",
        "channel 'wire' is not one of bank, mto, ewallet, card, crypto, other",
    ),
    (
        {"currency": "TWD"},
        "no_fx_rate",
        "currency",
        "no FX rate for TWD in 2024-05 (not guessed; add it with --fx)",
    ),
    ({"sender_id": ["S1"]}, "malformed_row", "sender_id", "sender_id must be a string (or an integer), not a list"),
    ({"amount": True}, "malformed_row", "amount", "amount must be a number or a string, not a boolean"),
    ({"reference": 1.5}, "malformed_row", "reference", "reference must be a string (or an integer), not a decimal number"),
]


@pytest.mark.parametrize(("change", "reason", "field", "message"), REASONS)
def test_reason(change, reason, field, message):
    exc = rejected(change)
    assert (exc.reason, exc.field, exc.message) == (reason, field, message)
    assert str(exc) == f"{reason}: {message}"


def test_every_reason_but_duplicates_is_covered():
    assert {r for _, r, _, _ in REASONS} == set(QUARANTINE_REASONS) - {"duplicate_txn_id"}


def test_first_reason_wins_in_batch_order():
    # bad amount, currency, country and channel all at once: the amount is checked first
    exc = rejected({"amount": "x", "currency": "ZZZ", "sender_country": "ZZ", "channel": "fax"})
    assert exc.reason == "non_numeric_amount"
    exc = rejected({"currency": "ZZZ", "sender_country": "ZZ", "timestamp": "2031-01-01T00:00:00Z"})
    assert exc.reason == "future_timestamp"


def test_not_a_mapping_is_malformed():
    with pytest.raises(RecordRejected) as info:
        validate_record(["T1"], CONFIG, now=NOW)
    assert (info.value.reason, info.value.field) == ("malformed_row", None)


def test_integers_in_text_fields_are_their_decimal_text():
    assert check({"sender_id": 12345, "txn_id": 7})["sender_id"] == "12345"


def test_integer_too_long_to_read_is_malformed():
    exc = rejected({"sender_id": 10**5000})
    assert (exc.reason, exc.field, exc.message) == ("malformed_row", "sender_id", "sender_id is an integer too long to read")


def test_missing_field_names_a_miscased_key():
    record = {k: v for k, v in BASE.items() if k != "sender_id"} | {"Sender_ID": "S1"}
    with pytest.raises(RecordRejected) as info:
        validate_record(record, CONFIG, now=NOW)
    assert info.value.message == (
        "required field(s) empty: sender_id (field names are case-sensitive: 'Sender_ID' is not 'sender_id')"
    )


def test_now_naive_means_utc_and_offsets_are_converted():
    record = {**BASE, "timestamp": "2026-11-01T00:10:00Z"}  # exactly at the tolerance: accepted
    assert validate_record(record, CONFIG, now=datetime(2026, 11, 1))["ts_epoch"] == 1793491800
    manila = datetime(2026, 11, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    assert validate_record(record, CONFIG, now=manila)["ts_epoch"] == 1793491800
    with pytest.raises(RecordRejected):
        validate_record(record, CONFIG, now=datetime(2026, 10, 31, 23, 59, 59, 999999))


# ---- property: the same verdict as batch ingest, row by row -------------------------------------
ENGINE = connect(threads=2)
# the bundled table plus TWD for 2024-01, -02 and -04 (a gap in March): no_fx_rate inside a range
_BUNDLED = load_fx()
FX = FxTable(
    pd.concat(
        [
            _BUNDLED.frame,
            pd.DataFrame(
                {"month": ["2024-01", "2024-02", "2024-04"], "currency": "TWD", "usd_per_unit": [0.032, 0.0316, 0.031]}
            ),
        ],
        ignore_index=True,
    ),
    "bundled + TWD",
)
JUNK = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=10)
SPACE = st.sampled_from(["", " ", "\t", "\n ", "\x0b", "\x0c"])  # \v and \f are trimmed, as in DuckDB


def padded(values: list[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda a, v, b: a + v + b, SPACE, st.sampled_from(values), SPACE)


NEAR_ISO = st.from_regex(
    r"\A(0000|19[0-9]{2}|20[0-3][0-9])-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-6][0-9](:[0-6][0-9])?"
    r"([.,][0-9]{1,9})?( ?(Z|z|[+-][01][0-9](:?[0-6][0-9])?))?\Z"
)
TIMESTAMP = st.one_of(
    padded(
        [
            "2024-05-01T14:30:00+08:00",
            "2024-05-01 06:30Z",
            "2024-04-30T24:00:00-02:00",
            "2024-04-30T24:00:00.000Z",
            "2024-04-30T24:00:00.5Z",
            "2024-03-15T12:00:00Z",  # TWD gap month
            "2024-02-10T12:00:00,25+05:45",
            "2019-06-15T10:00:00Z",  # before the FX table
            "2026-10-31T23:59:00-00:09",  # after it (2026-11-01 00:08Z)
            "2026-11-01T00:10:00Z",  # at the tolerance
            "2026-11-01T08:10:00.000001+08:00",  # 1 µs past it
            "2030-01-01T00:00:00Z",
            "2024-05-01T14:30:00",
            "2024-05-01T14:30:00\x0b+08:00",  # RE2's \s has no \v
            "0000-02-29T12:00:00+01:00",  # DuckDB's year 0 (1 BC, a leap year)
            "0000-01-01T00:30:00+01:00",  # ... and 2 BC
            "1969-12-31T23:59:59.999Z",
        ]
    ),
    NEAR_ISO,
    JUNK,
)
AMOUNT = st.one_of(
    padded(
        ["10", "1,234.50", "12,50", "1.234,50", "0", "-3", "+.5", ".5", "1.", "1.e5", "2E3", "1e400",
         "1e-400", "-0", "$100", "1 000", "nan", "inf", "1,23", "1,234,567.891", "0001", "1_000", ""]
    ),  # fmt: skip
    st.decimals(min_value=Decimal("-10"), max_value=Decimal("1e9"), allow_nan=False, places=2).map(str),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 10**12),
    JUNK,
)
FIELDS: dict[str, st.SearchStrategy] = {
    "timestamp": TIMESTAMP,
    "amount": AMOUNT,
    "currency": st.one_of(padded(["USD", "eur", "TWD", "XYZ", "ﬁ", "u\u017fd", "Php", ""]), JUNK),
    "channel": st.one_of(padded(["mto", "", "Bank", "wire", "ban\u212a", "EWALLET", "crypto"]), JUNK),
    "sender_country": st.one_of(padded(["US", "uk", "de", "ﬁ", "\u0131t", ""]), JUNK),
    "receiver_country": st.one_of(padded(["PH", "ph", "PHL", ""]), JUNK),
}
OTHER = st.one_of(padded(["S1", "R1", "x", ""]), JUNK)


@st.composite
def rows(draw) -> list[dict]:
    out = []
    for i in range(draw(st.integers(1, 25))):
        row = {c: draw(FIELDS.get(c, OTHER)) for c in COLUMN_NAMES}
        row["txn_id"] = draw(st.one_of(st.just(f"T{i}"), OTHER))
        out.append(row)
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_validate_record_agrees_with_batch_ingest(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("agree") / "rows.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMN_NAMES)
        for r in records:
            writer.writerow([str(r[c]) for c in COLUMN_NAMES])  # a number as Python writes it
    result = ingest(ENGINE, path, config=CONFIG, now=NOW, fx=FX)
    t = result.transfers
    text = [c for c in COLUMN_NAMES if c not in ("timestamp", "amount")]
    accepted = ENGINE.fetch(t.select("row_number", "amount", "amount_usd", "fx_rate", "ts_epoch", *text))
    accepted = accepted.set_index("row_number")
    quarantined = ENGINE.fetch(result.quarantine.select("row_number", "reason", "detail")).set_index("row_number")
    assert result.rows_in == len(records)

    for n, r in enumerate(records, start=1):
        try:
            mine = validate_record(r, CONFIG, now=NOW, fx=FX)
        except RecordRejected as exc:
            assert n in quarantined.index, (r, exc)
            assert quarantined.at[n, "reason"] == exc.reason, r
            assert quarantined.at[n, "detail"] == exc.message, r
            continue
        if n in quarantined.index:  # a later row of an accepted txn_id: the store's business here
            assert quarantined.at[n, "reason"] == "duplicate_txn_id", (r, quarantined.loc[n].to_dict())
            continue
        batch = accepted.loc[n]
        assert mine["ts_epoch"] == batch["ts_epoch"], r
        assert mine["amount"] == batch["amount"], r
        assert mine["amount_usd"] == batch["amount_usd"], r
        assert mine["fx_rate"] == batch["fx_rate"], r
        for c in text:
            assert mine[c] == (None if pd.isna(batch[c]) else batch[c]), (c, r)
