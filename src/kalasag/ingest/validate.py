"""Row validation as one Ibis expression: clean, parse, convert, and give each row its first failing reason.

Nothing here runs Python per row: every check is a column expression executed by the engine.
The checks run in the order of `CHECK_ORDER`; a row carries only the first reason that applies.
"""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir

from kalasag.ingest.fx import fx_month_text, nearest_fx_month
from kalasag.model.schema import CHANNELS, COLUMN_NAMES, REQUIRED_COLUMNS

P = "_kalasag_"  # prefix of working columns (file columns may not start with it)
ROW = P + "row"
REASON = P + "reason"
DETAIL = P + "detail"
FX_SHIFT = P + "fx_shift"  # -1: month before the currency's first FX month, +1: after its last, 0: exact

# The order in which checks apply (malformed_row is decided by the CSV reader, before all of them).
CHECK_ORDER: tuple[str, ...] = (
    "missing_required_field",
    "unparseable_timestamp",
    "future_timestamp",
    "non_numeric_amount",
    "non_positive_amount",
    "unknown_currency",
    "invalid_country_code",
    "invalid_channel",
    "no_fx_rate",
    "duplicate_txn_id",
)

# ISO 8601 calendar date and time, `T` or one space between, `hh:mm` or `hh:mm:ss` with an
# optional fraction of a second (. or ,), then an optional offset `Z`, `+hh`, `+hhmm` or `+hh:mm`
# (one space before it tolerated). Groups: date, hh:mm, ss, fraction, offset.
TIMESTAMP_PATTERN = (
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s?(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
# Plain decimal, optional sign and exponent; with `thousands`, comma groups of three digits.
AMOUNT_PATTERN = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
AMOUNT_PATTERN_THOUSANDS = r"^[+-]?(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
MAX_OFFSET_MINUTES = 14 * 60
_SHOW = 80  # characters of an offending value quoted in a detail


def barrier(t: ir.Table) -> ir.Table:
    """Stop Ibis from inlining the columns computed so far into every later use of them.

    Ibis merges stacked projections by substituting expressions, which would repeat each regex
    dozens of times in the SQL; a select holding an impure expression is never merged.
    """
    name = P + "barrier"
    return t.mutate(**{name: ibis.random()}).drop(name)


def _show(value: ir.StringValue) -> ir.StringValue:
    """'value' for a detail message (truncated, never NULL)."""
    v = value.coalesce("")
    return "'" + ibis.ifelse(v.length() > _SHOW, v.substr(0, _SHOW) + "…", v) + "'"


def clean(value: ir.StringValue, value_map: dict[str, str] | None = None) -> ir.StringValue:
    """Trim; empty -> NULL; then the mapping's value map (case-insensitive)."""
    # strip() alone is slow in DuckDB (a trim with a character set): only call it when an end is
    # whitespace or a control character (ASCII code <= 32), which is rare.
    needs = (value.ascii_str() <= 32) | (value.right(1).ascii_str() <= 32)
    v = ibis.ifelse(needs, value.strip(), value).nullif("")
    if value_map:
        v = v.lower().substitute(value_map, else_=v)
    return v


def timestamp_parts(text: ir.StringValue) -> dict[str, ir.Value]:
    """The regex groups of an ISO 8601 date-time (empty strings when it does not match)."""
    date = text.re_extract(TIMESTAMP_PATTERN, 1)
    shape = date.fill_null("") != ""  # the date group is non-empty exactly when the text matches
    minutes = text.re_extract(TIMESTAMP_PATTERN, 2)
    seconds = text.re_extract(TIMESTAMP_PATTERN, 3)
    frac = text.re_extract(TIMESTAMP_PATTERN, 4)
    given = text.re_extract(TIMESTAMP_PATTERN, 5)
    clock = minutes + ibis.ifelse(seconds == "", "", ":" + seconds)
    return {"shape": shape, "date": date, "clock": clock, "frac": frac, "given": given}


def _offset(given: ir.StringValue, default_offset: str | None) -> ir.StringValue:
    fallback = ibis.literal(default_offset, type="string") if default_offset else ibis.null("string")
    return ibis.ifelse(given == "", fallback, given)


def timestamp_from_parts(
    text: ir.StringValue, parts: dict[str, ir.Value], off: ir.StringValue
) -> dict[str, ir.Value]:
    """UTC instant (naive TIMESTAMP) and failure detail, from the regex groups and the offset."""
    shape, date, clock, frac = (parts[k] for k in ("shape", "date", "clock", "frac"))
    local_text = date + " " + clock + ibis.ifelse(frac == "", "", "." + frac.substr(0, 6))
    local = ibis.ifelse(shape, local_text, ibis.null("string")).try_cast("timestamp")
    is_z = off.upper() == "Z"
    hh = off.substr(1, 2).try_cast("int64")
    mm = ibis.ifelse(off.length() > 3, off.right(2).try_cast("int64"), 0)
    span = hh * 60 + mm
    off_ok = is_z | ((span <= MAX_OFFSET_MINUTES) & (mm < 60))
    minutes = ibis.ifelse(is_z, 0, ibis.ifelse(off.left(1) == "-", -span, span))
    utc = ibis.ifelse(local.notnull() & off_ok, local - minutes.as_interval("m"), ibis.null("timestamp"))
    shown = _show(text)
    detail = ibis.cases(
        (~shape, "timestamp " + shown + " is not an ISO 8601 date-time (e.g. 2024-05-01T14:30:00+08:00)"),
        (
            off.isnull(),
            "timestamp " + shown + " has no UTC offset (add Z or +hh:mm, or set [timestamps] "
            "utc_offset in the mapping file)",
        ),
        (local.isnull(), "timestamp " + shown + " is not a valid calendar date and time"),
        (~off_ok, "timestamp " + shown + " has a UTC offset outside -14:00..+14:00"),
        else_=ibis.null("string"),
    )
    return {"utc": utc, "detail": detail}


def parse_amount(text: ir.StringValue, thousands: bool) -> dict[str, ir.Value]:
    pattern = AMOUNT_PATTERN_THOUSANDS if thousands else AMOUNT_PATTERN
    shape = text.re_search(pattern)
    value = ibis.ifelse(shape, text.replace(",", ""), ibis.null("string")).try_cast("float64")
    ok = value.notnull() & ~value.isinf() & ~value.isnan()
    return {"value": ibis.ifelse(ok, value, ibis.null("float64")), "numeric": ok.fill_null(False)}


def build_checked(
    raw: ir.Table,
    sources: dict[str, str | None],
    *,
    value_maps: dict[str, dict[str, str]],
    default_offset: str | None,
    thousands: bool,
    now: datetime,
    tolerance_minutes: int,
    fx_rates: ir.Table,
    fx_ranges: ir.Table,
    currencies: ir.Table,
    countries: ir.Table,
) -> ir.Table:
    """One row per input row: ROW, the canonical columns, derived columns, REASON, DETAIL, FX_SHIFT.

    Every check but duplicate_txn_id: that one needs the result (see `mark_duplicates`).

    `sources` maps each canonical column to its column in `raw` (None: absent, all NULL).
    `fx_rates` has (fx_currency, fx_month, fx_rate); `fx_ranges` (fx_currency, fx_first, fx_last);
    months are integers year * 12 + month - 1. `currencies` and `countries` are tables of the known
    codes (one string column, `code`).
    """
    cols: dict[str, ir.Value] = {ROW: raw[ROW]}
    for name in COLUMN_NAMES:
        src = sources.get(name)
        value = clean(raw[src], value_maps.get(name)) if src is not None else ibis.null("string")
        if name == "channel":
            value = value.lower()
        elif name in ("currency", "sender_country", "receiver_country"):
            value = value.upper()
        cols[name] = value
    t = raw.select(**cols)

    parts = timestamp_parts(t.timestamp)
    t = barrier(t.mutate(**{P + "ts_" + k: v for k, v in parts.items()}))
    t = barrier(t.mutate(**{P + "ts_off": _offset(t[P + "ts_given"], default_offset)}))
    ts = timestamp_from_parts(t.timestamp, {k: t[P + "ts_" + k] for k in parts}, t[P + "ts_off"])
    amt = parse_amount(t.amount, thousands)
    t = barrier(
        t.mutate(
            **{
                P + "utc": ts["utc"],
                P + "ts_detail": ts["detail"],
                P + "amount": amt["value"],
                P + "numeric": amt["numeric"],
            }
        )
    )
    utc = t[P + "utc"]
    t = barrier(t.mutate(**{P + "month": utc.year().cast("int64") * 12 + utc.month().cast("int64") - 1}))

    # FX: clamp the month into the currency's range (nearest month), then look the rate up.
    j = t.left_join(fx_ranges, t.currency == fx_ranges.fx_currency).select(
        t, fx_ranges.fx_first, fx_ranges.fx_last
    )
    month = j[P + "month"]
    clamped = nearest_fx_month(month, j.fx_first, j.fx_last)
    j = j.mutate(
        **{
            P + "fx_month": clamped,
            FX_SHIFT: ibis.cases((month < j.fx_first, -1), (month > j.fx_last, 1), else_=0),
        }
    )
    j = j.left_join(
        fx_rates, [j.currency == fx_rates.fx_currency, j[P + "fx_month"] == fx_rates.fx_month]
    ).select(j, fx_rates.fx_rate)

    # code lists as joins: `x IN (249 literals)` costs DuckDB about 0.1 µs per row and test, a probe
    # of a small hash table a fraction of that (ingest of 1M transfers: docs/benchmarks.md, "Session 10")
    # (tables registered by the engine, not ibis memtables: the Spark engine runs compiled SQL)
    for col, codes in (("sender_country", countries), ("receiver_country", countries), ("currency", currencies)):
        key = P + "known_" + col
        ref = codes.select(**{key: codes.code})
        j = j.left_join(ref, j[col] == ref[key]).select(j, **{key: ref[key].notnull()})

    j = barrier(j)
    limit = ibis.literal(now) + ibis.interval(minutes=tolerance_minutes)
    missing = [j[c].isnull() for c in REQUIRED_COLUMNS]
    any_missing = missing[0]
    for m in missing[1:]:
        any_missing = any_missing | m
    missing_list = ibis.literal("")
    for c in REQUIRED_COLUMNS:
        missing_list = missing_list + ibis.ifelse(j[c].isnull(), ", " + ibis.literal(c), "")
    # NULL is not "unknown" (as with IN: a missing value is the required-field check's business)
    sender_bad = j.sender_country.notnull() & ~j[P + "known_sender_country"]
    receiver_bad = j.receiver_country.notnull() & ~j[P + "known_receiver_country"]
    channel_bad = j.channel.notnull() & ~j.channel.isin(list(CHANNELS))
    utc = j[P + "utc"]
    amount = j[P + "amount"]
    month_text = fx_month_text(j[P + "month"])
    checks: list[tuple[str, ir.BooleanValue, ir.StringValue]] = [
        ("missing_required_field", any_missing, "required field(s) empty: " + missing_list.substr(2)),
        ("unparseable_timestamp", utc.isnull(), j[P + "ts_detail"]),
        (
            "future_timestamp",
            utc > limit,
            "timestamp "
            + _show(j.timestamp)
            + " is "
            + utc.strftime("%Y-%m-%d %H:%M:%S")
            + " UTC, after the run time "
            + ibis.literal(now.strftime("%Y-%m-%d %H:%M:%S"))
            + f" UTC + {tolerance_minutes} min tolerance",
        ),
        ("non_numeric_amount", ~j[P + "numeric"], "amount " + _show(j.amount) + " is not a number"),
        ("non_positive_amount", amount <= 0, "amount " + _show(j.amount) + " is not positive"),
        (
            "unknown_currency",
            j.currency.notnull() & ~j[P + "known_currency"],
            "currency " + _show(j.currency) + " is not an ISO 4217 code",
        ),
        (
            "invalid_country_code",
            sender_bad | receiver_bad,
            ibis.ifelse(
                sender_bad,
                "sender_country " + _show(j.sender_country),
                "receiver_country " + _show(j.receiver_country),
            )
            + " is not an ISO 3166 alpha-2 code",
        ),
        (
            "invalid_channel",
            channel_bad,
            "channel " + _show(j.channel) + " is not one of " + ", ".join(CHANNELS),
        ),
        (
            "no_fx_rate",
            j.fx_rate.isnull(),
            "no FX rate for " + j.currency + " in " + month_text + " (not guessed; add it with --fx)",
        ),
    ]
    reason = ibis.cases(*[(cond, code) for code, cond, _ in checks], else_=ibis.null("string"))
    detail = ibis.cases(*[(cond, text) for _, cond, text in checks], else_=ibis.null("string"))
    j = j.mutate(**{P + "pre": reason, P + "pre_detail": detail})

    j = j.mutate(**{REASON: j[P + "pre"], DETAIL: j[P + "pre_detail"]})
    out: dict[str, ir.Value] = {ROW: j[ROW]}
    for name in COLUMN_NAMES:
        if name == "timestamp":
            out[name] = j[P + "utc"]
        elif name == "amount":
            out[name] = j[P + "amount"]
        else:
            out[name] = j[name]
    out["amount_usd"] = j[P + "amount"] * j.fx_rate
    out["fx_rate"] = j.fx_rate
    out["ts_epoch"] = j[P + "utc"].truncate("s").epoch_seconds().cast("int64")
    out[REASON] = j[REASON]
    out[DETAIL] = j[DETAIL]
    out[FX_SHIFT] = j[FX_SHIFT]
    return j.select(**out)


def duplicate_firsts(checked: ir.Table) -> ir.Table:
    """txn_id and first accepted ROW (`first_row`) of every txn_id accepted more than once.

    Run on the materialized `build_checked` table; usually tiny, so the join in `mark_duplicates`
    is cheap (a window over all rows would sort them).
    """
    ok = checked.filter(checked[REASON].isnull())
    firsts = ok.group_by(ok.txn_id).aggregate(first_row=ok[ROW].min(), n=ok.count())
    return firsts.filter(firsts.n > 1).select(dup_txn_id=firsts.txn_id, first_row=firsts.first_row)


def mark_duplicates(checked: ir.Table, firsts: ir.Table) -> ir.Table:
    """`checked` with duplicate_txn_id set: the first accepted row of a txn_id wins."""
    j = checked.left_join(firsts, checked.txn_id == firsts.dup_txn_id)
    j = j.select(checked, firsts.first_row)
    is_dup = j[REASON].isnull() & j.first_row.notnull() & (j[ROW] != j.first_row)
    return j.mutate(
        **{
            REASON: ibis.ifelse(is_dup, "duplicate_txn_id", j[REASON]),
            DETAIL: ibis.ifelse(
                is_dup,
                "txn_id " + _show(j.txn_id) + " was already accepted from row " + j.first_row.cast("string"),
                j[DETAIL],
            ),
        }
    ).drop("first_row")


def parse_timestamp(text: ir.StringValue, default_offset: str | None = None) -> dict[str, ir.Value]:
    """`utc` (naive TIMESTAMP, NULL when unparseable) and `detail` of an ISO 8601 string with offset.

    The same expressions `build_checked` uses, in one piece (for tests and other callers).
    """
    parts = timestamp_parts(text)
    return timestamp_from_parts(text, parts, _offset(parts["given"], default_offset))
