"""The one place that knows about DuckDB (default) and PySpark.

Every other room builds Ibis expressions and hands them to an `Engine` to read, cache, write or
fetch. Swapping the backend changes nothing upstream (the Splink idea: one API, several SQL
engines).
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
import weakref
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

ENGINES = ("duckdb", "spark")
_names = itertools.count(1)


MEMORY_SHARE = 0.25   # DuckDB's default cap, as a share of physical memory (docs/scale.md, "Memory on one machine")
_UNITS = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_memory_limit(text: str, where: str = "--memory-limit") -> str:
    """A memory size such as "6GB", "6 GiB" or "512MB" in DuckDB's spelling ("6GB", "6GiB"); a
    one-line EngineError naming `where` for anything else."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", text or "", flags=re.IGNORECASE)
    if m is None:
        raise EngineError(f"{where}: '{text}' is not a memory size (e.g. 6GB, 512MB, 8GiB)")
    number, unit = m.group(1), m.group(2).upper()
    if float(number) * _UNITS[unit] < 2**27:
        raise EngineError(f"{where}: '{text}' is below 128 MiB, too little for a scan")
    return f"{number}{unit[:-2] + 'iB' if unit.endswith('IB') else unit}"


def default_memory_limit() -> str:
    """`KALASAG_MEMORY_LIMIT` if set (e.g. "8GB"), else MEMORY_SHARE (25 %) of physical memory in
    whole GB: 5GB on the 23.5 GiB development machine, where the 10M-transfer scan peaked at 5.8 GB
    with that cap (docs/benchmarks.md)."""
    if os.environ.get("KALASAG_MEMORY_LIMIT"):
        return parse_memory_limit(os.environ["KALASAG_MEMORY_LIMIT"], "KALASAG_MEMORY_LIMIT")
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return "4GB"
    return f"{max(1, int(total * MEMORY_SHARE / 2**30))}GB"


class EngineError(RuntimeError):
    """The engine could not start or execute (one-line message)."""


def spill_directory(parent: str | os.PathLike[str] | None = None) -> str:
    """Where DuckDB spills what does not fit under its memory cap: a `kalasag-duckdb-<pid>` folder
    in `parent` (`--temp-dir`), else in `$KALASAG_TEMP_DIR`, else in the system's temporary
    directory. A scan of 100M transfers needs tens of GB there (docs/scale.md), so it may have to be
    on another disk than /tmp. A parent that is not an existing, writable directory is a one-line
    EngineError."""
    where = "--temp-dir" if parent else "KALASAG_TEMP_DIR"
    parent = parent or os.environ.get("KALASAG_TEMP_DIR") or None
    if parent is None:
        return os.path.join(tempfile.gettempdir(), f"kalasag-duckdb-{os.getpid()}")
    path = Path(parent).expanduser()
    if not path.is_dir():
        raise EngineError(f"{where}: {path} is not an existing directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise EngineError(f"{where}: {path} is not writable")
    return str(path / f"kalasag-duckdb-{os.getpid()}")


def work_database(spill: str) -> str:
    """The file that holds one DuckDB engine's work tables: beside its spill folder, named by the
    process and the engine (`kalasag-duckdb-<pid>-<n>.duckdb`), removed when the engine closes.

    Why a file and not memory: DuckDB compresses the tables of a database file (dictionary, FSST,
    bit-packing), and writes large `CREATE TABLE … AS` results straight to it, while the temporary
    tables of an in-memory database are kept, and spilled, uncompressed. Ingesting 10M transfers
    under a 500 MB cap spilled 7.6 GB as temporary tables and keeps 1.7 GB in the file
    (docs/benchmarks.md, "Session 11"), which is what lets 100M transfers run on one disk."""
    return f"{spill}-{next(_names)}.duckdb"


_LEFTOVER = re.compile(r"^kalasag-duckdb-(\d+)(?:-\d+\.duckdb(?:\.wal)?)?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers(parent: str) -> list[str]:
    """Remove the work database files and spill folders that engines of processes no longer running
    left in `parent` (a killed scan cannot clean up after itself; at 100M transfers that is tens
    of GB). Only names this module makes are touched, and a spill folder only if it holds nothing
    but DuckDB's `duckdb_temp*` files. Returns what was removed."""
    removed: list[str] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        m = _LEFTOVER.match(name)
        if m is None or _alive(int(m.group(1))):
            continue
        path = os.path.join(parent, name)
        try:
            if os.path.isdir(path):
                inside = os.listdir(path)
                if any(not f.startswith("duckdb_temp") for f in inside):
                    continue
                for f in inside:
                    os.unlink(os.path.join(path, f))
                os.rmdir(path)
            else:
                os.unlink(path)
            removed.append(path)
        except OSError:  # gone meanwhile, or not ours to remove
            continue
    return removed


def _remove_work_files(path: str) -> None:
    for name in (path, path + ".wal"):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass


def error_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the errors it was raised from (`__cause__`, else `__context__`), outermost first:
    libraries wrap the error that says what went wrong (Splink wraps DuckDB's in its own, whose
    first line is only "Error executing the following sql …")."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and all(e is not c for c in chain):
        chain.append(e)
        e = e.__cause__ or e.__context__
    return chain


def resource_error(exc: BaseException) -> str | None:
    """One line for a failure that is a lack of memory or of temporary disk space, not a bug (None
    otherwise): DuckDB's out-of-memory error (its cap, or the spill directory's disk, is full) or
    an I/O error 'No space left on device'. The advice names the two levers."""
    import duckdb

    for e in error_chain(exc):   # the failure itself or what it was raised from
        text = str(e)
        if isinstance(e, duckdb.OutOfMemoryException) or "No space left on device" in text:
            first = " ".join(text.strip().splitlines()[0].split()) if text.strip() else e.__class__.__name__
            return (f"out of memory or temporary disk space ({first}): raise --memory-limit, or point --temp-dir "
                    "(or KALASAG_TEMP_DIR) at a disk with more free space (docs/scale.md)")
    return None


class Engine:
    """A connected Ibis backend plus the file I/O Kalasag needs."""

    def __init__(
        self,
        kind: str = "duckdb",
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        temp_directory: str | None = None,
        spark_master: str | None = None,
        spark_conf: dict[str, str] | None = None,
    ) -> None:
        if kind not in ENGINES:
            raise EngineError(f"unknown engine '{kind}' (choose from {', '.join(ENGINES)})")
        self.kind = kind
        if kind == "duckdb":
            import duckdb  # noqa: F401  (the engine room is the only one allowed to)

            config: dict[str, Any] = {"preserve_insertion_order": True}
            if threads:
                config["threads"] = threads
            # DuckDB's own default (80% of RAM) leaves nothing for the Python side or a neighbour:
            # cap it and let large intermediates spill to disk instead.
            self.memory_limit = parse_memory_limit(memory_limit) if memory_limit else default_memory_limit()
            config["memory_limit"] = self.memory_limit
            self.temp_directory = spill_directory(temp_directory)
            config["temp_directory"] = self.temp_directory
            self.work_database: str | None = work_database(self.temp_directory)
            remove_leftovers(os.path.dirname(self.temp_directory))
            _remove_work_files(self.work_database)
            self.con = ibis.duckdb.connect(database=self.work_database, **config)
            # the file goes with the engine: at close(), or when the engine is garbage-collected
            self._cleanup = weakref.finalize(self, _close_and_remove, self.con, self.work_database)
        else:
            if memory_limit:
                raise EngineError("--memory-limit applies to the duckdb engine; give Spark its memory with "
                                  "spark.driver.memory / spark.executor.memory (docs/scale.md)")
            if temp_directory:
                raise EngineError("--temp-dir applies to the duckdb engine; Spark spills to spark.local.dir (docs/scale.md)")
            self.memory_limit = None
            self.temp_directory = None
            self.work_database = None
            self._spark = _spark_session(spark_master, spark_conf)
            self.con = ibis.pyspark.connect(self._spark)
            self._reliable_checkpoints = bool(self._spark.conf.get("spark.checkpoint.dir", None))

    @property
    def spark(self):  # noqa: ANN201 - the SparkSession (for libraries such as Splink)
        if self.kind != "spark":
            raise EngineError("this operation needs the spark engine")
        return self._spark

    def native(self, table: ir.Table):  # noqa: ANN201
        """The backend's own handle on a materialized table (a DuckDB relation or a Spark DataFrame),
        for libraries that take one (Splink)."""
        if self.kind == "duckdb":
            return self.duckdb.table(table.get_name())
        return self._spark.table(table.get_name())

    # ---- raw SQL access for the engine room only -------------------------------------------
    @property
    def duckdb(self):  # noqa: ANN201 - the raw duckdb connection
        if self.kind != "duckdb":
            raise EngineError("this operation needs the duckdb engine")
        return self.con.con

    # ---- tables ---------------------------------------------------------------------------
    def from_records(self, data: pd.DataFrame | pa.Table, name: str | None = None) -> ir.Table:
        """Register a small in-memory table (reference data, fixtures)."""
        name = name or f"_kalasag_mem_{next(_names)}"
        if self.kind == "spark":
            frame = data.to_pandas() if isinstance(data, pa.Table) else data
            self._spark.createDataFrame(frame).createOrReplaceTempView(name)
            return self.con.table(name)
        if isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, preserve_index=False)
        return self.con.create_table(name, data, temp=True, overwrite=True)

    def materialize(self, expr: ir.Table, name: str | None = None) -> ir.Table:
        """Compute an expression once and keep the result as a temporary table."""
        name = name or f"_kalasag_tmp_{next(_names)}"
        if self.kind == "spark":
            # A temporary view over an eager local checkpoint (kept by the executors, memory then
            # disk; nothing is written to a warehouse). The checkpoint also cuts the lineage: later
            # queries plan against a small scan instead of the whole pipeline so far (with plain
            # caching every plan carries every earlier step, and planning time and driver memory
            # grow with each step). A data error surfaces here, as SparkDataError (one line).
            # With `spark.checkpoint.dir` set (a cluster: HDFS, S3…), reliable checkpoints instead:
            # they survive the loss of an executor.
            df = self.con._session.sql(self.con.compile(expr))
            try:
                df = df.checkpoint(eager=True) if self._reliable_checkpoints else df.localCheckpoint(eager=True)
            except Exception as exc:  # noqa: BLE001
                raise _spark_error(exc) from exc
            df.createOrReplaceTempView(name)
            return self.con.table(name)
        # a table of the work database (compressed, written to its file), not a temporary table
        # (kept and spilled uncompressed): see `work_database`
        return self.con.create_table(name, expr, overwrite=True)

    def drop(self, *tables: ir.Table) -> None:
        """Drop tables made by `materialize` or `from_records` once nothing refers to them (frees
        their memory, spill and work-database space). A table's `get_name()` is qualified
        (`catalog.schema.name`), which `drop_table(name)` would take as one identifier."""
        for t in tables:
            op = t.op()
            if self.kind == "spark":
                self._spark.catalog.dropTempView(op.name)
            else:
                ns = op.namespace
                self.con.drop_table(op.name, database=(ns.catalog, ns.database) if ns.catalog else ns.database,
                                    force=True)

    def fetch(self, expr: ir.Expr, limit: int | None = None) -> pd.DataFrame:
        """Bring a *small* result to pandas (reports, explanations of alerted accounts)."""
        if isinstance(expr, ir.Table) and limit is not None:
            expr = expr.limit(limit)
        return self.con.execute(expr)

    def scalar(self, expr: ir.Scalar) -> Any:
        return self.con.execute(expr)

    def close(self) -> None:
        """Stop the Spark session, or close DuckDB and remove its work database file."""
        if self.kind == "spark":
            self._spark.stop()
        else:
            self._cleanup()

    def count(self, expr: ir.Table) -> int:
        return int(self.con.execute(expr.count()))

    # ---- files ----------------------------------------------------------------------------
    def write(self, expr: ir.Table, path: str | os.PathLike[str]) -> Path:
        """Write an expression to `.parquet` or `.csv` (by the file's suffix), streaming."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "spark":
            if path.suffix not in (".parquet", ".csv"):
                raise EngineError(f"{path}: can only write .parquet or .csv")
            from kalasag.engine import spark_io

            return spark_io.write(self, self.con.compile(expr), path)
        if path.suffix == ".parquet":
            self.con.to_parquet(expr, path)
        elif path.suffix == ".csv":
            self.con.to_csv(expr, path)
        else:
            raise EngineError(f"{path}: can only write .parquet or .csv")
        return path


def _close_and_remove(con: Any, path: str) -> None:
    try:
        con.disconnect()
    finally:
        _remove_work_files(path)


class SparkDataError(EngineError):
    """Spark failed while computing a result (e.g. a corrupt Parquet page): one line."""


def _spark_error(exc: BaseException) -> BaseException:
    """A Spark runtime failure as SparkDataError; analysis errors (a bug in an expression) unchanged."""
    from pyspark.errors import AnalysisException

    if isinstance(exc, AnalysisException):
        return exc
    text = str(exc).strip().splitlines()
    return SparkDataError(text[0] if text else exc.__class__.__name__)


# Session settings Kalasag relies on (docs/scale.md). ANSI mode is off: like DuckDB, integer
# division by zero gives NULL; every parse of user text uses TRY_CAST, so ANSI's strict casts
# would add nothing but failures. The session time zone is UTC: timestamps are naive UTC.
SPARK_DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}
# Only for a local session (no cluster): few shuffle partitions for small data, no web UI.
SPARK_LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "2g",
}


def _splink_jar() -> str | None:
    """The jar of Splink's Spark similarity functions (jaro_winkler …), when Splink is installed."""
    try:
        from splink.backends.spark import similarity_jar_location
    except ImportError:
        return None
    try:
        return str(similarity_jar_location())
    except Exception:  # noqa: BLE001 - a Splink without its Spark jar
        return None


def _spark_session(master: str | None, conf: dict[str, str] | None):  # noqa: ANN202 - a SparkSession
    """A SparkSession: `sc://host:15002` = Spark Connect; `local[N]`, `spark://…`, `yarn`… = classic;
    None = the master of spark-submit when run under it, else local[2]."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EngineError("the spark engine needs pyspark: pip install 'pyspark>=4.0,<4.1'") from exc
    import shutil

    builder = SparkSession.builder.appName("kalasag")
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit already chose the master
    settings = dict(SPARK_DEFAULTS)
    if master and master.startswith("sc://"):
        # Spark Connect: the server owns the cluster settings (and must have Splink's jar: docs/scale.md);
        # a client may only set session (spark.sql.*) settings
        builder = builder.remote(master)
        settings = {k: v for k, v in settings.items() if k.startswith("spark.sql.")}
    else:
        if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
            raise EngineError("the spark engine needs Java 17 or 21 (set JAVA_HOME or put java on PATH)")
        if master or not under_submit:
            builder = builder.master(master or "local[2]")
        if (master or ("" if under_submit else "local")).startswith("local"):
            settings.update(SPARK_LOCAL_DEFAULTS)
        jar = _splink_jar()
        if jar:  # Splink's Spark backend (entities room) needs its similarity UDFs on the classpath
            settings["spark.jars"] = ",".join(j for j in ((conf or {}).get("spark.jars"), jar) if j)
    settings.update({k: v for k, v in (conf or {}).items() if k != "spark.jars" or "spark.jars" not in settings})
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - no JVM, unreachable master …: one line
        text = str(exc).strip().splitlines()
        raise EngineError(f"cannot start Spark ({text[0] if text else exc.__class__.__name__})") from exc
    for key, value in settings.items():  # getOrCreate may return an existing session
        if key.startswith("spark.sql."):
            session.conf.set(key, value)
    return session


def connect(kind: str = "duckdb", **kwargs: Any) -> Engine:
    return Engine(kind, **kwargs)
