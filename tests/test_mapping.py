"""Mapping files: validation (one-line InputError) and their effect on ingest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from kalasag.engine import connect
from kalasag.ingest import InputError, Mapping, ingest, load_mapping
from kalasag.model.config import load_config
from kalasag.model.schema import COLUMN_NAMES

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine():
    return connect(threads=2)


def test_load_the_fixture_mapping():
    m = load_mapping(FIXTURES / "provider_map.toml")
    assert isinstance(m, Mapping)
    assert m.columns["Transaction Ref"] == "txn_id" and len(m.columns) == 13
    assert m.value_map("channel") == {"western union": "mto", "gcash": "ewallet", "bank transfer": "bank"}
    assert m.timestamps.utc_offset == "+08:00"
    assert m.csv.delimiter == ";" and m.csv.encoding == "utf-8"
    assert m.source == str(FIXTURES / "provider_map.toml")


def test_provider_export_through_the_mapping(engine):
    result = ingest(
        engine,
        FIXTURES / "provider_export.csv",
        config=load_config(),
        mapping=FIXTURES / "provider_map.toml",
        now=NOW,
    )
    t = engine.fetch(result.transfers).set_index("txn_id")
    q = engine.fetch(result.quarantine)
    assert (result.rows_in, result.accepted, result.quarantined) == (4, 3, 1)
    # 21:15 Manila (+08:00, from the mapping) is 13:15 UTC
    assert t.loc["WX-1001", "timestamp"] == pd.Timestamp("2024-03-05 13:15:00")
    assert t.loc["WX-1001", "channel"] == "mto" and t.loc["WX-1001", "sender_country"] == "US"
    assert t.loc["WX-1001", "receiver_region"] == "Cebu" and t.loc["WX-1001", "reference"] == "school fees"
    # value maps ignore case ("usa"), thousands separators accepted
    assert t.loc["WX-1002", "sender_country"] == "US" and t.loc["WX-1002", "channel"] == "ewallet"
    assert t.loc["WX-1002", "amount"] == 1200.5
    # a timestamp's own offset wins over the mapping's default: 23:45+02:00 = 21:45 UTC
    assert t.loc["WX-1003", "timestamp"] == pd.Timestamp("2024-03-07 21:45:00")
    assert t.loc["WX-1003", "channel"] == "bank"
    # an unmapped provider value is not guessed
    assert q.loc[0, "reason"] == "invalid_channel"
    assert q.loc[0, "detail"] == "channel 'courier' is not one of bank, mto, ewallet, card, crypto, other"
    # quarantine keeps the provider's own column names
    assert list(q.columns[3:]) == (FIXTURES / "provider_export.csv").read_text().splitlines()[0].split(";")
    assert q.loc[0, "Service"] == "Courier"
    assert result.columns_used["timestamp"] == "Date/Time"


def test_mapping_takes_precedence_over_a_canonical_named_column(engine, tmp_path):
    path = tmp_path / "two.csv"
    header = [*COLUMN_NAMES, "ts_utc"]
    row = ["A", "2024-01-01T08:00:00+08:00", "10", "USD", "", "S", "R", "", "", "US", "PH", "", "", "", "",
           "2024-01-01T00:00:00Z"]  # fmt: skip
    path.write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    mapping = tmp_path / "m.toml"
    mapping.write_text('[columns]\nts_utc = "timestamp"\n')
    result = ingest(engine, path, config=load_config(), mapping=mapping, now=NOW)
    assert result.columns_used["timestamp"] == "ts_utc"
    assert "column 'timestamp' ignored: the mapping takes timestamp from 'ts_utc'" in result.notes


def test_mapping_can_swap_two_canonical_columns(engine, tmp_path):
    path = tmp_path / "swap.csv"
    path.write_text(
        "txn_id,timestamp,amount,currency,sender_id,receiver_id,sender_country,receiver_country\n"
        "A,2024-01-01T00:00:00Z,7,USD,R9,S9,US,PH\n"
    )
    mapping = tmp_path / "swap.toml"
    mapping.write_text('[columns]\nsender_id = "receiver_id"\nreceiver_id = "sender_id"\n')
    result = ingest(engine, path, config=load_config(), mapping=mapping, now=NOW)
    t = engine.fetch(result.transfers)
    assert (t.loc[0, "sender_id"], t.loc[0, "receiver_id"]) == ("S9", "R9")
    assert result.notes == []


def test_config_default_mapping_fills_in_names(engine, tmp_path):
    path = tmp_path / "alias.csv"
    path.write_text(
        "txn_id,timestamp,Amt,currency,sender_id,receiver_id,sender_country,receiver_country\n"
        "A,2024-01-01T00:00:00Z,7,USD,S,R,US,PH\n"
    )
    cfg = load_config(overrides={"ingest": {"default_mapping": {"Amt": "amount"}}})
    result = ingest(engine, path, config=cfg, now=NOW)
    assert result.accepted == 1 and result.columns_used["amount"] == "Amt"


def test_encoding_option_reads_latin1(engine, tmp_path):
    path = tmp_path / "latin1.csv"
    text = (
        "txn_id,timestamp,amount,currency,sender_id,receiver_id,sender_name,sender_country,receiver_country\n"
        "A,2024-01-01T00:00:00Z,7,USD,S,R,José Núñez,US,PH\n"
    )
    path.write_bytes(text.encode("latin-1"))
    plain = ingest(engine, path, config=load_config(), now=NOW)
    assert plain.reasons == {"malformed_row": 1}  # not UTF-8: quarantined, never dropped
    assert "not utf-8" in engine.fetch(plain.quarantine).loc[0, "detail"]
    assert plain.notes == [
        '1 record(s) are not valid utf-8 text and were quarantined; if the export uses another '
        'encoding, set it (mapping file: [csv] encoding = "latin-1")'
    ]
    mapping = tmp_path / "enc.toml"
    mapping.write_text('[csv]\nencoding = "latin-1"\n')
    fixed = ingest(engine, path, config=load_config(), mapping=mapping, now=NOW)
    assert fixed.accepted == 1
    assert engine.fetch(fixed.transfers).loc[0, "sender_name"] == "José Núñez"


BAD_MAPPINGS = [
    ("", "mapping file is empty"),
    ("[columns\n", "mapping file is not valid TOML ("),
    ('[columns]\n"Amt" = "amount_usd"\n', "invalid mapping at 'columns': 'Amt' maps to 'amount_usd', which is not a canonical column"),
    ('[columns]\n"A" = "amount"\n"B" = "amount"\n', "invalid mapping at 'columns': 'A' and 'B' both map to 'amount'"),
    ('[colums]\n"A" = "amount"\n', "invalid mapping at 'colums': unknown key (allowed: [columns], [values.<column>], [timestamps], [csv])"),
    ('[timestamps]\nutc_offset = "Manila"\n', "invalid mapping at 'timestamps.utc_offset': 'Manila' is not a UTC offset like +08:00, -05:00 or Z"),
    ('[timestamps]\nutc_offset = "+15:00"\n', "invalid mapping at 'timestamps.utc_offset': '+15:00' is outside -14:00..+14:00"),
    ('[values.amount]\n"ten" = "10"\n', "invalid mapping at 'values': [values.amount]: value maps apply to"),
    ('[values.channel]\n"WU" = "mto"\n" wu" = "mto"\n', "invalid mapping at 'values': [values.channel]: 'WU' and ' wu' differ only in case/spaces"),
    ('[csv]\ndelimiter = ";;"\n', "invalid mapping at 'csv.delimiter': delimiter must be one character"),
    ('[csv]\nencoding = "ebcdic"\n', "invalid mapping at 'csv.encoding': Input should be 'utf-8', 'latin-1' or 'utf-16'"),
    ('[columns]\n"A" = 3\n', "invalid mapping at 'columns.A': Input should be a valid string"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_MAPPINGS)
def test_bad_mapping_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_mapping(path)
    got = str(info.value)
    assert got.startswith(f"{path}: {message}"), got
    assert "\n" not in got


def test_missing_mapping_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.toml: mapping file not found$"):
        load_mapping(tmp_path / "nope.toml")
