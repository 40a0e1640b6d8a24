"""`validate_record`: validate ONE incoming transfer exactly as batch ingest validates a CSV row.

    from kalasag.ingest import validate_record, RecordRejected
    try:
        rec = validate_record({"txn_id": "T1", "timestamp": "2024-05-01T14:30:00+08:00", ...},
                              config, now=datetime.now(UTC))
    except RecordRejected as exc:
        exc.reason, exc.field, exc.message  # a kalasag.model.QUARANTINE_REASONS code, as in batch

The real-time service calls this once per transfer, so it is plain Python (no Ibis): the batch rules of
`kalasag.ingest.validate.build_checked` (the Ibis expression) restated over scalars, with the same reason
codes in the same order (CHECK_ORDER), the same parsing (the batch regexes, RE2 semantics), the same
detail messages, and the same FX table and nearest-month rule (the `FxTable` that `load_fx` returns). A
property test (tests/test_record_validation.py) holds the two to row-by-row agreement.

A record is a mapping from canonical column names to JSON values. Rules beyond a CSV row's:

- A value that is `None` or absent is an empty field. A text field takes a string or an integer (its
  decimal text, as a CSV would hold it); `amount` also takes a number (int, float, Decimal: never a bool).
  Any other type (bool, float in a text field, list, object) is `malformed_row` naming the field: the
  record could not be read, like a CSV line that cannot be parsed. So is a record that is not a mapping.
- Keys are the canonical names, exactly (no case folding: JSON has no header to normalize). Other keys
  are ignored, as batch ignores extra columns (including `amount_usd`, `fx_rate`, `ts_epoch`, which are
  always recomputed, so the output of validate_record validates to itself). When a required field is
  missing and an ignored key matches it ignoring case, the message says so.
- No mapping file: no value maps and no default UTC offset (a timestamp must carry its offset).
- `duplicate_txn_id` is not checked here (the service's store decides it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

from kalasag.ingest.fx import FxTable, fx_month_text, load_fx, nearest_fx_month
from kalasag.ingest.reference import country_codes, currency_codes
from kalasag.ingest.validate import (
    AMOUNT_PATTERN,
    AMOUNT_PATTERN_THOUSANDS,
    MAX_OFFSET_MINUTES,
    TIMESTAMP_PATTERN,
)
from kalasag.model.config import IngestConfig, KalasagConfig
from kalasag.model.schema import CHANNELS, COLUMN_NAMES, REQUIRED_COLUMNS

__all__ = ["RecordRejected", "validate_record"]


class RecordRejected(ValueError):
    """One transfer refused: `reason` is a kalasag.model.QUARANTINE_REASONS code, `field` the canonical
    column at fault (None when the record as a whole is), `message` the batch quarantine's detail."""

    def __init__(self, reason: str, field: str | None, message: str) -> None:
        super().__init__(reason, field, message)
        self.reason = reason
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


# --- the batch patterns, with RE2's semantics in Python's re ----------------------------------------
# RE2 (DuckDB's regex engine): `\d` is ASCII, `\s` is [\t\n\f\r ] (no \v), `$` only matches at the very
# end (Python's also matches before a final newline).
def _re2(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace(r"\s", r"[\t\n\f\r ]").removesuffix("$") + r"\Z", re.ASCII)


_TS: Final = _re2(TIMESTAMP_PATTERN)
_AMOUNT: Final = _re2(AMOUNT_PATTERN)
_AMOUNT_THOUSANDS: Final = _re2(AMOUNT_PATTERN_THOUSANDS)
_STRIP: Final = " \t\n\r\x0b\x0c"  # what Ibis's strip() trims in DuckDB (TRIM(x, ' \t\n\r\v\f'))
_SHOW: Final = 80
_CHANNELS: Final = frozenset(CHANNELS)
_CHANNEL_LIST: Final = ", ".join(CHANNELS)
_TEXT_COLUMNS: Final = tuple(c for c in COLUMN_NAMES if c != "amount")
_ORDER: Final = (*COLUMN_NAMES, "amount_usd", "fx_rate", "ts_epoch")
_required_texts: Final = itemgetter(*(c for c in REQUIRED_COLUMNS if c != "amount"))
_US_PER_DAY: Final = 86_400_000_000
_US_PER_MIN: Final = 60_000_000


def _show(value: str | None) -> str:
    v = value or ""
    return "'" + (v[:_SHOW] + "…" if len(v) > _SHOW else v) + "'"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (float, Decimal)):
        return "a decimal number"
    return "a " + type(value).__name__


def _int_text(value: int, name: str) -> str:
    try:
        return str(value)
    except ValueError:  # beyond Python's int-to-str digit limit (4300 digits)
        raise RecordRejected("malformed_row", name, f"{name} is an integer too long to read") from None


def _text(record: Mapping[str, Any], name: str) -> str | None:
    """Trimmed text of a field, None when absent or empty (batch `clean`, without value maps)."""
    v = record.get(name)
    if v is None:
        return None
    if type(v) is not str:
        if isinstance(v, str):
            v = str(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            v = _int_text(v, name)
        else:
            raise RecordRejected(
                "malformed_row", name, f"{name} must be a string (or an integer), not {_type_name(v)}"
            )
    if v and (v[0] <= " " or v[-1] <= " "):
        v = v.strip(_STRIP)
    return v or None


# DuckDB's upper()/lower() use Unicode *simple* case mapping (one code point to one): 'ﬁ' stays 'ﬁ',
# where Python's str.upper() gives 'FI' (a valid country code!). These give DuckDB's results.
_UPPER_SPECIAL: Final = {"ß": "ẞ"}
_LOWER_SPECIAL: Final = {"İ": "i"}


def _upper(s: str) -> str:
    if s.isascii():
        return s.upper()
    out = []
    for ch in s:
        u = _UPPER_SPECIAL.get(ch) or ch.upper()
        out.append(u if len(u) == 1 else ch)
    return "".join(out)


def _lower(s: str) -> str:
    if s.isascii():
        return s.lower()
    out = []
    for ch in s:
        u = _LOWER_SPECIAL.get(ch) or ch.lower()
        out.append(u if len(u) == 1 else ch)
    return "".join(out)


# --- calendar arithmetic (proleptic Gregorian, astronomical years: DuckDB's 0000 is 1 BC) ----------
def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (H. Hinnant's algorithm; valid for any year)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


_MONTH_DAYS: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _month_days(y: int, m: int) -> int:
    if m == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
        return 29
    return _MONTH_DAYS[m]


def _year_text(y: int) -> str:
    return f"{y:04d}" if y >= 0 else str(y)  # DuckDB's strftime('%Y') of a year before 1 BC: '-1'


# Transfers of a stream fall on few distinct days: the day arithmetic is cached both ways.
_CACHE_MAX: Final = 20_000
_DATE_DAYS: dict[str, int | None] = {}  # 'YYYY-MM-DD' -> days since the epoch (None: not a date)
_DAY_INFO: dict[int, tuple[str, int]] = {}  # days since the epoch -> ('YYYY-MM-DD', year * 12 + month - 1)
_2D: Final = tuple(f"{i:02d}" for i in range(60))


def _date_days(date: str) -> int | None:
    days = _DATE_DAYS.get(date, -1 << 62)
    if days != -1 << 62:
        return days
    y, mo, d = int(date[0:4]), int(date[5:7]), int(date[8:10])
    days = _days_from_civil(y, mo, d) if 1 <= mo <= 12 and 1 <= d <= _month_days(y, mo) else None
    if len(_DATE_DAYS) >= _CACHE_MAX:
        _DATE_DAYS.clear()
    _DATE_DAYS[date] = days
    return days


def _day_info(days: int) -> tuple[str, int]:
    info = _DAY_INFO.get(days)
    if info is None:
        y, m, d = _civil_from_days(days)
        info = (f"{_year_text(y)}-{m:02d}-{d:02d}", y * 12 + m - 1)
        if len(_DAY_INFO) >= _CACHE_MAX:
            _DAY_INFO.clear()
        _DAY_INFO[days] = info
    return info


def _clock(us: int, sep: str, fraction: bool) -> tuple[str, int]:
    """('YYYY-MM-DD' sep 'hh:mm:ss[.ffffff]', year * 12 + month - 1) of microseconds since the epoch."""
    days, rest = divmod(us, _US_PER_DAY)
    date, month = _day_info(days)
    sec, micro = divmod(rest, 1_000_000)
    hh, sec = divmod(sec, 3600)
    mi, ss = divmod(sec, 60)
    text = date + sep + _2D[hh] + ":" + _2D[mi] + ":" + _2D[ss]
    if fraction and micro:
        text += f".{micro:06d}"
    return text, month


def _plain_utc(us: int) -> str:
    return _clock(us, " ", False)[0]


def _parse_timestamp(text: str) -> tuple[int | None, str | None]:
    """(microseconds since the epoch, UTC) or (None, detail): batch `timestamp_from_parts`."""
    m = _TS.match(text)
    if m is None:
        return None, f"timestamp {_show(text)} is not an ISO 8601 date-time (e.g. 2024-05-01T14:30:00+08:00)"
    date, hm, ss, frac, off = m.groups()
    if not off:
        return None, (
            f"timestamp {_show(text)} has no UTC offset (add Z or +hh:mm, or set [timestamps] "
            "utc_offset in the mapping file)"
        )
    days = _date_days(date)
    h, mi = int(hm[0:2]), int(hm[3:5])
    sec = int(ss) if ss else 0
    micro = int(frac[:6].ljust(6, "0")) if frac else 0
    valid = days is not None and mi <= 59 and sec <= 59
    if valid and h > 23:  # DuckDB reads 24:00:00 as midnight at the end of the day
        valid = h == 24 and mi == 0 and sec == 0 and micro == 0
    if not valid:
        return None, f"timestamp {_show(text)} is not a valid calendar date and time"
    if off == "Z" or off == "z":
        minutes = 0
    else:
        hh = int(off[1:3])
        mm = int(off[-2:]) if len(off) > 3 else 0
        span = hh * 60 + mm
        if span > MAX_OFFSET_MINUTES or mm >= 60:
            return None, f"timestamp {_show(text)} has a UTC offset outside -14:00..+14:00"
        minutes = -span if off[0] == "-" else span
    return days * _US_PER_DAY + ((h * 60 + mi - minutes) * 60 + sec) * 1_000_000 + micro, None


def _amount_number(value: Any) -> float | None:
    """A JSON number as a float (None: not finite)."""
    try:
        f = float(value)
    except (OverflowError, ValueError):  # 10**400; Decimal('sNaN')
        return None
    return f if math.isfinite(f) else None


# --- FX: the FxTable as dictionaries, built once per table ------------------------------------------
class _FxLookup:
    """Month-indexed rates (year * 12 + month - 1) of an FxTable, and each currency's month range."""

    __slots__ = ("rates", "ranges", "table")

    def __init__(self, table: FxTable) -> None:
        frame = table.frame
        months = [int(s[:4]) * 12 + int(s[5:7]) - 1 for s in frame["month"]]
        self.table = table
        self.rates: dict[tuple[str, int], float] = {}
        self.ranges: dict[str, tuple[int, int]] = {}
        for cur, month, rate in zip(frame["currency"], months, frame["usd_per_unit"], strict=True):
            self.rates[(cur, month)] = float(rate)
            lo, hi = self.ranges.get(cur, (month, month))
            self.ranges[cur] = (min(lo, month), max(hi, month))

    def rate(self, currency: str, month: int) -> float | None:
        """Rate of the month, clamped into the currency's months (nearest month); None: no rate."""
        span = self.ranges.get(currency)
        if span is None:
            return None
        lo, hi = span
        return self.rates.get((currency, nearest_fx_month(month, lo, hi)))


_FX_CACHE: dict[Any, _FxLookup] = {}
_FX_CACHE_MAX: Final = 8


def _fx_lookup(fx: FxTable | str | Path | None) -> _FxLookup:
    """The lookup of an FxTable (by identity), of an `--fx` path (read once) or of the bundled table."""
    key = id(fx) if isinstance(fx, FxTable) else fx  # None: bundled; a path: as given
    hit = _FX_CACHE.get(key)
    if hit is not None and (not isinstance(fx, FxTable) or hit.table is fx):
        return hit
    table = fx if isinstance(fx, FxTable) else load_fx(fx)
    if len(_FX_CACHE) >= _FX_CACHE_MAX:
        _FX_CACHE.pop(next(iter(_FX_CACHE)))
    lookup = _FX_CACHE[key] = _FxLookup(table)
    return lookup


_EPOCH_AWARE: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE: Final = datetime(1970, 1, 1)
_ONE_US: Final = timedelta(microseconds=1)


def _now_us(now: datetime) -> int:
    """Microseconds since the epoch of `now` (naive: UTC)."""
    return (now - (_EPOCH_NAIVE if now.tzinfo is None else _EPOCH_AWARE)) // _ONE_US


def _missing_hint(record: Mapping[str, Any], missing: list[str]) -> str:
    folded = {}
    for k in record:
        if isinstance(k, str) and k not in COLUMN_NAMES:
            folded.setdefault(k.strip().lower(), k)
    hints = [f"'{folded[c]}' is not '{c}'" for c in missing if c in folded]
    return f" (field names are case-sensitive: {'; '.join(hints)})" if hints else ""


def validate_record(
    record: Mapping[str, Any],
    config: KalasagConfig | IngestConfig,
    *,
    now: datetime,
    fx: FxTable | str | Path | None = None,
) -> dict[str, Any]:
    """The canonical record of one transfer, or RecordRejected with batch ingest's reason and detail.

    Returns TRANSFER_COLUMNS (absent optional ones None; `timestamp` as ISO 8601 UTC text
    `YYYY-MM-DDThh:mm:ss[.ffffff]Z`, `amount` a float) + `amount_usd`, `fx_rate`, `ts_epoch`.
    `now` is the reference for future_timestamp (naive = UTC). `fx`: an FxTable, the path of an
    `--fx` CSV (read once, then cached) or None for the bundled table. Checks, in batch order:
    missing_required_field, unparseable_timestamp, future_timestamp, non_numeric_amount,
    non_positive_amount, unknown_currency, invalid_country_code, invalid_channel, no_fx_rate
    (malformed_row first, for a value of the wrong JSON type or a record that is not a mapping).
    """
    if record.__class__ is not dict and not isinstance(record, Mapping):
        raise RecordRejected("malformed_row", None, f"a transfer must be an object, not {_type_name(record)}")
    cfg = config.ingest if isinstance(config, KalasagConfig) else config

    out: dict[str, Any] = dict.fromkeys(_ORDER)
    get = record.get
    for name in _TEXT_COLUMNS:  # batch `clean` (without value maps); absent and empty stay None
        v = get(name)
        if v.__class__ is str:
            if v and (v[0] <= " " or v[-1] <= " "):
                v = v.strip(_STRIP)
            if v:
                out[name] = v
        elif v is not None:
            out[name] = _text(record, name)
    raw_amount = get("amount")
    amount_num: Any = None
    if raw_amount is None or isinstance(raw_amount, str):
        amount_text = _text(record, "amount")
    elif isinstance(raw_amount, (int, float, Decimal)) and not isinstance(raw_amount, bool):
        amount_text = _int_text(raw_amount, "amount") if isinstance(raw_amount, int) else str(raw_amount)
        amount_num = raw_amount
    else:
        raise RecordRejected(
            "malformed_row", "amount", f"amount must be a number or a string, not {_type_name(raw_amount)}"
        )

    if amount_text is None or None in _required_texts(out):
        missing = [c for c in REQUIRED_COLUMNS if (amount_text if c == "amount" else out[c]) is None]
        raise RecordRejected(
            "missing_required_field",
            missing[0],
            "required field(s) empty: " + ", ".join(missing) + _missing_hint(record, missing),
        )

    ts_text = out["timestamp"]
    utc, detail = _parse_timestamp(ts_text)
    if utc is None:
        raise RecordRejected("unparseable_timestamp", "timestamp", detail)

    now_us = _now_us(now)
    tolerance = cfg.future_tolerance_minutes
    if utc > now_us + tolerance * _US_PER_MIN:
        raise RecordRejected(
            "future_timestamp",
            "timestamp",
            f"timestamp {_show(ts_text)} is {_plain_utc(utc)} UTC, after the run time "
            f"{_plain_utc(now_us)} UTC + {tolerance} min tolerance",
        )

    if amount_num is not None:
        amount = _amount_number(amount_num)
    else:
        pattern = _AMOUNT_THOUSANDS if cfg.amount_thousands_separator else _AMOUNT
        amount = None
        if pattern.match(amount_text):
            value = float(amount_text.replace(",", ""))
            amount = value if math.isfinite(value) else None
    if amount is None:
        raise RecordRejected("non_numeric_amount", "amount", f"amount {_show(amount_text)} is not a number")
    if amount <= 0:
        raise RecordRejected("non_positive_amount", "amount", f"amount {_show(amount_text)} is not positive")

    currency = out["currency"] = _upper(out["currency"])
    if currency not in currency_codes():
        raise RecordRejected(
            "unknown_currency", "currency", f"currency {_show(currency)} is not an ISO 4217 code"
        )
    countries = country_codes()
    for side in ("sender_country", "receiver_country"):
        code = out[side] = _upper(out[side])
        if code not in countries:
            raise RecordRejected(
                "invalid_country_code", side, f"{side} {_show(code)} is not an ISO 3166 alpha-2 code"
            )
    channel = out["channel"]
    if channel is not None:
        channel = out["channel"] = _lower(channel)
        if channel not in _CHANNELS:
            raise RecordRejected(
                "invalid_channel", "channel", f"channel {_show(channel)} is not one of {_CHANNEL_LIST}"
            )

    iso, month = _clock(utc, "T", True)
    rate = _fx_lookup(fx).rate(currency, month)
    if rate is None:
        raise RecordRejected(
            "no_fx_rate",
            "currency",
            f"no FX rate for {currency} in {fx_month_text(month)} (not guessed; add it with --fx)",
        )

    out["timestamp"] = iso + "Z"
    out["amount"] = amount
    out["amount_usd"] = amount * rate
    out["fx_rate"] = rate
    out["ts_epoch"] = utc // 1_000_000
    return out
