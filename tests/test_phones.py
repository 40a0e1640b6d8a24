"""Phone numbers to E.164 (kalasag.entities.phones)."""

from __future__ import annotations

import pandas as pd
import pytest

from kalasag.entities import classify_phone, normalize_phone
from kalasag.entities.phones import phone_frame

MOBILE = "+639171234567"


@pytest.mark.parametrize(
    "raw",
    [
        "09171234567", "0917 123 4567", "0917-123-4567", "(0917) 123 4567", "(0917)1234567", "0917.123.4567",
        "+63 917 123 4567", "+639171234567", "+63-917-123-4567", "+63 (917) 123-4567",
        "639171234567", "63 917 123 4567",
        "9171234567", "917-123-4567", "917 123 4567",
        " 0917 123 4567 ",
    ],
)
def test_philippine_mobile_formats(raw: str) -> None:
    r = classify_phone(raw, "PH")
    assert (r.e164, r.status) == (MOBILE, "valid")


def test_philippine_landline_and_other_networks() -> None:
    assert normalize_phone("(02) 8123 4567", "PH") == "+63281234567"
    assert normalize_phone("0998 123 4567", "PH") == "+639981234567"


def test_foreign_numbers_use_the_accounts_country() -> None:
    assert normalize_phone("(202) 555-0123", "US") == "+12025550123"
    assert normalize_phone("12025550123", "US") == "+12025550123"
    assert normalize_phone("+1 202 555 0123", "PH") == "+12025550123"      # international form wins
    assert normalize_phone("0044 7911 123456", "GB") == "+447911123456"     # 00 prefix
    assert normalize_phone("07911 123456", "GB") == "+447911123456"
    # a number of possible length outside the strict regions is kept, marked "possible"
    r = classify_phone("+61 905 756 5132", "AU")
    assert (r.e164, r.status) == ("+619057565132", "possible")
    assert normalize_phone("619057565132", "AU") == "+619057565132"         # country code without plus


@pytest.mark.parametrize(
    "raw, status",
    [
        (None, "empty"), ("", "empty"), ("   ", "empty"), (float("nan"), "empty"),
        ("N/A", "letters"), ("none", "letters"), ("0917-CALL-NOW", "letters"), ("tel 09171234567", "letters"),
        ("2025-10-01", "date"), ("01/10/2025", "date"),
        ("1,234.50", "amount"), ("450.00", "amount"),
        ("123", "length"), ("12345", "length"), ("1234567890123456789", "length"),
        ("0917#123#4567", "characters"),
        ("09999999999", "placeholder"), ("+63 999 999 9999", "placeholder"),
        ("0000000000", "invalid"), ("+63 000 000 0000", "invalid"), ("0912345678", "invalid"),
    ],
)
def test_strings_that_only_look_like_numbers(raw, status) -> None:
    r = classify_phone(raw, "PH")
    assert r.e164 is None
    assert r.status == status


def test_unknown_region_falls_back_to_international_reading() -> None:
    assert normalize_phone("+639171234567", "XX") == MOBILE
    assert normalize_phone("09171234567", None) is None  # national form without a country: not guessed


def test_phone_frame_caches_and_keeps_every_row() -> None:
    pairs = pd.DataFrame({"phone_raw": ["0917 123 4567", "N/A", "0917 123 4567", "(202) 555-0123"],
                          "country": ["PH", "PH", "PH", "US"]})
    out = phone_frame(pairs)
    assert out["phone_e164"].tolist()[0] == MOBILE
    assert pd.isna(out["phone_e164"].tolist()[1])
    assert out["phone_status"].tolist() == ["valid", "letters", "valid", "valid"]
    assert out["phone_e164"].tolist()[3] == "+12025550123"
