"""Ingest: every quarantine reason, the unreadable-file errors, formats, counts and row numbers."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from kalasag.engine import connect
from kalasag.ingest import CHECK_ORDER, InputError, ingest
from kalasag.model.config import load_config
from kalasag.model.schema import COLUMN_NAMES, DERIVED_COLUMNS, QUARANTINE_REASONS, TRANSFER_COLUMNS

from ingest_helpers import BASE

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
NOW = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
HEADER = ",".join(COLUMN_NAMES)


@pytest.fixture(scope="module")
def engine():
    return connect(threads=2)


@pytest.fixture(scope="module")
def config():
    return load_config()


def csv_line(row: dict[str, str]) -> str:
    return ",".join(f'"{row[c]}"' if "," in row[c] else row[c] for c in COLUMN_NAMES)


def with_id(line: str, txn_id: str) -> str:
    """A copy of a CSV line of BASE with another txn_id (the first field)."""
    return txn_id + line[len(BASE["txn_id"]) :]


def write_rows(tmp_path: Path, rows: list[dict[str, str]], name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "\n" + "\n".join(csv_line({**BASE, **r}) for r in rows) + "\n")
    return path


def run(engine, config, path, **kw):
    return ingest(engine, path, config=config, now=NOW, **kw)


def quarantine(engine, result) -> pd.DataFrame:
    return engine.fetch(result.quarantine)


def transfers(engine, result) -> pd.DataFrame:
    # in input order: the table itself is not sorted (row_number holds the order)
    return engine.fetch(result.transfers.order_by("row_number"))


# ---- one test per quarantine reason ---------------------------------------------------------
REASON_CASES = [
    ({"sender_id": ""}, "missing_required_field", "required field(s) empty: sender_id"),
    (
        {"receiver_id": "  ", "receiver_country": ""},
        "missing_required_field",
        "required field(s) empty: receiver_id, receiver_country",
    ),
    (
        {"timestamp": "05/01/2024 14:30"},
        "unparseable_timestamp",
        "timestamp '05/01/2024 14:30' is not an ISO 8601 date-time (e.g. 2024-05-01T14:30:00+08:00)",
    ),
    (
        {"timestamp": "2024-05-01 14:30:00"},
        "unparseable_timestamp",
        "timestamp '2024-05-01 14:30:00' has no UTC offset (add Z or +hh:mm, or set [timestamps] "
        "utc_offset in the mapping file)",
    ),
    (
        {"timestamp": "2024-02-30T10:00:00Z"},
        "unparseable_timestamp",
        "timestamp '2024-02-30T10:00:00Z' is not a valid calendar date and time",
    ),
    (
        {"timestamp": "2024-05-01T10:00:00+15:00"},
        "unparseable_timestamp",
        "timestamp '2024-05-01T10:00:00+15:00' has a UTC offset outside -14:00..+14:00",
    ),
    (
        {"timestamp": "2026-11-01T08:11:00+08:00"},
        "future_timestamp",
        "timestamp '2026-11-01T08:11:00+08:00' is 2026-11-01 00:11:00 UTC, after the run time "
        "2026-11-01 00:00:00 UTC + 10 min tolerance",
    ),
    ({"amount": "ten"}, "non_numeric_amount", "amount 'ten' is not a number"),
    ({"amount": "1.234,50"}, "non_numeric_amount", "amount '1.234,50' is not a number"),
    ({"amount": "12,34"}, "non_numeric_amount", "amount '12,34' is not a number"),
    ({"amount": "NaN"}, "non_numeric_amount", "amount 'NaN' is not a number"),
    ({"amount": "1e999"}, "non_numeric_amount", "amount '1e999' is not a number"),
    ({"amount": "$100"}, "non_numeric_amount", "amount '$100' is not a number"),
    ({"amount": "0"}, "non_positive_amount", "amount '0' is not positive"),
    ({"amount": "-5.00"}, "non_positive_amount", "amount '-5.00' is not positive"),
    ({"currency": "ABC"}, "unknown_currency", "currency 'ABC' is not an ISO 4217 code"),
    ({"currency": "dollars"}, "unknown_currency", "currency 'DOLLARS' is not an ISO 4217 code"),
    ({"sender_country": "UK"}, "invalid_country_code", "sender_country 'UK' is not an ISO 3166 alpha-2 code"),
    (
        {"receiver_country": "PHL"},
        "invalid_country_code",
        "receiver_country 'PHL' is not an ISO 3166 alpha-2 code",
    ),
    (
        {"channel": "Wire"},
        "invalid_channel",
        "channel 'wire' is not one of bank, mto, ewallet, card, crypto, other",
    ),
    (
        {"currency": "TWD"},
        "no_fx_rate",
        "no FX rate for TWD in 2024-05 (not guessed; add it with --fx)",
    ),
]


@pytest.fixture(scope="module")
def reason_run(engine, config, tmp_path_factory):
    """One file holding a valid row, then one row per case of REASON_CASES (ingested once)."""
    rows = [{"txn_id": "OK1"}] + [{**change, "txn_id": f"BAD{i}"} for i, (change, _, _) in enumerate(REASON_CASES)]
    path = write_rows(tmp_path_factory.mktemp("reasons"), rows)
    result = run(engine, config, path)
    return result, quarantine(engine, result).set_index("txn_id")


def test_reason_run_counts(reason_run):
    result, q = reason_run
    n = len(REASON_CASES)
    assert (result.rows_in, result.accepted, result.quarantined) == (n + 1, 1, n)
    expected: dict[str, int] = {}
    for _, reason, _ in REASON_CASES:
        expected[reason] = expected.get(reason, 0) + 1
    assert result.reasons == expected
    assert list(result.reasons) == [r for r in QUARANTINE_REASONS if r in expected]  # documented order


@pytest.mark.parametrize(("case", "change", "reason", "detail"), [(i, *c) for i, c in enumerate(REASON_CASES)])
def test_each_reason_with_its_detail(reason_run, case, change, reason, detail):
    _, q = reason_run
    row = q.loc[f"BAD{case}"]
    assert row["row_number"] == case + 2
    assert row["reason"] == reason
    assert row["detail"] == detail
    # the original field, as in the file, is kept under its own column name
    for column, value in change.items():
        if value == "":  # an empty CSV field reads as NULL (written back as an empty field)
            assert pd.isna(row[column])
        else:
            assert row[column] == value


def test_duplicate_txn_id_keeps_first_and_names_its_row(engine, config, tmp_path):
    path = write_rows(
        tmp_path,
        [{"txn_id": "A"}, {"txn_id": "B"}, {"txn_id": "A", "amount": "5"}, {"txn_id": " A "}],
    )
    result = run(engine, config, path)
    t, q = transfers(engine, result), quarantine(engine, result)
    assert list(t["txn_id"]) == ["A", "B"]
    assert list(t["row_number"]) == [1, 2]
    assert list(q["row_number"]) == [3, 4]
    assert set(q["reason"]) == {"duplicate_txn_id"}
    assert list(q["detail"]) == ["txn_id 'A' was already accepted from row 1"] * 2


def test_duplicate_of_a_quarantined_row_is_accepted(engine, config, tmp_path):
    """Only an *accepted* first occurrence makes later rows duplicates."""
    path = write_rows(tmp_path, [{"txn_id": "A", "amount": "x"}, {"txn_id": "A"}])
    result = run(engine, config, path)
    assert result.reasons == {"non_numeric_amount": 1}
    assert list(transfers(engine, result)["row_number"]) == [2]


def test_malformed_row_is_quarantined_and_row_numbers_stay_true(engine, config, tmp_path):
    good = csv_line(BASE)
    text = "\n".join(
        [
            HEADER,
            with_id(good, "A"),
            with_id(good, "B") + ",extra",  # 16 fields
            "C,too,few",
            with_id(good, "D").replace("school fees", '"line one\nline two"'),  # quoted newline
            with_id(good, "E"),
        ]
    )
    path = tmp_path / "m.csv"
    path.write_text(text + "\n")
    result = run(engine, config, path)
    t, q = transfers(engine, result), quarantine(engine, result)
    assert (result.rows_in, result.accepted, result.quarantined) == (5, 3, 2)
    assert dict(zip(t["txn_id"], t["row_number"], strict=True)) == {"A": 1, "D": 4, "E": 5}
    assert t.loc[t.txn_id == "D", "reference"].item() == "line one\nline two"
    assert list(q["row_number"]) == [2, 3]
    assert set(q["reason"]) == {"malformed_row"}
    assert q.loc[0, "detail"].startswith("Expected Number of Columns: 15 Found: 16 (too many columns): B,")
    assert q.loc[1, "detail"] == "Expected Number of Columns: 15 Found: 3 (missing columns): C,too,few"
    assert q.loc[1, COLUMN_NAMES[0]] is None or pd.isna(q.loc[1, COLUMN_NAMES[0]])


def test_unterminated_quote_is_one_malformed_record_with_a_note(engine, config, tmp_path):
    good = csv_line(BASE)
    path = tmp_path / "q.csv"
    path.write_text("\n".join([HEADER, good, with_id(good, '"T2'), with_id(good, "T3")]) + "\n")
    result = run(engine, config, path)
    assert (result.rows_in, result.accepted, result.reasons) == (2, 1, {"malformed_row": 1})
    assert any("unterminated quote" in n for n in result.notes)


def test_stray_carriage_return_splits_a_record(engine, config, tmp_path):
    """DuckDB's strict parser stops at a CR outside quotes; ingest reads a normalized copy."""
    good = csv_line(BASE)
    path = tmp_path / "cr.csv"
    broken = with_id(good, "B").replace("Cebu", "Ce\rbu")
    path.write_bytes(("\n".join([HEADER, with_id(good, "A"), broken, with_id(good, "C") + "\r"]) + "\n").encode())
    result = run(engine, config, path)
    t, q = transfers(engine, result), quarantine(engine, result)
    assert list(t["txn_id"]) == ["A", "C"]
    assert (result.rows_in, result.reasons) == (4, {"malformed_row": 2})  # B's two halves
    assert list(t["row_number"]) == [1, 4] and list(q["row_number"]) == [2, 3]
    assert q["detail"].str.contains("Expected Number of Columns: 15").all()
    assert any("mixes line breaks" in n for n in result.notes)


def test_checks_apply_in_the_documented_order(engine, config, tmp_path):
    assert tuple(QUARANTINE_REASONS)[1:] == CHECK_ORDER  # malformed_row comes first (the reader)
    path = write_rows(
        tmp_path,
        [
            {"txn_id": "A", "sender_id": "", "timestamp": "bad", "amount": "x"},
            {"txn_id": "B", "timestamp": "bad", "amount": "x", "currency": "ABC"},
            {"txn_id": "C", "amount": "x", "currency": "ABC", "sender_country": "ZZ"},
            {"txn_id": "D", "amount": "-1", "currency": "ABC"},
            {"txn_id": "E", "currency": "ABC", "sender_country": "ZZ", "channel": "post"},
            {"txn_id": "F", "sender_country": "ZZ", "channel": "post", "currency": "TWD"},
            {"txn_id": "G", "channel": "post", "currency": "TWD"},
        ],
    )
    q = quarantine(engine, run(engine, config, path))
    assert list(q["reason"]) == [
        "missing_required_field",
        "unparseable_timestamp",
        "non_numeric_amount",
        "non_positive_amount",
        "unknown_currency",
        "invalid_country_code",
        "invalid_channel",
    ]


# ---- accepted rows --------------------------------------------------------------------------
def test_accepted_table_is_canonical(engine, config, tmp_path):
    path = write_rows(
        tmp_path,
        [
            {
                "txn_id": "  A  ",
                "timestamp": " 2024-05-01T14:30:15.5+08:00 ",
                "amount": " 1,234.50 ",
                "currency": "usd",
                "channel": " EWallet ",
                "sender_country": "us",
                "receiver_country": "ph",
                "sender_name": "",
            },
            {"txn_id": "B", "timestamp": "2024-05-01 06:30Z", "channel": "", "amount": "+.5"},
            {"txn_id": "C", "timestamp": "2023-12-31T23:00:00-0130", "amount": "2e3"},
        ],
    )
    result = run(engine, config, path)
    schema = result.transfers.schema()
    expected = [c.name for c in TRANSFER_COLUMNS] + [c.name for c in DERIVED_COLUMNS]
    assert list(schema.names) == expected
    assert str(schema["timestamp"]).startswith("timestamp") and schema["timestamp"].timezone is None
    assert str(schema["amount"]) == "float64" and str(schema["amount_usd"]) == "float64"
    assert str(schema["ts_epoch"]) == "int64" and str(schema["row_number"]) == "int64"
    t = transfers(engine, result)
    a, b, c = (t.iloc[i] for i in range(3))
    assert a.txn_id == "A"
    assert a.timestamp == pd.Timestamp("2024-05-01 06:30:15.5")
    assert a.ts_epoch == 1714545015  # 2024-05-01T06:30:15Z, hand-computed (whole seconds)
    assert a.amount == 1234.5 and a.amount_usd == 1234.5 and a.fx_rate == 1.0
    assert (a.currency, a.channel, a.sender_country, a.receiver_country) == ("USD", "ewallet", "US", "PH")
    assert pd.isna(a.sender_name)  # empty -> NULL
    assert b.timestamp == pd.Timestamp("2024-05-01 06:30:00") and b.amount == 0.5 and pd.isna(b.channel)
    assert c.timestamp == pd.Timestamp("2024-01-01 00:30:00")  # 23:00 at -01:30 is 00:30 UTC
    assert c.amount == 2000.0
    assert list(t["row_number"]) == [1, 2, 3]


def test_optional_columns_may_be_absent(engine, config, tmp_path):
    required = ["txn_id", "timestamp", "amount", "currency", "sender_id", "receiver_id",
                "sender_country", "receiver_country"]  # fmt: skip
    path = tmp_path / "min.csv"
    path.write_text(",".join(required) + "\nA,2024-05-01T00:00:00Z,10,EUR,S,R,DE,PH\n")
    result = run(engine, config, path)
    t = transfers(engine, result)
    assert list(t.columns)[:15] == list(COLUMN_NAMES)
    assert t.loc[0, ["channel", "reference", "sender_phone"]].isna().all()
    assert result.columns_used["channel"] is None and result.columns_used["txn_id"] == "txn_id"


def test_header_names_match_ignoring_case_and_spaces(engine, config, tmp_path):
    path = tmp_path / "case.csv"
    path.write_text(HEADER.upper().replace("AMOUNT", " Amount ") + "\n" + csv_line(BASE) + "\n")
    result = run(engine, config, path)
    assert result.accepted == 1 and result.columns_used["amount"] == "Amount"


def test_thousands_separator_can_be_switched_off(engine, tmp_path):
    cfg = load_config(overrides={"ingest": {"amount_thousands_separator": False}})
    path = write_rows(tmp_path, [{"txn_id": "A", "amount": "1,234.50"}, {"txn_id": "B", "amount": "1234.50"}])
    result = run(engine, cfg, path)
    assert result.reasons == {"non_numeric_amount": 1}


def test_counts_reconcile_on_the_all_reasons_fixture(engine, config):
    result = run(engine, config, FIXTURES / "all_reasons.csv")
    assert result.rows_in == 13 == result.accepted + result.quarantined
    assert set(result.reasons) == set(QUARANTINE_REASONS)
    assert sum(result.reasons.values()) == result.quarantined == 11
    t, q = transfers(engine, result), quarantine(engine, result)
    assert sorted([*t["row_number"], *q["row_number"]]) == list(range(1, 14))
    assert list(t["txn_id"]) == ["T01", "T12"]
    assert result.input_format == "csv"
    assert list(q.columns[:3]) == ["row_number", "reason", "detail"]
    assert list(q.columns[3:]) == list(COLUMN_NAMES)


# ---- formats ---------------------------------------------------------------------------------
def test_gzip_csv_with_and_without_suffix(engine, config, tmp_path):
    data = (FIXTURES / "all_reasons.csv").read_bytes()
    for name in ("in.csv.gz", "export.bin"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(data))
        result = run(engine, config, path)
        assert result.input_format == "csv.gz"
        assert (result.rows_in, result.accepted) == (13, 2)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "txn_id": ["A", "B", "C"],
            "timestamp": pd.to_datetime(["2024-05-01T06:30:00Z", "2024-06-01T00:00:00Z", "2024-07-01T12:00:00Z"]),
            "amount": [10.5, 20.0, -1.0],
            "currency": ["USD", "SAR", "USD"],
            "sender_id": ["s1", "s2", "s3"],
            "receiver_id": ["r", "r", "r"],
            "sender_country": ["US", "SA", "US"],
            "receiver_country": ["PH", "PH", "PH"],
        }
    )


def test_typed_parquet(engine, config, tmp_path):
    path = tmp_path / "typed.parquet"
    _frame().to_parquet(path)
    result = run(engine, config, path)
    t, q = transfers(engine, result), quarantine(engine, result)
    assert result.input_format == "parquet"
    assert list(t["txn_id"]) == ["A", "B"]
    assert t.loc[0, "timestamp"] == pd.Timestamp("2024-05-01 06:30:00")
    assert t.loc[1, "amount_usd"] == pytest.approx(20.0 / 3.75)  # SAR peg: 3.75 per USD
    assert q.loc[0, "reason"] == "non_positive_amount" and q.loc[0, "amount"] == "-1.0"


def test_all_string_parquet_and_a_magic_byte_sniff(engine, config, tmp_path):
    frame = _frame().astype(str)
    frame["timestamp"] = ["2024-05-01T14:30:00+08:00", "2024-06-01T00:00:00Z", "bad"]
    path = tmp_path / "strings.dat"  # no suffix: detected by PAR1
    frame.to_parquet(path)
    result = run(engine, config, path)
    assert result.input_format == "parquet"
    assert result.reasons == {"unparseable_timestamp": 1}
    assert transfers(engine, result).loc[0, "timestamp"] == pd.Timestamp("2024-05-01 06:30:00")


def test_naive_parquet_timestamps_need_an_offset(engine, config, tmp_path):
    frame = _frame()
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    path = tmp_path / "naive.parquet"
    frame.to_parquet(path)
    result = run(engine, config, path)
    assert result.reasons == {"unparseable_timestamp": 3}
    mapping = tmp_path / "utc.toml"
    mapping.write_text('[timestamps]\nutc_offset = "Z"\n')
    result = run(engine, config, path, mapping=mapping)
    assert result.accepted == 2
    assert transfers(engine, result).loc[0, "timestamp"] == pd.Timestamp("2024-05-01 06:30:00")


def test_parquet_directory_numbers_rows_across_files(engine, config, tmp_path):
    frame = _frame()
    (tmp_path / "d" / "month=1").mkdir(parents=True)
    (tmp_path / "d" / "month=2").mkdir(parents=True)
    frame.iloc[:2].to_parquet(tmp_path / "d" / "month=1" / "part-0.parquet")
    frame.iloc[2:].to_parquet(tmp_path / "d" / "month=2" / "part-0.parquet")
    result = run(engine, config, tmp_path / "d")
    assert result.input_format == "parquet-dir"
    assert (result.rows_in, result.accepted) == (3, 2)
    assert list(quarantine(engine, result)["row_number"]) == [3]
    assert list(transfers(engine, result)["row_number"]) == [1, 2]


def test_bom_and_crlf_line_breaks(engine, config, tmp_path):
    path = tmp_path / "win.csv"
    lines = [HEADER, with_id(csv_line(BASE), "A"), with_id(csv_line(BASE), "B").replace("school fees", '"two\r\nlines"')]
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode())
    result = run(engine, config, path)
    t = transfers(engine, result)
    assert (result.rows_in, result.accepted, result.notes) == (2, 2, [])
    assert result.columns_used["txn_id"] == "txn_id"
    assert list(t["reference"]) == ["school fees", "two\r\nlines"] and list(t["row_number"]) == [1, 2]


def test_semicolon_delimiter_is_detected(engine, config, tmp_path):
    path = tmp_path / "semi.csv"
    row = {**BASE, "amount": "1,500.00"}
    path.write_text(HEADER.replace(",", ";") + "\n" + ";".join(row[c] for c in COLUMN_NAMES) + "\n")
    result = run(engine, config, path)
    assert result.accepted == 1 and transfers(engine, result).loc[0, "amount"] == 1500.0


# ---- files that cannot be read: one-line InputError -------------------------------------------
def _error(engine, config, path, **kw) -> str:
    with pytest.raises(InputError) as info:
        run(engine, config, path, **kw)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_error_file_not_found(engine, config, tmp_path):
    assert _error(engine, config, tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'}: file not found"


def test_error_empty_file(engine, config, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert _error(engine, config, path) == f"{path}: file is empty"
    path.write_text("\n\n  \n")
    assert _error(engine, config, path) == f"{path}: file is empty"


def test_error_header_only(engine, config, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text(HEADER + "\n")
    assert _error(engine, config, path) == f"{path}: no data rows (only a header)"


def test_error_binary_junk(engine, config, tmp_path):
    path = tmp_path / "junk.csv"
    path.write_bytes(bytes(range(256)) * 4)
    assert _error(engine, config, path) == f"{path}: binary data, not a CSV or Parquet file"


def test_error_excel_and_utf16(engine, config, tmp_path):
    xlsx = tmp_path / "book.xlsx"
    xlsx.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert "ZIP archive" in _error(engine, config, xlsx)
    u16 = tmp_path / "u16.csv"
    u16.write_bytes((HEADER + "\n").encode("utf-16"))
    assert _error(engine, config, u16) == f"{u16}: UTF-16 text; save it as a UTF-8 CSV"


def test_error_fake_parquet_and_fake_gzip(engine, config, tmp_path):
    pq = tmp_path / "fake.parquet"
    pq.write_text(HEADER + "\n")
    assert _error(engine, config, pq) == f"{pq}: not a Parquet file (no PAR1 magic bytes)"
    gz = tmp_path / "fake.csv.gz"
    gz.write_text(HEADER + "\n")
    assert _error(engine, config, gz) == f"{gz}: not a gzip file (no gzip magic bytes)"
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x01" * 64)
    assert _error(engine, config, broken).startswith(f"{broken}: cannot be read as Parquet (")


def test_error_parquet_corrupt_inside_and_empty_parquet(engine, config, tmp_path):
    frame = pd.DataFrame({c: [f"{c}-{i}" for i in range(2000)] for c in COLUMN_NAMES})
    path = tmp_path / "corrupt.parquet"
    frame.to_parquet(path, compression="snappy")
    data = bytearray(path.read_bytes())
    for i in range(200, 1200):  # data pages, well before the footer
        data[i] = 0xFF
    path.write_bytes(bytes(data))
    assert _error(engine, config, path).startswith(f"{path}: cannot be read (")
    empty = tmp_path / "empty.parquet"
    frame.iloc[:0].to_parquet(empty)
    assert _error(engine, config, empty) == f"{empty}: no rows"


def test_error_directory_without_parquet(engine, config, tmp_path):
    (tmp_path / "d").mkdir()
    assert _error(engine, config, tmp_path / "d") == f"{tmp_path / 'd'}: directory holds no .parquet files"


def test_error_missing_required_columns(engine, config, tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("txn_id,when,amount,currency,sender_id,receiver_id,sender_country\nA,x,1,USD,S,R,US\n")
    assert _error(engine, config, path) == (
        f"{path}: missing required column(s) timestamp, receiver_country (the file has: txn_id, when, "
        "amount, currency, sender_id, receiver_id, sender_country); map other names with --mapping"
    )


def test_error_duplicate_header_name(engine, config, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(HEADER + ",amount\n" + csv_line(BASE) + ",1\n")
    assert _error(engine, config, path) == f"{path}: column 'amount' appears twice in the header"


def test_error_mapping_names_a_column_not_in_the_file(engine, config, tmp_path):
    path = write_rows(tmp_path, [{}])
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\n"Sent At" = "timestamp"\n')
    with pytest.raises(InputError) as info:
        run(engine, config, path, mapping=mapping)
    message = str(info.value)
    assert message.startswith(f"{mapping}: column 'Sent At' (mapped to timestamp) is not in {path} (its columns: ")
    assert "\n" not in message
