"""The same pipeline on Spark: a small simulated world scanned on DuckDB and on PySpark (local[2])
must give identical alerts (same accounts, scores equal to 1e-9) and identical quarantine counts.

One Spark session for the whole module (starting one takes seconds); skipped, with the reason
shown, when pyspark or Java is missing.
"""

from __future__ import annotations

import gzip
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.spark

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'pyspark>=4.0,<4.1')")
if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
    pytest.skip("Java is not installed (the spark engine needs Java 17 or 21)", allow_module_level=True)

from kalasag.engine import Engine, connect, read_input, release  # noqa: E402
from kalasag.pipeline import scan  # noqa: E402
from kalasag.simulate import simulate_world  # noqa: E402

NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture(scope="module")
def spark() -> Engine:
    eng = connect("spark")
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    simulate_world(out, seed=5, scale=0.01, inject_errors=0.03, progress=False)
    return out / "transfers.csv.gz"


def test_session_settings(spark: Engine) -> None:
    conf = spark.con._session.conf
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.sql.ansi.enabled") == "false"
    assert conf.get("spark.sql.shuffle.partitions") == "4"


def test_csv_read_numbers_rows_and_keeps_malformed(spark: Engine, tmp_path: Path) -> None:
    # rows 2 and 4 have the wrong number of fields; row 3 holds a quoted line break
    text = 'a,b,c\n1,2,3\n4,5\n"x\ny",q,r\n6,7,8,9\n10,"11,5",12\n'
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt", newline="") as fh:
        fh.write(text)
    raw = read_input(spark, path)
    try:
        assert raw.columns == ["a", "b", "c"]
        assert (raw.rows_parsed, raw.rows_malformed) == (3, 2)
        got = spark.fetch(raw.table.order_by("_kalasag_row"))
        assert got["_kalasag_row"].tolist() == [1, 3, 5]
        assert got["a"].tolist() == ["1", "x\ny", "10"]
        assert got["b"].tolist() == ["2", "q", "11,5"]
        bad = spark.fetch(raw.malformed.order_by("_kalasag_row"))
        assert bad["_kalasag_row"].tolist() == [2, 4]
        assert bad["text"].tolist() == ["4,5", "6,7,8,9"]
        assert bad["message"].tolist() == ["Expected Number of Columns: 3 Found: 2", "Expected Number of Columns: 3 Found: 4"]
        assert bad["error_type"].tolist() == ["MISSING COLUMNS", "TOO MANY COLUMNS"]
    finally:
        release(spark, raw)


def test_parquet_dir_rows_in_file_order_and_timestamps_as_text(spark: Engine, tmp_path: Path) -> None:
    d = tmp_path / "pq"
    d.mkdir()
    ts = pd.to_datetime(["2025-01-02T03:04:05.5Z", "2025-01-02T03:04:06Z"], utc=True, format="ISO8601")
    pd.DataFrame({"k": ["b1", "b2"], "ts": ts}).to_parquet(d / "part-b.parquet")
    pd.DataFrame({"k": ["a1", "a2", "a3"], "ts": ts.append(ts[:1])}).to_parquet(d / "part-a.parquet")
    raw = read_input(spark, d)
    try:
        got = spark.fetch(raw.table.order_by("_kalasag_row"))
        assert raw.rows_in == 5
        assert got["_kalasag_row"].tolist() == [1, 2, 3, 4, 5]
        assert got["k"].tolist() == ["a1", "a2", "a3", "b1", "b2"]
        assert got["ts"].tolist()[:2] == ["2025-01-02T03:04:05.500000Z", "2025-01-02T03:04:06.000000Z"]
    finally:
        release(spark, raw)


def test_scan_identical_on_both_engines(spark: Engine, world: Path, tmp_path: Path) -> None:
    d = scan(world, tmp_path / "duck", engine="duckdb", now=NOW, quiet=True, write_report=False)
    s = scan(world, tmp_path / "spark", engine=spark, now=NOW, quiet=True, write_report=False)
    assert s.run["engine"] == "spark"
    assert s.run["counts"]["quarantined"] == d.run["counts"]["quarantined"]
    assert s.run["quarantine_reasons"] == d.run["quarantine_reasons"]
    assert s.run["counts"]["accounts"] == d.run["counts"]["accounts"]
    # alerts: the same accounts, the same scores
    a_d = d.alerts.sort_values(["side", "account_id"]).reset_index(drop=True)
    a_s = s.alerts.sort_values(["side", "account_id"]).reset_index(drop=True)
    assert len(a_d) > 0
    assert a_s[["side", "account_id"]].equals(a_d[["side", "account_id"]])
    assert (a_s["score"] - a_d["score"]).abs().max() <= 1e-9
    assert a_s["indicators"].tolist() == a_d["indicators"].tolist()
    # every account's score, not only the alerted ones
    k = ["side", "account_id"]
    sc_d = pd.read_parquet(d.files["scores"]).sort_values(k).reset_index(drop=True)
    sc_s = pd.read_parquet(s.files["scores"]).sort_values(k).reset_index(drop=True)
    assert sc_s[k].equals(sc_d[k])
    assert (sc_s["score"] - sc_d["score"]).abs().max() <= 1e-9
    assert sc_s["indicators"].tolist() == sc_d["indicators"].tolist()
    # the quarantine file: one CSV, the same rows (row numbers in the file) with the same reasons
    assert sum(d.run["quarantine_reasons"].values()) > 0 and d.run["quarantine_reasons"].get("malformed_row", 0) > 0
    q_d = pd.read_csv(d.files["quarantine"], dtype=str)
    q_s = pd.read_csv(s.files["quarantine"], dtype=str)
    assert q_s[["row_number", "reason"]].equals(q_d[["row_number", "reason"]])
    # the same text too: details (malformed rows included) and the original fields
    pd.testing.assert_frame_equal(q_s, q_d)
    # network and entity alerts (the driver-side steps fed by the engine) agree too
    for key in ("networks", "entity_alerts", "household_alerts"):
        if key in d.files:
            f_d, f_s = pd.read_csv(d.files[key], dtype=str), pd.read_csv(s.files[key], dtype=str)
            cols = list(f_d.columns)
            assert list(f_s.columns) == cols, key
            pd.testing.assert_frame_equal(
                f_s.sort_values(cols).reset_index(drop=True), f_d.sort_values(cols).reset_index(drop=True), obj=key
            )


def test_cli_spark_master_needs_the_spark_engine(world: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kalasag.cli import app

    res = CliRunner().invoke(app, ["scan", str(world), "--out", str(tmp_path / "r"), "--spark-master", "local[1]"])
    assert res.exit_code == 2
    assert "--spark-master needs --engine spark" in res.output
    assert not (tmp_path / "r").exists()
