"""Reading and writing transfer files on the Spark engine (the same contract as `io.py` on DuckDB).

- CSV (plain or gzip): every column read as a string with the column names of the header line
  (parsed in Python exactly as on DuckDB), `mode=PERMISSIVE` and a corrupt-record column: a record
  with the wrong number of fields becomes a `malformed` row, nothing is dropped. `multiLine` is on
  so that a quoted line break stays inside its field (as on DuckDB); Spark then reads each CSV file
  in one task (gzip is never splittable anyway): for big inputs use Parquet.
- Parquet (file or directory of files, read recursively, schemas merged by name, no hive
  partition columns): typed columns rendered to the strings a CSV export would hold, as on DuckDB.
- Row numbers (`ROW_COLUMN`, 1-based, file order): CSV from the per-partition position of each
  record plus the row counts of the partitions before it; Parquet from `_metadata.row_index`
  plus the row counts of the files before it (files in path order). Both are computed by the
  executors: nothing but per-partition / per-file counts comes to the driver.

The raw read is cached (`CACHE TABLE`), like DuckDB's temporary table of a CSV read.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

from kalasag.engine.backend import Engine, EngineError

_ids = itertools.count(1)
CORRUPT = "_kalasag_corrupt"
_ENCODINGS = {"utf-8": "UTF-8", "utf8": "UTF-8", "latin-1": "ISO-8859-1", "utf-16": "UTF-16"}
_MAX_LINE_CHARS = 300


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _spark(engine: Engine):  # noqa: ANN202 - a SparkSession
    return engine.con._session


def _cache(engine: Engine, df, name: str):  # noqa: ANN001, ANN202 - a Spark DataFrame
    """Compute `df` once (eager local checkpoint: short lineage, ids fixed) as the view `name`."""
    df = df.localCheckpoint(eager=True)
    df.createOrReplaceTempView(name)
    return df


def _row_numbers(engine: Engine, df, order_key: str, within: str, group: str):  # noqa: ANN001, ANN202
    """`df` plus ROW_COLUMN: offset of its `group` (sum of the counts of the groups ordered
    before it by `order_key`) + `within` + 1. Only one count per group reaches the driver."""
    from pyspark.sql import functions as F

    from kalasag.engine.io import ROW_COLUMN

    counts = df.groupBy(*dict.fromkeys([group, order_key])).count().orderBy(order_key).collect()
    offsets, total = [], 0
    for r in counts:
        offsets.append((r[group], total))
        total += int(r["count"])
    if not offsets:
        return df.withColumn(ROW_COLUMN, F.lit(None).cast("bigint")), 0
    off = _spark(engine).createDataFrame(offsets, f"{group}_o {df.schema[group].dataType.simpleString()}, _kalasag_off bigint")
    out = df.join(F.broadcast(off), df[group] == off[f"{group}_o"])
    out = out.withColumn(ROW_COLUMN, (F.col("_kalasag_off") + F.col(within) + F.lit(1)).cast("bigint"))
    return out, total


def read_csv(engine: Engine, path: Path, fmt: str, names: list[str], delimiter: str, encoding: str):
    """(table name, malformed name or None, rows parsed, rows malformed, temp objects)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from kalasag.engine.io import ROW_COLUMN, ReadError, _one_line

    spark = _spark(engine)
    temp: list[tuple[str, str]] = []
    source = path
    if fmt == "csv.gz" and not path.name.lower().endswith(".gz"):
        # Spark picks the codec by file suffix: give the gzip file a name it recognizes
        tmp_dir = tempfile.mkdtemp(prefix="kalasag_spark_")
        source = Path(tmp_dir) / "input.csv.gz"
        os.symlink(path.resolve(), source)
        temp.append(("DIR", tmp_dir))
    schema = T.StructType(
        [T.StructField(n, T.StringType(), True) for n in names] + [T.StructField(CORRUPT, T.StringType(), True)]
    )
    n = next(_ids)
    raw_name, bad_name, all_name = f"_kalasag_raw_{n}", f"_kalasag_rej_{n}_m", f"_kalasag_all_{n}"
    try:
        df = spark.read.csv(
            str(source), schema=schema, header=True, sep=delimiter, quote='"', escape='"',
            mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT, multiLine=True,
            encoding=_ENCODINGS.get(encoding.lower(), encoding), enforceSchema=True,
            ignoreLeadingWhiteSpace=False, ignoreTrailingWhiteSpace=False,
        )
        df = df.withColumn("_kalasag_pid", F.spark_partition_id()).withColumn(
            "_kalasag_pos", F.monotonically_increasing_id().bitwiseAND(F.lit((1 << 33) - 1))
        )
        # cache before numbering: the ids must be those of one single pass over the file
        _cache(engine, df, all_name + "_p")
        temp.append(("VIEW", all_name + "_p"))
        numbered, total = _row_numbers(engine, spark.table(all_name + "_p"), "_kalasag_pid", "_kalasag_pos", "_kalasag_pid")
        _cache(engine, numbered.drop("_kalasag_pid", "_kalasag_pos", "_kalasag_off", "_kalasag_pid_o"), all_name)
        temp.append(("VIEW", all_name))
        everything = spark.table(all_name)
        good = everything.filter(F.col(CORRUPT).isNull()).select(ROW_COLUMN, *[F.col(_q(c)) for c in names])
        bad = everything.filter(F.col(CORRUPT).isNotNull())
        n_bad = bad.count()
    except Exception as exc:  # noqa: BLE001 - any JVM read failure is a one-line ReadError
        release_objects(engine, temp)
        raise ReadError(f"{path}: cannot be read as CSV ({_one_line(exc)})") from exc
    good.createOrReplaceTempView(raw_name)
    temp.append(("VIEW", raw_name))
    malformed = None
    if n_bad:
        text = F.col(CORRUPT)
        clean = F.regexp_replace(F.regexp_replace(F.regexp_replace(text, "[\r\n]+$", ""), "\r", ""), "\n", "\\\\n")
        fields = F.size(F.split(F.regexp_replace(text, '"[^"]*"', ""), _java_regex(delimiter)))
        bad = bad.select(
            F.col(ROW_COLUMN),
            (F.col(ROW_COLUMN) + 1).alias("line"),
            # DuckDB's error types, so the quarantine detail reads the same on both engines
            F.when(fields > len(names), F.lit("TOO MANY COLUMNS")).otherwise(F.lit("MISSING COLUMNS")).alias("error_type"),
            F.concat(F.lit(f"Expected Number of Columns: {len(names)} Found: "), fields.cast("string")).alias("message"),
            F.substring(clean, 1, _MAX_LINE_CHARS).alias("text"),
        )
        _cache(engine, bad, bad_name)
        temp.append(("VIEW", bad_name))
        malformed = bad_name
    return raw_name, malformed, total - n_bad, n_bad, temp


def _java_regex(ch: str) -> str:
    return "\\" + ch if ch in ".^$*+?()[]{}|\\" else ("\\t" if ch == "\t" else ch)


def read_parquet(engine: Engine, path: Path, fmt: str):
    """(table name, column names, rows, temp objects)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from kalasag.engine.io import ROW_COLUMN, ReadError, _one_line

    spark = _spark(engine)
    reader = spark.read.option("mergeSchema", "true")
    if fmt == "parquet-dir":
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.parquet")
    try:
        df = reader.parquet(str(path))
        names = list(df.columns)
        for reserved in (ROW_COLUMN, "_kalasag_file", "_kalasag_idx"):
            if reserved in names:
                raise ReadError(f"{path}: column name '{reserved}' is reserved")
        cols = []
        for f in df.schema.fields:
            c = F.col(_q(f.name))
            if isinstance(f.dataType, T.TimestampType):  # an instant: UTC with Z (session time zone is UTC)
                c = F.date_format(c, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'")
            elif isinstance(f.dataType, T.TimestampNTZType):  # naive: no offset
                c = F.date_format(c, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
            else:
                c = c.cast("string")
            cols.append(c.alias(f.name))
        df = df.select(
            *cols, F.col("_metadata.file_path").alias("_kalasag_file"), F.col("_metadata.row_index").alias("_kalasag_idx")
        )
        numbered, total = _row_numbers(engine, df, "_kalasag_file", "_kalasag_idx", "_kalasag_file")
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ReadError(f"{path}: cannot be read as Parquet ({_one_line(exc)})") from exc
    raw_name = f"_kalasag_raw_{next(_ids)}"
    numbered.select(ROW_COLUMN, *[F.col(_q(c)) for c in names]).createOrReplaceTempView(raw_name)
    return raw_name, names, total, [("VIEW", raw_name)]


def release_objects(engine: Engine, objects: list[tuple[str, str]]) -> None:
    spark = _spark(engine)
    for kind, name in objects:
        if kind == "FILE":
            Path(name).unlink(missing_ok=True)
        elif kind == "DIR":
            shutil.rmtree(name, ignore_errors=True)
        else:
            try:
                spark.catalog.uncacheTable(name)
            except Exception:  # noqa: BLE001 - a view that was never cached
                pass
            spark.catalog.dropTempView(name)


def write(engine: Engine, sql: str, path: Path) -> Path:
    """One `.parquet` or `.csv` file, written by the executors: `coalesce(1)` into a scratch
    directory next to `path`, then the single part file renamed to `path` (nothing is collected
    on the driver)."""
    spark = _spark(engine)
    df = spark.sql(sql).coalesce(1)
    scratch = path.parent / f".{path.name}.spark-{os.getpid()}-{next(_ids)}"
    try:
        if path.suffix == ".parquet":
            df.write.mode("overwrite").parquet(str(scratch))
            part_glob = "part-*.parquet"
        else:
            (
                df.write.mode("overwrite")
                .option("header", True).option("quote", '"').option("escape", '"')
                .option("nullValue", "").option("emptyValue", '""')
                .option("timestampFormat", "yyyy-MM-dd HH:mm:ss.SSSSSS")
                .option("timestampNTZFormat", "yyyy-MM-dd HH:mm:ss.SSSSSS")
                .csv(str(scratch))
            )
            part_glob = "part-*.csv"
        parts = sorted(scratch.glob(part_glob))
        if len(parts) != 1:  # pragma: no cover - coalesce(1) writes one part (empty results too)
            raise EngineError(f"{path}: Spark wrote {len(parts)} part files, expected one")
        os.replace(parts[0], path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path
