"""`ingest()`: read a transfer file, map its columns, validate every row, convert to USD.

Every input row ends up in exactly one of two tables: `transfers` (accepted, canonical) or
`quarantine` (with a reason code and a human-readable detail). rows_in == accepted + quarantined.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from kalasag.engine import DATA_ERRORS, Engine, RawInput, ReadError, first_line, read_input, release
from kalasag.ingest.errors import InputError
from kalasag.ingest.fx import FxTable, load_fx
from kalasag.ingest.mapping import Mapping, load_mapping
from kalasag.ingest.reference import country_codes, currency_codes
from kalasag.ingest.validate import (
    DETAIL,
    FX_SHIFT,
    P,
    REASON,
    ROW,
    build_checked,
    duplicate_firsts,
    mark_duplicates,
)
from kalasag.model.config import IngestConfig, KalasagConfig
from kalasag.model.schema import COLUMN_NAMES, DERIVED_COLUMNS, QUARANTINE_REASONS, REQUIRED_COLUMNS

QUARANTINE_HEAD = ("row_number", "reason", "detail")


@dataclass
class IngestResult:
    """What `ingest` made of one input file."""

    transfers: ir.Table  # accepted rows: TRANSFER_COLUMNS + DERIVED_COLUMNS, materialized, in no set order (row_number)
    quarantine: ir.Table  # row_number, reason, detail, then the original row's fields (strings)
    rows_in: int
    accepted: int
    quarantined: int
    reasons: dict[str, int]
    notes: list[str]
    fx_source: str
    input_format: str
    path: str = ""
    columns_used: dict[str, str | None] = field(default_factory=dict)  # canonical -> file column
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts for run.json."""
        return {
            "path": self.path,
            "input_format": self.input_format,
            "rows_in": self.rows_in,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "reasons": dict(self.reasons),
            "notes": list(self.notes),
            "fx_source": self.fx_source,
            "columns_used": dict(self.columns_used),
            "seconds": round(self.seconds, 3),
        }


def _ingest_config(config: KalasagConfig | IngestConfig) -> IngestConfig:
    return config.ingest if isinstance(config, KalasagConfig) else config


def _shorten(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def resolve_columns(
    path: Path, file_columns: list[str], mapping: Mapping, default_mapping: dict[str, str]
) -> tuple[dict[str, str | None], list[str]]:
    """Canonical column -> file column (None when absent). Raises InputError for unusable headers."""
    for reserved in file_columns:
        if reserved.startswith(P):
            raise InputError(f"{path}: column name '{reserved}' is reserved (starts with {P})")
    normal: dict[str, list[str]] = {}
    for c in file_columns:
        normal.setdefault(c.strip().lower(), []).append(c)

    def find(name: str) -> str | None:
        if name in file_columns:
            return name
        hits = normal.get(name.strip().lower(), [])
        return hits[0] if len(hits) == 1 else None

    sources: dict[str, str | None] = {c: None for c in COLUMN_NAMES}
    notes: list[str] = []
    for provider, canonical in mapping.columns.items():
        src = find(provider)
        if src is None:
            raise InputError(
                f"{mapping.source or 'mapping'}: column '{provider}' (mapped to {canonical}) is not in "
                f"{path} (its columns: {_shorten(file_columns)})"
            )
        sources[canonical] = src
    mapped = {s for s in sources.values() if s is not None}
    for canonical, src in list(sources.items()):
        other = find(canonical)
        if src is not None and other is not None and other != src and other not in mapped:
            notes.append(f"column '{other}' ignored: the mapping takes {canonical} from '{src}'")
    for canonical in COLUMN_NAMES:
        if sources[canonical] is None:
            sources[canonical] = find(canonical)
    for provider, canonical in default_mapping.items():
        if canonical not in COLUMN_NAMES:
            raise InputError(f"config [ingest].default_mapping: '{canonical}' is not a canonical column")
        if sources[canonical] is None:
            sources[canonical] = find(provider)
    missing = [c for c in REQUIRED_COLUMNS if sources[c] is None]
    if missing:
        raise InputError(
            f"{path}: missing required column(s) {', '.join(missing)} (the file has: "
            f"{_shorten(file_columns)}); map other names with --mapping"
        )
    return sources, notes


def _fx_tables(engine: Engine, fx: FxTable) -> tuple[ir.Table, ir.Table]:
    frame = fx.frame
    months = frame["month"].str.slice(0, 4).astype("int64") * 12 + frame["month"].str.slice(5, 7).astype("int64") - 1
    rates = pd.DataFrame(
        {"fx_currency": frame["currency"], "fx_month": months, "fx_rate": frame["usd_per_unit"].astype("float64")}
    )
    ranges = rates.groupby("fx_currency", as_index=False).agg(fx_first=("fx_month", "min"), fx_last=("fx_month", "max"))
    return engine.from_records(rates), engine.from_records(ranges)


def _month_text(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _fx_notes(engine: Engine, checked: ir.Table, fx_ranges: ir.Table) -> list[str]:
    ok = checked.filter(checked[REASON].isnull() & (checked[FX_SHIFT] != 0) & (checked.currency != "USD"))
    shifted = engine.fetch(
        ok.group_by(["currency", FX_SHIFT])
        .aggregate(n=ok.count())
        .join(fx_ranges, ok.currency == fx_ranges.fx_currency)
        .order_by(["currency", FX_SHIFT])
    )
    notes = []
    for shift, word in ((1, "after"), (-1, "before")):
        part = shifted[shifted[FX_SHIFT] == shift]
        if part.empty:
            continue
        total = int(part["n"].sum())
        detail = "; ".join(
            f"{r.currency} {word} {_month_text(int(r.fx_last if shift == 1 else r.fx_first))}: {int(r.n):,}"
            for r in part.itertuples()
        )
        rows = "1 row" if total == 1 else f"{total:,} rows"
        notes.append(
            f"{rows} dated {word} the FX table's months for their currency converted with the "
            f"nearest month's rate ({detail})"
        )
    return notes


def _quarantine(engine: Engine, raw: RawInput, checked: ir.Table) -> ir.Table:
    table = raw.table
    names = raw.columns
    taken = set(QUARANTINE_HEAD)
    out_names = {c: (f"original_{c}" if c in taken else c) for c in names}
    bad = checked.filter(checked[REASON].notnull()).select(
        **{P + "qrow": checked[ROW], P + "qreason": checked[REASON], P + "qdetail": checked[DETAIL]}
    )
    joined = bad.join(table, bad[P + "qrow"] == table[ROW])
    parts = [
        joined.select(
            row_number=joined[P + "qrow"],
            reason=joined[P + "qreason"],
            detail=joined[P + "qdetail"],
            **{out_names[c]: joined[c].cast("string") for c in names},
        )
    ]
    if raw.malformed is not None:
        m = raw.malformed
        parts.append(
            m.select(
                row_number=m[ROW],
                reason=ibis.literal("malformed_row"),
                detail=m.message + " (" + m.error_type.lower() + "): " + m.text,
                **{out_names[c]: ibis.null("string") for c in names},
            )
        )
    expr = parts[0] if len(parts) == 1 else ibis.union(*parts)
    return engine.materialize(expr.order_by("row_number"))


def ingest(
    engine: Engine,
    path: str | Path,
    *,
    config: KalasagConfig | IngestConfig,
    mapping: Mapping | str | Path | None = None,
    fx: FxTable | str | Path | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Read `path` (CSV, CSV.gz, Parquet file or directory), validate and convert every row.

    Raises InputError (one line) for a file that cannot be read at all; bad rows are quarantined.
    `now` (default: the clock) is the reference for future_timestamp; naive values mean UTC.
    """
    started = time.perf_counter()
    path = Path(path)
    cfg = _ingest_config(config)
    if mapping is None:
        mapping = Mapping()
    elif not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    if not isinstance(fx, FxTable):
        fx = load_fx(fx)
    if now is None:
        now = datetime.now(UTC)
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)

    try:
        raw = read_input(engine, path, delimiter=mapping.csv.delimiter, encoding=mapping.csv.encoding)
    except ReadError as exc:
        raise InputError(str(exc)) from exc
    scratch: list[ir.Table] = []  # working tables dropped at the end, whatever happens
    try:
        if raw.rows_in == 0:
            what = "no rows" if raw.input_format.startswith("parquet") else "no data rows (only a header)"
            raise InputError(f"{path}: {what}")
        sources, notes = resolve_columns(path, raw.columns, mapping, cfg.default_mapping)
        fx_rates, fx_ranges = _fx_tables(engine, fx)
        known_currencies = engine.from_records(pd.DataFrame({"code": sorted(currency_codes())}))
        known_countries = engine.from_records(pd.DataFrame({"code": sorted(country_codes())}))
        scratch += [fx_rates, fx_ranges, known_currencies, known_countries]
        checked_expr = build_checked(
            raw.table,
            sources,
            value_maps={c: mapping.value_map(c) for c in mapping.values},
            default_offset=mapping.timestamps.utc_offset,
            thousands=cfg.amount_thousands_separator,
            now=now,
            tolerance_minutes=cfg.future_tolerance_minutes,
            fx_rates=fx_rates,
            fx_ranges=fx_ranges,
            currencies=known_currencies,
            countries=known_countries,
        )
        try:
            checked_all = engine.materialize(checked_expr)
        except DATA_ERRORS as exc:  # e.g. a Parquet page corrupt past a valid footer
            raise InputError(f"{path}: cannot be read ({first_line(exc)})") from exc
        scratch.append(checked_all)
        firsts = engine.materialize(duplicate_firsts(checked_all))
        scratch.append(firsts)
        checked = mark_duplicates(checked_all, firsts)
        quarantine = _quarantine(engine, raw, checked)
        release(engine, raw)  # the quarantine holds the original fields it needs: free the raw read
        keep = [*COLUMN_NAMES, *(c.name for c in DERIVED_COLUMNS if c.name != "row_number")]
        ok = checked.filter(checked[REASON].isnull())
        # not sorted by row_number: nothing downstream depends on the table's physical order, and
        # sorting 100M wide rows spilled a further full copy (docs/benchmarks.md, "Session 11")
        transfers = engine.materialize(ok.select(*keep, row_number=ok[ROW]))
        counts = engine.fetch(quarantine.group_by("reason").aggregate(n=quarantine.count()))
        reasons = {r: int(n) for r, n in zip(counts["reason"], counts["n"], strict=True)}
        reasons = {r: reasons[r] for r in QUARANTINE_REASONS if r in reasons}
        accepted = engine.count(transfers)
        quarantined = sum(reasons.values())
        if accepted + quarantined != raw.rows_in:  # pragma: no cover - an invariant, not an input error
            raise RuntimeError(
                f"{path}: ingest lost rows ({raw.rows_in} in, {accepted} accepted, {quarantined} quarantined)"
            )
        notes = raw.notes + notes + _fx_notes(engine, checked, fx_ranges)
    finally:
        release(engine, raw)  # transfers and quarantine are materialized: the raw read can go
        engine.drop(*scratch)
    return IngestResult(
        transfers=transfers,
        quarantine=quarantine,
        rows_in=raw.rows_in,
        accepted=accepted,
        quarantined=quarantined,
        reasons=reasons,
        notes=notes,
        fx_source=fx.source,
        input_format=raw.input_format,
        path=str(path),
        columns_used=sources,
        seconds=time.perf_counter() - started,
    )
