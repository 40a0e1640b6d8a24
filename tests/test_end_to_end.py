"""A small simulated world through `simulate`, `scan` and `evaluate`, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kalasag.cli import app
from kalasag.model import ALERT_COLUMNS, QUARANTINE_REASONS

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("world")
    res = runner.invoke(app, ["simulate", "--out", str(d), "--seed", "5", "--scale", "0.03", "--inject-errors", "0.005", "--quiet"])
    assert res.exit_code == 0, res.output
    return d


@pytest.fixture(scope="module")
def run_dir(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    res = runner.invoke(app, ["scan", str(world / "transfers.csv.gz"), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "rows in" in res.output
    return out


def test_scan_writes_every_output(run_dir):
    for name in ("alerts.csv", "alerts.parquet", "scores.parquet", "quarantine.csv", "run.json", "report.html",
                 "networks.csv", "entities.csv", "households.csv", "entity_alerts.csv", "household_alerts.csv"):
        assert (run_dir / name).stat().st_size > 0, name


def test_entity_alerts_cover_every_alerted_account(run_dir):
    alerts = pd.read_csv(run_dir / "alerts.csv", dtype={"account_id": str})
    ents = pd.read_csv(run_dir / "entity_alerts.csv", dtype=str)
    covered = {(a, side) for accs, side in zip(ents["alerted_accounts"], ents["side"]) for a in accs.split(";")}
    assert covered == set(zip(alerts["account_id"], alerts["side"]))
    page = (run_dir / "report.html").read_text()
    assert 'id="entities"' in page


def test_counts_reconcile_and_quarantine_has_reasons(world, run_dir):
    run = json.loads((run_dir / "run.json").read_text())
    from kalasag.engine.backend import default_memory_limit

    assert run["engine"] == "duckdb" and run["memory_limit"] == default_memory_limit()   # the cap it ran with
    # the work tables' file sat beside the spill folder, and is gone after the scan
    work = run["work_database"]
    assert work.startswith(run["temp_directory"] + "-") and work.endswith(".duckdb") and not Path(work).exists()
    c = run["counts"]
    assert c["rows_in"] == c["accepted"] + c["quarantined"]
    injected = json.loads((world / "world.json").read_text())["injected_errors"]
    assert c["quarantined"] >= injected > 0
    q = pd.read_csv(run_dir / "quarantine.csv", dtype=str)
    assert len(q) == c["quarantined"]
    assert set(q["reason"]) <= set(QUARANTINE_REASONS)
    assert sum(run["quarantine_reasons"].values()) == c["quarantined"]


def test_alerts_explain_themselves(run_dir):
    alerts = pd.read_csv(run_dir / "alerts.csv")
    assert list(alerts.columns) == [c.name for c in ALERT_COLUMNS]
    assert len(alerts) > 0
    assert set(alerts["side"]) <= {"sender", "receiver"}
    assert alerts["score"].between(0, 1).all()
    assert (alerts["score"].diff().dropna() <= 1e-12).all(), "alerts sorted by score"
    for _, row in alerts.iterrows():
        assert row["indicators"], row["account_id"]
        first = row["indicators"].split(";")[0]
        assert first in row["explanation"] or "I-" in row["explanation"]
        assert any(ch.isdigit() for ch in row["explanation"])
    parquet = pd.read_parquet(run_dir / "alerts.parquet")
    assert len(parquet) == len(alerts)


def test_scores_cover_every_account(run_dir):
    scores = pd.read_parquet(run_dir / "scores.parquet")
    run = json.loads((run_dir / "run.json").read_text())
    assert (scores["side"] == "sender").sum() == run["counts"]["accounts"]["sender"]
    assert (scores["side"] == "receiver").sum() == run["counts"]["accounts"]["receiver"]
    assert scores.groupby("side")["alerted"].sum().to_dict() == run["counts"]["alerts"]


def test_evaluate_prints_metrics_per_side(world, run_dir):
    res = runner.invoke(app, ["evaluate", str(run_dir), str(world / "labels.csv"), "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output)
    for side in ("sender", "receiver"):
        m = metrics["sides"][side]
        assert 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1
        assert m["n_positive"] > 0
    # the detector must beat chance on its own simulator by a wide margin
    assert metrics["sides"]["sender"]["average_precision"] > 0.3
    assert metrics["sides"]["receiver"]["average_precision"] > 0.3


def test_console_script_error_is_one_line(tmp_path):
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x01\x02 not a table \xff\xfe")
    exe = Path(sys.executable).with_name("kalasag")
    res = subprocess.run([str(exe), "scan", str(junk), "--out", str(tmp_path / "o"), "--quiet"], capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "junk.csv" in lines[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["scan", "/nonexistent/x.csv", "--out", "o"], "x.csv"),
        (["evaluate", "/nonexistent-run", "/nonexistent/labels.csv"], "nonexistent"),
        (["simulate", "--out", "o", "--scale", "-1"], "--scale"),
        (["scan", "README.md", "--out", "o", "--now", "yesterday"], "--now"),
        (["scan", "README.md", "--out", "o", "--memory-limit", "lots"], "--memory-limit: 'lots' is not a memory size"),
        (["scan", "README.md", "--out", "o", "--engine", "spark", "--memory-limit", "4GB"], "--memory-limit applies to"),
        (["scan", "README.md", "--out", "o", "--temp-dir", "/nonexistent-spill"], "--temp-dir: /nonexistent-spill is not an existing directory"),
        (["scan", "README.md", "--out", "o", "--engine", "spark", "--temp-dir", "."], "--temp-dir applies to the duckdb engine"),
    ],
)
def test_cli_errors_exit_non_zero_with_a_message(args, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert "Traceback" not in res.output


def test_bad_config_is_one_line(world, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[scoring]\nalert_threshold = 7\n")
    res = runner.invoke(app, ["scan", str(world / "transfers.csv.gz"), "--out", str(tmp_path / "o"), "--config", str(cfg), "--quiet"])
    assert res.exit_code == 2
    assert "alert_threshold" in res.output and "bad.toml" in res.output


def test_indicators_command_lists_every_evidence_a_score_combines() -> None:
    """`kalasag indicators` lists the registry and the scoring room's own evidence (A-01, P-01),
    each with the sides that have a weight."""
    from kalasag.indicators import INDICATORS

    res = runner.invoke(app, ["indicators"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    rows = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.count("│") >= 4}
    assert set(INDICATORS) | {"A-01", "P-01"} <= set(rows)
    assert "sender, receiver" in rows["A-01"] and "docs/scoring.md" in rows["A-01"]
    assert rows["P-01"].split("│")[3].strip() == "receiver"
