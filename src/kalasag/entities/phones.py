"""Phone numbers to E.164 with `phonenumbers` (Google's libphonenumber metadata).

Only the *distinct* (phone, country) pairs of a scan are parsed in Python; the result is a small
lookup table that the engine joins back (see `phone_lookup`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pandas as pd
import phonenumbers
from phonenumbers import NumberParseException

_LETTERS = re.compile(r"[A-Za-z]")
_ALLOWED = re.compile(r"^[0-9+()\-./\s]+$")
_DATE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\s*$")
_AMOUNT = re.compile(r"^\s*[+-]?\d{1,3}(,\d{3})*\.\d{1,2}\s*$|^\s*[+-]?\d+\.\d{1,2}\s*$")


@dataclass(frozen=True)
class PhoneResult:
    e164: str | None
    status: str  # "valid", "possible", or why it was refused (never a guess)


def _e164(num: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def classify_phone(raw: object, default_region: str | None = "PH", *, strict_regions: tuple[str, ...] = ("PH",)) -> PhoneResult:
    """E.164 form of a typed phone number and how sure we are.

    `default_region` is the account's country (ISO alpha-2): it decides how a national form
    ("0917 123 4567") is read. Accepted: numbers that libphonenumber calls valid; numbers that
    only have a possible length, except in `strict_regions` (the Philippines by default, where
    the metadata of mobile and landline ranges is complete). Refused, with the reason as
    `status`: empty, letters, dates, amounts, too few/many digits, placeholders (one or two
    distinct digits), unparseable, impossible."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return PhoneResult(None, "empty")
    text = str(raw).strip()
    if not text:
        return PhoneResult(None, "empty")
    if _LETTERS.search(text):
        return PhoneResult(None, "letters")
    if _DATE.match(text):
        return PhoneResult(None, "date")
    if _AMOUNT.match(text):
        return PhoneResult(None, "amount")
    if not _ALLOWED.match(text):
        return PhoneResult(None, "characters")
    digits = re.sub(r"\D", "", text)
    if len(digits) < 7 or len(digits) > 15:
        return PhoneResult(None, "length")
    region = (default_region or "").upper() or None
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        region = None
    # candidate readings, most literal first; each is parsed only when the ones before it are not
    # valid (the first valid reading wins, so the later ones would not change the answer)
    readings: list[tuple[str, str | None]] = []
    if text.startswith("+"):
        readings.append((text, None))
    else:
        if digits.startswith("00"):
            readings.append(("+" + digits[2:], None))
        national = (text, region) if region else None
        # the country code typed without the plus ("63917…", "619057…")
        plus = ("+" + digits, None)
        cc = str(phonenumbers.country_code_for_region(region)) if region else ""
        order = [plus, national] if cc and digits.startswith(cc) else [national, plus]
        readings.extend(r for r in order if r is not None)
    cands: list[phonenumbers.PhoneNumber] = []
    chosen, status = None, "impossible"
    for reading in readings:
        n = _parse(*reading)
        if n is None:
            continue
        cands.append(n)
        if phonenumbers.is_valid_number(n):
            chosen, status = n, "valid"
            break
    if not cands:
        return PhoneResult(None, "unparseable")
    if chosen is None:
        for n in cands:
            rc = phonenumbers.region_code_for_country_code(n.country_code)
            if phonenumbers.is_possible_number(n) and rc not in strict_regions:
                chosen, status = n, "possible"
                break
        else:
            return PhoneResult(None, "invalid" if any(phonenumbers.is_possible_number(n) for n in cands) else "impossible")
    nsn = phonenumbers.national_significant_number(chosen)
    if len(set(nsn)) <= 2:
        return PhoneResult(None, "placeholder")
    return PhoneResult(_e164(chosen), status)


def normalize_phone(raw: object, default_region: str | None = "PH") -> str | None:
    """E.164 string ("+639171234567") or None when the text is not a usable phone number."""
    return classify_phone(raw, default_region).e164


# parsing costs ~50-100 µs per number in pure Python: from this many distinct pairs on, the work is
# spread over one process per core (same answers, in the same order)
PARALLEL_MIN_PAIRS = 50_000


# keys the parsing processes of one pool parse before the pool is replaced (PhoneParser.classify)
KEYS_PER_POOL = 2_000_000


def _classify_keys(keys: list[tuple[str, str]], strict_regions: tuple[str, ...]) -> list[tuple[str | None, str]]:
    out = []
    for raw, region in keys:
        r = classify_phone(raw, region, strict_regions=strict_regions)
        out.append((r.e164, r.status))
    return out


class PhoneParser:
    """Parses (phone, region) keys, in one spawned process per core once a call brings
    PARALLEL_MIN_PAIRS keys or more. A context manager: the processes start at the first large call
    and serve every later one (a scan parses its phones in batches), and stop at exit."""

    def __init__(self, strict_regions: tuple[str, ...] = ("PH",), workers: int | None = None) -> None:
        self.strict_regions = tuple(strict_regions)
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
        self._pool = None
        self._parsed = 0   # keys parsed by the current pool

    def __enter__(self) -> PhoneParser:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def classify(self, keys: list[tuple[str, str]]) -> list[tuple[str | None, str]]:
        if self.workers <= 1 or len(keys) < PARALLEL_MIN_PAIRS:
            return _classify_keys(keys, self.strict_regions)
        if self._pool is not None and self._parsed >= KEYS_PER_POOL:
            # a parsing process keeps about 250 bytes per number it has parsed (inside `phonenumbers`;
            # where was not found): at 100M transfers (16M numbers) the two grew by 5 GB. So the
            # processes are replaced once they have parsed KEYS_PER_POOL keys (a new pool starts in
            # about a second). Not max_tasks_per_child: on Python 3.11 that pool hangs
            self._pool.shutdown()
            self._pool = None
        if self._pool is None:
            self._parsed = 0
            from concurrent.futures import ProcessPoolExecutor
            import multiprocessing

            # "spawn": the parent holds engine threads (DuckDB, Spark), which a forked child must not inherit
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        size = -(-len(keys) // (self.workers * 4))
        chunks = [keys[i:i + size] for i in range(0, len(keys), size)]
        parts = self._pool.map(_classify_keys, chunks, [self.strict_regions] * len(chunks))
        out = [r for part in parts for r in part]
        self._parsed += len(keys)
        return out


def phone_frame(pairs: pd.DataFrame, default_region: str = "PH", strict_regions: tuple[str, ...] = ("PH",),
                *, workers: int | None = None, parser: PhoneParser | None = None) -> pd.DataFrame:
    """Distinct (phone_raw, country) pairs → phone_raw, country, phone_e164, phone_status.
    `workers`: processes that parse (None: one per core, when there are PARALLEL_MIN_PAIRS or more);
    `parser`: a running PhoneParser to use instead (its strict regions and processes)."""
    keys = [(raw, country if isinstance(country, str) else default_region)
            for raw, country in zip(pairs["phone_raw"].tolist(), pairs["country"].tolist())]
    distinct = list(dict.fromkeys(keys))
    if parser is None:
        with PhoneParser(tuple(strict_regions), workers) as own:
            results = own.classify(distinct)
    else:
        results = parser.classify(distinct)
    done = dict(zip(distinct, results))
    e164 = [done[k][0] for k in keys]
    status = [done[k][1] for k in keys]
    out = pairs[["phone_raw", "country"]].copy()
    # plain object columns with None (not pd.NA): every engine (DuckDB, Spark) reads them
    out["phone_e164"] = pd.Series(e164, dtype=object)
    out["phone_status"] = pd.Series(status, dtype=object)
    return out
