"""The one place that knows about DuckDB (default) and PySpark.

Every other room builds Ibis expressions and hands them to an `Engine` to read, cache, write or
fetch. Swapping the backend changes nothing upstream (the Splink idea: one API, several SQL
engines).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

ENGINES = ("duckdb", "spark")
_names = itertools.count(1)


class EngineError(RuntimeError):
    """The engine could not start or execute (one-line message)."""


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
    ) -> None:
        if kind not in ENGINES:
            raise EngineError(f"unknown engine '{kind}' (choose from {', '.join(ENGINES)})")
        self.kind = kind
        if kind == "duckdb":
            import duckdb  # noqa: F401  (the engine room is the only one allowed to)

            config: dict[str, Any] = {"preserve_insertion_order": True}
            if threads:
                config["threads"] = threads
            if memory_limit:
                config["memory_limit"] = memory_limit
            if temp_directory:
                config["temp_directory"] = temp_directory
            self.con = ibis.duckdb.connect(**config)
        else:  # pragma: no cover - exercised by the spark tests of a later issue
            try:
                from pyspark.sql import SparkSession
            except ImportError as exc:
                raise EngineError("the spark engine needs pyspark: pip install 'pyspark>=4.0,<4.1'") from exc
            builder = SparkSession.builder.master(spark_master or "local[2]").appName("kalasag")
            builder = builder.config("spark.sql.session.timeZone", "UTC")
            self._spark = builder.getOrCreate()
            self.con = ibis.pyspark.connect(self._spark)

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
            # a cached temporary view: nothing is written to a warehouse directory
            self.con._session.sql(self.con.compile(expr)).createOrReplaceTempView(name)
            self.con._session.catalog.cacheTable(name)
            return self.con.table(name)
        return self.con.create_table(name, expr, temp=True, overwrite=True)

    def fetch(self, expr: ir.Expr, limit: int | None = None) -> pd.DataFrame:
        """Bring a *small* result to pandas (reports, explanations of alerted accounts)."""
        if isinstance(expr, ir.Table) and limit is not None:
            expr = expr.limit(limit)
        return self.con.execute(expr)

    def scalar(self, expr: ir.Scalar) -> Any:
        return self.con.execute(expr)

    def count(self, expr: ir.Table) -> int:
        return int(self.con.execute(expr.count()))

    # ---- files ----------------------------------------------------------------------------
    def write(self, expr: ir.Table, path: str | os.PathLike[str]) -> Path:
        """Write an expression to `.parquet` or `.csv` (by the file's suffix), streaming."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".parquet":
            self.con.to_parquet(expr, path)
        elif path.suffix == ".csv":
            self.con.to_csv(expr, path)
        else:
            raise EngineError(f"{path}: can only write .parquet or .csv")
        return path


def connect(kind: str = "duckdb", **kwargs: Any) -> Engine:
    return Engine(kind, **kwargs)
