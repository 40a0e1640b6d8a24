"""Property tests (hypothesis) of the timestamp and amount parsers and of ingest's bookkeeping."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ibis
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalasag.engine import connect
from kalasag.ingest import ingest
from kalasag.ingest.validate import TIMESTAMP_PATTERN, parse_amount, parse_timestamp
from kalasag.model.config import load_config
from kalasag.model.schema import COLUMN_NAMES

ENGINE = connect(threads=2)
CONFIG = load_config()
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@st.composite
def iso_timestamp(draw) -> tuple[str, datetime]:
    """A valid ISO 8601 string with an offset, and the UTC instant it denotes (microseconds)."""
    local = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2035, 12, 31)))
    seconds_shown = draw(st.booleans()) or local.second or local.microsecond
    if not seconds_shown:
        local = local.replace(second=0, microsecond=0)
    digits = draw(st.integers(0, 9)) if seconds_shown else 0
    if digits == 0:
        local = local.replace(microsecond=0)
    frac_text = ""
    if digits:  # up to 9 digits are written; the instant keeps the first 6 (microseconds)
        micro = f"{local.microsecond:06d}"
        frac_text = draw(st.sampled_from([".", ","])) + (micro + "987")[:digits]
        local = local.replace(microsecond=int(micro[: min(digits, 6)].ljust(6, "0")))
    offset = draw(st.integers(-14 * 60, 14 * 60))
    sign = "-" if offset < 0 else "+"
    hh, mm = divmod(abs(offset), 60)
    styles = [f"{sign}{hh:02d}:{mm:02d}", f"{sign}{hh:02d}{mm:02d}"]
    if mm == 0:
        styles.append(f"{sign}{hh:02d}")
    if offset == 0:
        styles += ["Z", "z"]
    off_text = draw(st.sampled_from(styles))
    sep = draw(st.sampled_from(["T", " "]))
    clock = local.strftime("%H:%M:%S") if seconds_shown else local.strftime("%H:%M")
    text = f"{local:%Y-%m-%d}{sep}{clock}{frac_text}{off_text}"
    return text, local - timedelta(minutes=offset)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(iso_timestamp(), min_size=1, max_size=40))
def test_any_valid_iso_timestamp_parses_to_its_utc_instant(cases):
    t = ibis.memtable({"s": [c[0] for c in cases]}, schema={"s": "string"})
    p = parse_timestamp(t.s)
    got = ENGINE.fetch(t.select(utc=p["utc"], detail=p["detail"]))
    assert got["detail"].isna().all(), got[got["detail"].notna()]
    for (text, expected), value in zip(cases, got["utc"], strict=True):
        assert pd.Timestamp(value) == pd.Timestamp(expected), text


def _oracle(text: str) -> datetime | None:
    """An independent reading of ISO 8601 with offset (Python datetime arithmetic), or None."""
    m = re.fullmatch(TIMESTAMP_PATTERN, text, flags=re.ASCII)  # RE2's \\d is ASCII too
    if not m or not m.group(5):
        return None
    date, clock, seconds, frac, off = m.groups()
    y, mo, d = (int(x) for x in date.split("-"))
    h, mi = (int(x) for x in clock.split(":"))
    sec = int(seconds or 0)
    micro = int((frac or "")[:6].ljust(6, "0"))
    if off in ("Z", "z"):
        minutes = 0
    else:
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        hh, mm = int(digits[:2]), int(digits[2:] or 0)
        if mm > 59 or hh * 60 + mm > 14 * 60:
            return None
        minutes = sign * (hh * 60 + mm)
    try:
        if h == 24 and mi == 0 and sec == 0 and micro == 0:  # 24:00:00 = end of the day
            local = datetime(y, mo, d) + timedelta(days=1)
        else:
            local = datetime(y, mo, d, h, mi, sec, micro)
    except ValueError:
        return None
    return local - timedelta(minutes=minutes)


NEAR_ISO = st.from_regex(
    r"\A[12][0-9]{3}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-6][0-9](:[0-6][0-9])?([.,][0-9]{1,9})?"
    r"( ?(Z|z|[+-][01][0-9](:?[0-6][0-9])?))?\Z"
)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(NEAR_ISO, st.text(max_size=30)), min_size=1, max_size=40))
def test_parser_agrees_with_an_independent_oracle(texts):
    """Near-ISO and random text: parsed exactly when the oracle parses it, to the same instant."""
    t = ibis.memtable({"s": texts}, schema={"s": "string"})
    p = parse_timestamp(t.s)
    got = ENGINE.fetch(t.select(utc=p["utc"], detail=p["detail"]))
    for text, utc, detail in zip(texts, got["utc"], got["detail"], strict=True):
        expected = _oracle(text)
        assert pd.isna(utc) == (expected is None), (text, utc, expected)
        assert pd.isna(detail) != pd.isna(utc), text  # a failure always says why
        if expected is not None:
            assert pd.Timestamp(utc) == pd.Timestamp(expected), text


@st.composite
def amount_text(draw) -> tuple[str, float]:
    value = draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2))
    grouped = draw(st.booleans())
    text = f"{value:,.2f}" if grouped else f"{value:.2f}"
    if draw(st.booleans()):
        text = text.rstrip("0").rstrip(".") if "." in text else text
    return text, float(value)


@settings(max_examples=30, deadline=None)
@given(st.lists(amount_text(), min_size=1, max_size=40))
def test_amounts_with_or_without_thousands_separators(cases):
    t = ibis.memtable({"s": [c[0] for c in cases]}, schema={"s": "string"})
    p = parse_amount(t.s, thousands=True)
    got = ENGINE.fetch(t.select(v=p["value"], ok=p["numeric"]))
    assert got["ok"].all()
    for (text, expected), value in zip(cases, got["v"], strict=True):
        assert value == expected, text


VALID = {
    "txn_id": st.sampled_from(["A", "B", "C", "D"]),
    "timestamp": st.sampled_from(["2024-05-01T14:30:00+08:00", "2024-05-01 06:30Z", "2030-01-01T00:00:00Z"]),
    "amount": st.sampled_from(["10", "1,234.50", "0", "-3"]),
    "currency": st.sampled_from(["USD", "eur", "TWD", "XYZ"]),
    "channel": st.sampled_from(["mto", "", "Bank", "wire"]),
    "sender_country": st.sampled_from(["US", "uk", "DE"]),
    "receiver_country": st.just("PH"),
}
# No bare carriage return: csv.writer leaves it unquoted and a stray CR splits a record in two
# (both halves quarantined, see test_stray_carriage_return_splits_a_record in test_ingest.py).
JUNK = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=12)


@st.composite
def rows(draw) -> list[list[str] | str]:
    out: list[list[str] | str] = []
    for _ in range(draw(st.integers(1, 20))):
        kind = draw(st.sampled_from(["valid", "valid", "junk", "line"]))
        if kind == "line":  # a raw line with the wrong number of fields (no quotes, not blank)
            n = draw(st.sampled_from([1, 3, 16, 20]))
            out.append(",".join(draw(st.lists(st.text("abc 12", min_size=1, max_size=4), min_size=n, max_size=n))))
            continue
        row = []
        for c in COLUMN_NAMES:
            strategy = VALID.get(c, st.sampled_from(["S1", "R1", "x"]))
            row.append(draw(JUNK if kind == "junk" and draw(st.booleans()) else strategy))
        out.append(row)
    return out


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_every_row_is_accepted_or_quarantined_exactly_once(tmp_path_factory, records):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMN_NAMES)
    for r in records:
        if isinstance(r, str):
            buf.write(r + "\n")
        else:
            writer.writerow(r)
    path = tmp_path_factory.mktemp("prop") / "p.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    result = ingest(ENGINE, path, config=CONFIG, now=NOW)
    accepted = list(ENGINE.fetch(result.transfers)["row_number"])
    quarantined = list(ENGINE.fetch(result.quarantine)["row_number"])
    assert result.rows_in == len(records)
    assert result.accepted + result.quarantined == result.rows_in
    assert sorted(accepted + quarantined) == list(range(1, len(records) + 1))
    assert sum(result.reasons.values()) == result.quarantined
