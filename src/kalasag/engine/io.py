"""Reading transfer files: CSV (plain or gzip), a Parquet file, or a directory of Parquet files.

This module and `backend.py` are the only places that talk to DuckDB directly. Everything is read
*as text*: CSV with every column as VARCHAR, typed Parquet columns rendered to strings (timestamps
with a time zone as ISO 8601 with `Z`, naive ones without an offset), so that bad values are
quarantined by the validator instead of failing the read. Lines DuckDB cannot parse as CSV records
(wrong number of fields, bad quoting, invalid UTF-8) are collected with DuckDB's `store_rejects`
and returned as `malformed` rows: nothing is dropped silently.

A CSV file is read once into a temporary table; a Parquet file or directory is scanned through a
view (Parquet is fast to re-read). Either way `RawInput.table` has a 1-based row number column.
`DATA_ERRORS` lists the engine's exceptions for data that turns out unreadable only when scanned
(a Parquet page corrupt past its footer): callers turn them into their own one-line errors.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import ibis.expr.types as ir

from kalasag.engine.backend import Engine, SparkDataError

ROW_COLUMN = "_kalasag_row"  # 1-based data row in the file (header excluded)
_ids = itertools.count(1)
_SNIFF_BYTES = 64 * 1024
_DELIMITERS = (",", ";", "\t", "|")
_MAX_LINE_CHARS = 300  # how much of a malformed line is kept for the quarantine detail


class ReadError(ValueError):
    """A file cannot be read at all (one-line message naming the file)."""


DATA_ERRORS: tuple[type[Exception], ...] = (duckdb.Error, SparkDataError)


def first_line(exc: BaseException) -> str:
    """The first line of an engine error message (for one-line errors)."""
    return _one_line(exc)


@dataclass
class RawInput:
    """A file read as text: `table` has ROW_COLUMN plus the file's columns (all strings)."""

    path: Path
    input_format: str  # "csv", "csv.gz", "parquet", "parquet-dir"
    table: ir.Table
    columns: list[str]  # the file's column names, in file order
    rows_parsed: int
    # malformed rows: ROW_COLUMN int64, line int64, error_type string, message string, text string
    malformed: ir.Table | None = None
    rows_malformed: int = 0
    notes: list[str] = field(default_factory=list)
    temp_objects: list[tuple[str, str]] = field(default_factory=list)  # ("TABLE"|"VIEW", name)

    @property
    def rows_in(self) -> int:
        return self.rows_parsed + self.rows_malformed


def _q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _run(con, sql: str) -> list[tuple]:  # noqa: ANN001 - a duckdb connection
    """Execute and fully consume (DuckDB 2 refuses new work while a result is pending)."""
    return con.execute(sql).fetchall()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


# ---- format detection -----------------------------------------------------------------------
def detect_format(path: Path) -> str:
    """`parquet-dir`, `parquet`, `csv.gz` or `csv`, by suffix first, then by magic bytes."""
    if not path.exists():
        raise ReadError(f"{path}: file not found")
    if path.is_dir():
        if not any(path.rglob("*.parquet")):
            raise ReadError(f"{path}: directory holds no .parquet files")
        return "parquet-dir"
    if path.stat().st_size == 0:
        raise ReadError(f"{path}: file is empty")
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    suffixes = [s.lower() for s in path.suffixes]
    if head[:4] == b"PAR1":
        return "parquet"
    if suffixes[-1:] == [".parquet"]:
        raise ReadError(f"{path}: not a Parquet file (no PAR1 magic bytes)")
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(_SNIFF_BYTES)
        except (OSError, EOFError) as exc:
            raise ReadError(f"{path}: corrupt gzip file ({_one_line(exc)})") from exc
        if not inner:
            raise ReadError(f"{path}: file is empty (gzip holds no data)")
        _check_text(path, inner)
        return "csv.gz"
    if suffixes[-1:] == [".gz"]:
        raise ReadError(f"{path}: not a gzip file (no gzip magic bytes)")
    _check_text(path, head)
    return "csv"


def _check_text(path: Path, head: bytes) -> None:
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ReadError(f"{path}: UTF-16 text; save it as a UTF-8 CSV")
    if head[:4] == b"PK\x03\x04":
        raise ReadError(f"{path}: a ZIP archive (an Excel workbook?), not CSV or Parquet; export it as CSV")
    if b"\x00" in head:
        raise ReadError(f"{path}: binary data, not a CSV or Parquet file")
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        raise ReadError(f"{path}: file is empty")


# ---- CSV ------------------------------------------------------------------------------------
def _first_line(path: Path, fmt: str, encoding: str) -> tuple[str, str]:
    """The header line, and the file's line break as a DuckDB `new_line` option value."""
    opener = gzip.open if fmt == "csv.gz" else open
    with opener(path, "rb") as fh:  # type: ignore[operator]
        raw = fh.readline(1 << 20)
    newline = "\\r\\n" if raw.endswith(b"\r\n") else "\\n"
    text = raw.decode("utf-8" if encoding in ("utf-8", "utf8") else encoding, errors="replace")
    return text.lstrip("\ufeff").rstrip("\r\n"), newline


def _normalized_copy(path: Path, fmt: str) -> tuple[Path, int]:
    """A plain copy of the CSV with CR LF and lone CR turned into LF (in chunks, not per row)."""
    fd, name = tempfile.mkstemp(prefix="kalasag_", suffix=".csv")
    out = Path(name)
    lone = 0
    opener = gzip.open if fmt == "csv.gz" else open
    with opener(path, "rb") as src, os.fdopen(fd, "wb") as dst:  # type: ignore[operator]
        carry = b""
        while chunk := src.read(1 << 22):
            chunk = carry + chunk
            carry = b"\r" if chunk.endswith(b"\r") else b""
            if carry:
                chunk = chunk[:-1]
            lone += chunk.count(b"\r") - 2 * chunk.count(b"\r\n") + chunk.count(b"\r\n")
            dst.write(chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        if carry:
            lone += 1
            dst.write(b"\n")
    return out, lone


def _header(path: Path, line: str, delimiter: str | None) -> tuple[str, list[str]]:
    if not line.strip():
        raise ReadError(f"{path}: no header line (the first line is blank)")
    if delimiter is None:
        counts = {d: line.count(d) for d in _DELIMITERS}
        delimiter = max(_DELIMITERS, key=lambda d: counts[d])
        if counts[delimiter] == 0:
            delimiter = ","
    names = next(csv.reader(io.StringIO(line), delimiter=delimiter, quotechar='"'))
    names = [n.strip() or f"column_{i + 1}" for i, n in enumerate(names)]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ReadError(f"{path}: column '{n}' appears twice in the header")
        seen.add(n)
    if ROW_COLUMN in seen:
        raise ReadError(f"{path}: column name '{ROW_COLUMN}' is reserved")
    return delimiter, names


def _read_csv(engine: Engine, path: Path, fmt: str, *, delimiter: str | None, encoding: str) -> RawInput:
    con = engine.duckdb
    # The line break is set explicitly: left to detection, a carriage return inside a quoted
    # field can end a record early or stop the parser.
    line, newline = _first_line(path, fmt, encoding)
    delimiter, names = _header(path, line, delimiter)
    n = next(_ids)
    raw_name, rej_table, rej_scan = f"_kalasag_raw_{n}", f"_kalasag_rej_{n}", f"_kalasag_rejscan_{n}"
    columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in names) + "}"
    opts = [
        "header=true",
        "auto_detect=false",
        f"delim={_lit(delimiter)}",
        "quote='\"'",
        "escape='\"'",
        f"new_line='{newline}'",
        f"columns={columns}",
        "all_varchar=true",
        "store_rejects=true",
        f"rejects_table={_lit(rej_table)}",
        f"rejects_scan={_lit(rej_scan)}",
        f"compression={_lit('gzip' if fmt == 'csv.gz' else 'none')}",
        f"encoding={_lit(encoding)}",
        "max_line_size=10000000",
    ]
    notes: list[str] = []
    temp_files: list[tuple[str, str]] = []

    def load(source: Path, options: list[str]) -> None:
        src = f"read_csv({_lit(str(source))}, {', '.join(options)})"
        # a table of the work database, compressed (a temporary table would be kept uncompressed)
        _run(con, f"CREATE OR REPLACE TABLE {_q(raw_name + '_p')} AS SELECT * FROM {src}")
        # One row per rejected record (a record can carry several errors: keep the first).
        _run(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {_q(rej_table + '_1')} AS
            SELECT CAST(line AS BIGINT) AS line, first(error_type ORDER BY column_idx) AS error_type,
                   first(error_message ORDER BY column_idx) AS message,
                   first(csv_line ORDER BY column_idx) AS text
            FROM {_q(rej_table)} GROUP BY line""",
        )

    try:
        try:
            load(path, opts)
        except duckdb.InvalidInputException as exc:
            # DuckDB's strict parser stops at a carriage return outside quotes that is not part
            # of the file's line break (mixed line endings, a stray CR in a field). Normalize a
            # temporary copy (CR LF and lone CR become LF) and read that instead.
            if "state machine" not in str(exc) or encoding == "utf-16":
                raise
            copy, lone = _normalized_copy(path, fmt)
            temp_files.append(("FILE", str(copy)))
            opts = [o for o in opts if not o.startswith(("new_line=", "compression="))]
            load(copy, [*opts, "new_line='\\n'", "compression='none'"])
            notes.append(
                "the file mixes line breaks (CR, LF, CR LF): it was read with every CR LF and lone CR "
                f"taken as a line break ({lone:,} lone CR)"
            )
    except duckdb.Error as exc:
        for _, name in temp_files:
            Path(name).unlink(missing_ok=True)
        raise ReadError(f"{path}: cannot be read as CSV ({_one_line(exc)})") from exc
    n_parsed = int(_run(con, f"SELECT count(*) FROM {_q(raw_name + '_p')}")[0][0])
    n_bad = int(_run(con, f"SELECT count(*) FROM {_q(rej_table + '_1')}")[0][0])
    # DuckDB numbers a rejected record by its line, counting the header as line 1 (quoted
    # newlines do not advance it), so its data row is line - 1. Parsed rows fill the other
    # numbers in order.
    cols = ", ".join(_q(c) for c in names)
    if n_bad == 0:
        _run(
            con,
            f"CREATE OR REPLACE TEMP VIEW {_q(raw_name)} AS "
            f"SELECT CAST(rowid + 1 AS BIGINT) AS {_q(ROW_COLUMN)}, {cols} FROM {_q(raw_name + '_p')}",
        )
    else:
        _run(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {_q(raw_name + '_k')} AS
            WITH bad AS (SELECT line - 1 AS r FROM {_q(rej_table + '_1')}),
            top AS (SELECT greatest({n_parsed + n_bad}, (SELECT max(r) FROM bad)) AS m)
            SELECT CAST(r AS BIGINT) AS r, CAST(row_number() OVER (ORDER BY r) AS BIGINT) AS k
            FROM (SELECT range + 1 AS r FROM range((SELECT m FROM top))) AS all_rows
            WHERE r NOT IN (SELECT r FROM bad)""",
        )
        _run(
            con,
            f"""CREATE OR REPLACE TEMP VIEW {_q(raw_name)} AS
            SELECT f.r AS {_q(ROW_COLUMN)}, {', '.join('p.' + _q(c) for c in names)}
            FROM (SELECT rowid + 1 AS _kalasag_k, * FROM {_q(raw_name + '_p')}) AS p
            JOIN {_q(raw_name + '_k')} AS f ON f.k = p._kalasag_k""",
        )
    malformed = None
    if n_bad:
        _run(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {_q(rej_table + '_m')} AS
            SELECT CAST(line - 1 AS BIGINT) AS {_q(ROW_COLUMN)}, line, error_type, message,
                   left(replace(replace(text, chr(13), ''), chr(10), '\\n'), {_MAX_LINE_CHARS}) AS text,
                   strlen(rtrim(text, chr(13) || chr(10)))
                     - strlen(replace(rtrim(text, chr(13) || chr(10)), chr(10), '')) AS swallowed
            FROM {_q(rej_table + '_1')} ORDER BY line""",
        )
        swallowed = int(
            _run(
                con,
                f"SELECT coalesce(max(swallowed), 0) FROM {_q(rej_table + '_m')} "
                "WHERE error_type = 'UNQUOTED VALUE'",
            )[0][0]
        )
        if swallowed >= 1:
            lines = "1 following line" if swallowed == 1 else f"{swallowed:,} following lines"
            notes.append(
                f"an unterminated quote made the CSV reader take {lines} into one malformed record "
                "(see its quarantine detail)"
            )
        bad_text = int(
            _run(con, f"SELECT count(*) FROM {_q(rej_table + '_m')} WHERE error_type = 'INVALID ENCODING'")[0][0]
        )
        if bad_text:
            notes.append(
                f"{bad_text:,} record(s) are not valid {encoding} text and were quarantined; if the export "
                "uses another encoding, set it (mapping file: [csv] encoding = \"latin-1\")"
            )
        malformed = engine.con.table(rej_table + "_m").drop("swallowed")
    for tmp in (rej_table, rej_scan):
        _run(con, f"DROP TABLE IF EXISTS {_q(tmp)}")
    return RawInput(
        path=path,
        input_format=fmt,
        table=engine.con.table(raw_name),
        columns=names,
        rows_parsed=n_parsed,
        malformed=malformed,
        rows_malformed=n_bad,
        notes=notes,
        temp_objects=[
            ("VIEW", raw_name),
            ("TABLE", raw_name + "_k"),
            ("TABLE", raw_name + "_p"),
            ("TABLE", rej_table + "_m"),
            ("TABLE", rej_table + "_1"),
            *temp_files,
        ],
    )


# ---- Parquet --------------------------------------------------------------------------------
def _as_text(name: str, dtype: str) -> str:
    """SQL rendering a typed Parquet column (of alias `s`) as the string a CSV export would hold."""
    col = "s." + _q(name)
    t = dtype.upper()
    if t.startswith("TIMESTAMP WITH TIME ZONE") or t == "TIMESTAMPTZ":
        return f"strftime(timezone('UTC', {col}), '%Y-%m-%dT%H:%M:%S.%fZ')"
    if t.startswith("TIMESTAMP"):  # naive: no offset, like a CSV timestamp without one
        return f"strftime(CAST({col} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%f')"
    return f"CAST({col} AS VARCHAR)"


def _read_parquet(engine: Engine, path: Path, fmt: str) -> RawInput:
    con = engine.duckdb
    target = str(path / "**" / "*.parquet") if fmt == "parquet-dir" else str(path)
    opts = "union_by_name=true, hive_partitioning=false" if fmt == "parquet-dir" else "hive_partitioning=false"
    src = f"read_parquet({_lit(target)}, {opts})"
    try:
        schema = _run(con, f"DESCRIBE SELECT * FROM {src}")
        counts = _run(
            con,
            f"SELECT file_name, num_rows FROM parquet_file_metadata({_lit(target)}) ORDER BY file_name",
        )
    except duckdb.Error as exc:
        raise ReadError(f"{path}: cannot be read as Parquet ({_one_line(exc)})") from exc
    names = [row[0] for row in schema]
    for reserved in (ROW_COLUMN, "_kalasag_file", "file_row_number"):
        if reserved in names:
            raise ReadError(f"{path}: column name '{reserved}' is reserved")
    raw_name = f"_kalasag_raw_{next(_ids)}"
    # Row numbers: files in name order (as DuckDB globs them), rows in file order, 1-based.
    offsets, total = [], 0
    for file_name, num_rows in counts:
        offsets.append(f"({_lit(file_name)}, {total})")
        total += int(num_rows or 0)
    select = ", ".join(f"{_as_text(r[0], r[1])} AS {_q(r[0])}" for r in schema)
    scan = (
        f"read_parquet({_lit(target)}, {opts}, filename='_kalasag_file', "
        "file_row_number=true)"
    )
    try:
        _run(
            con,
            f"""CREATE OR REPLACE TEMP VIEW {_q(raw_name)} AS
            SELECT CAST(o.off + s.file_row_number + 1 AS BIGINT) AS {_q(ROW_COLUMN)}, {select}
            FROM {scan} AS s JOIN (VALUES {', '.join(offsets)}) AS o(f, off) ON o.f = s._kalasag_file""",
        )
    except duckdb.Error as exc:
        raise ReadError(f"{path}: cannot be read as Parquet ({_one_line(exc)})") from exc
    return RawInput(
        path=path,
        input_format=fmt,
        table=engine.con.table(raw_name),
        columns=names,
        rows_parsed=total,
        temp_objects=[("VIEW", raw_name)],
    )


def read_input(
    engine: Engine,
    path: str | Path,
    *,
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> RawInput:
    """Read a transfer file as text. Raises ReadError (one line) when it cannot be read at all.

    `delimiter` (CSV only) is detected from the header line when None (`,` `;` tab `|`).
    `encoding` (CSV only) is passed to DuckDB (`utf-8`, `latin-1`, `utf-16`).
    """
    path = Path(path)
    fmt = detect_format(path)
    if engine.kind == "spark":
        return _read_spark(engine, path, fmt, delimiter=delimiter, encoding=encoding)
    if fmt.startswith("parquet"):
        return _read_parquet(engine, path, fmt)
    return _read_csv(engine, path, fmt, delimiter=delimiter, encoding=encoding)


def _read_spark(engine: Engine, path: Path, fmt: str, *, delimiter: str | None, encoding: str) -> RawInput:
    """The same RawInput on the Spark engine (see spark_io.py)."""
    from kalasag.engine import spark_io

    if fmt.startswith("parquet"):
        name, names, total, temp = spark_io.read_parquet(engine, path, fmt)
        return RawInput(path=path, input_format=fmt, table=engine.con.table(name), columns=names,
                        rows_parsed=total, temp_objects=temp)
    line, _ = _first_line(path, fmt, encoding)
    delimiter, names = _header(path, line, delimiter)
    name, bad, n_ok, n_bad, temp = spark_io.read_csv(engine, path, fmt, names, delimiter, encoding)
    return RawInput(
        path=path, input_format=fmt, table=engine.con.table(name), columns=names, rows_parsed=n_ok,
        malformed=engine.con.table(bad) if bad else None, rows_malformed=n_bad, temp_objects=temp,
    )


def release(engine: Engine, raw: RawInput) -> None:
    """Drop the temporary tables and views `read_input` made (once nothing refers to them)."""
    if engine.kind == "spark":
        from kalasag.engine import spark_io

        spark_io.release_objects(engine, raw.temp_objects)
        raw.temp_objects = []
        return
    for kind, name in raw.temp_objects:
        if kind == "FILE":
            Path(name).unlink(missing_ok=True)
        else:
            _run(engine.duckdb, f"DROP {kind} IF EXISTS {_q(name)}")
    raw.temp_objects = []
