"""The `kalasag` command line: the top floor. Nothing imports it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from kalasag.cli.errors import fail, friendly

app = typer.Typer(
    name="kalasag",
    help="Kalasag: find payments for live-streamed child sexual exploitation in transfer data, and explain every alert.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console(highlight=False, soft_wrap=True)

try:  # the media commands (issue 6) live in their own module
    from kalasag.cli import media as _media

    app.add_typer(_media.app, name="media")
except ImportError:  # pragma: no cover - media extras missing
    pass

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _parse_now(now: Optional[str]) -> Optional[datetime]:
    if now is None:
        return None
    try:
        value = datetime.fromisoformat(now.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--now: '{now}' is not an ISO 8601 timestamp (e.g. 2026-01-31T00:00:00Z)")
    if value.tzinfo is None:
        fail(f"--now: '{now}' needs a UTC offset or Z")
    return value


@app.command()
@friendly
def scan(
    input: Annotated[Path, typer.Argument(help="Transfers: CSV (plain or .gz), Parquet file or a directory of Parquet files.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write (created if needed).")],
    config: Annotated[Optional[Path], typer.Option(help="TOML config merged over the defaults.")] = None,
    mapping: Annotated[Optional[Path], typer.Option(help="TOML mapping of provider column names to the canonical schema.")] = None,
    fx: Annotated[Optional[Path], typer.Option(help="CSV of monthly FX rates (month,currency,usd_per_unit) overriding the bundled table.")] = None,
    engine: Annotated[str, typer.Option(help="Execution engine: duckdb (embedded, default) or spark.")] = "duckdb",
    spark_master: Annotated[Optional[str], typer.Option("--spark-master", help="Spark master URL (local[4], spark://host:7077, yarn) or Spark Connect sc://host:15002; default local[2] (docs/scale.md).")] = None,
    memory_limit: Annotated[Optional[str], typer.Option("--memory-limit", help="DuckDB's memory cap (e.g. 6GB); larger intermediates spill to disk. Default: $KALASAG_MEMORY_LIMIT, else 25% of RAM.")] = None,
    temp_dir: Annotated[Optional[Path], typer.Option("--temp-dir", help="Directory DuckDB spills to (a large scan needs tens of GB). Default: $KALASAG_TEMP_DIR, else the system's temporary directory.")] = None,
    now: Annotated[Optional[str], typer.Option(help="Clock for the future-timestamp check (ISO 8601); default: now.")] = None,
    labels: Annotated[Optional[Path], typer.Option(help="Ground-truth labels.csv: evaluate in the same run and show the metrics in the report.")] = None,
    watchlist: Annotated[Optional[Path], typer.Option(help="CSV of known subjects from earlier cases (account_id, name, phone) for I-23.")] = None,
    model: Annotated[Optional[Path], typer.Option(help="Directory (or model.json) written by `kalasag feedback`: use its learned weights.")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip report.html.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Score every sender and receiver account and write explained alerts.

    Writes alerts.csv, alerts.parquet, networks.csv, scores.parquet, evidence.parquet, quarantine.csv, run.json and report.html.

    Example: [bold]kalasag scan transfers.csv.gz --out runs/2026-11[/bold]
    """
    from kalasag.engine import connect
    from kalasag.pipeline import scan as run_scan

    if spark_master and engine != "spark":
        fail("--spark-master needs --engine spark")
    eng = connect(engine, spark_master=spark_master, memory_limit=memory_limit, temp_directory=temp_dir)
    try:
        result = run_scan(
            input, out_dir, config_path=config, mapping=mapping, fx=fx, engine=eng, now=_parse_now(now),
            quiet=quiet, write_report=not no_report, labels=labels, watchlist=watchlist, model=model,
        )
    finally:
        eng.close()   # DuckDB: its work database file goes now, whatever happened
    _print_run_summary(result.run, result.out_dir)


def _print_run_summary(run: dict, out_dir: Path) -> None:
    c = run["counts"]
    out.print(
        f"[bold]rows in {c['rows_in']:,}[/bold] = accepted {c['accepted']:,} + quarantined {c['quarantined']:,}"
    )
    if run.get("quarantine_reasons"):
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(run["quarantine_reasons"].items(), key=lambda kv: -kv[1]) if v)
        if reasons:
            out.print(f"quarantine reasons: {reasons}")
    for note in run.get("notes", []):
        out.print(f"note: {note}")
    acc, al = c["accounts"], c["alerts"]
    out.print(
        f"accounts scored: {acc['sender']:,} senders, {acc['receiver']:,} receivers; "
        f"[bold]alerts: {al['sender']:,} senders, {al['receiver']:,} receivers, {c.get('networks', 0):,} networks[/bold]"
    )
    out.print(f"run directory: {out_dir}  (report: {Path(out_dir) / 'report.html'})")


@app.command()
@friendly
def feedback(
    dispositions: Annotated[Path, typer.Argument(help="CSV: account_id, side, disposition (true_positive|false_positive)[, note].")],
    run_dir: Annotated[Path, typer.Option("--run", help="The run directory the accounts were scored in (its evidence.parquet).")],
    model_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write model.json into.")],
    config: Annotated[Optional[Path], typer.Option(help="TOML config merged over the defaults (recorded as a hash).")] = None,
) -> None:
    """Learn scoring weights from analysts' dispositions (logistic regression per side, cross-validated).

    Example: [bold]kalasag feedback reviewed.csv --run runs/2026-11 --out models/2026-11[/bold],
    then [bold]kalasag scan transfers.csv.gz --out runs/2026-12 --model models/2026-11[/bold]
    """
    from kalasag.engine import connect
    from kalasag.model import load_config
    from kalasag.pipeline.scan import indicator_refs
    from kalasag import scoring

    cfg = load_config(config)
    disp = scoring.read_dispositions(dispositions)
    labelled, unknown = scoring.labelled_evidence(connect(), disp, run_dir)
    if unknown:
        out.print(f"note: {unknown:,} dispositioned account(s) are not in {run_dir} and were left out")
    model = scoring.train(labelled, indicator_refs(), cfg, run_dir=run_dir, unknown_accounts=unknown)
    path = scoring.save_model(model, model_dir)
    table = Table("side", "TP", "FP", "folds", "precision", "recall", "F1", "AP", title="cross-validated (out-of-fold)")
    for side, m in model.sides.items():
        c = m.cv
        table.add_row(side, str(m.n_true_positive), str(m.n_false_positive), str(c.folds), f"{c.precision:.3f}",
                      f"{c.recall:.3f}", f"{c.f1:.3f}", f"{c.average_precision:.3f}")
    out.print(table)
    for side in scoring.skipped_sides(model):
        out.print(f"note: {side}: too few dispositions of one class; scans keep the configured {side} weights")
    out.print(f"model written to {path}")


@app.command()
@friendly
def simulate(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for transfers, labels.csv and world.json.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same world.")] = 0,
    scale: Annotated[float, typer.Option(help="1.0 ≈ 300,000 transfers over 12 months.")] = 1.0,
    format: Annotated[str, typer.Option("--format", help="csv.gz or parquet.")] = "csv.gz",
    regime: Annotated[str, typer.Option(help="Named regime (see docs/simulator.md).")] = "baseline",
    inject_errors: Annotated[float, typer.Option(help="Fraction of deliberately broken rows (CSV only).")] = 0.0,
    parts: Annotated[int, typer.Option(help="Write a partitioned Parquet directory of this many independent parts (large worlds, bounded memory).")] = 1,
    quiet: QuietOpt = False,
) -> None:
    """Write a synthetic year of transfers into the Philippines with ground-truth labels.

    Example: [bold]kalasag simulate --out world --seed 7 --scale 0.1[/bold]
    """
    from kalasag.simulate import simulate_world

    if scale <= 0:
        fail(f"--scale must be positive, got {scale}")
    summary = simulate_world(
        out_dir, seed=seed, scale=scale, fmt=format, regime=regime, inject_errors=inject_errors, parts=parts, progress=not quiet
    )
    out.print(f"wrote {summary.n_transfers:,} transfers to {out_dir}")
    for name, path in summary.files.items():
        out.print(f"  {name}: {path}")


@app.command()
@friendly
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `kalasag scan`.")],
    labels: Annotated[Path, typer.Argument(help="labels.csv with account_id, side, role (from `kalasag simulate`).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Precision, recall, F1 and average precision per side against ground-truth labels; with the
    run's entities.csv, also link precision/recall and the facilitator operations recovered whole in
    one entity or household alert (operations.csv beside the labels adds the paid-accounts view).

    Example: [bold]kalasag evaluate runs/demo world/labels.csv[/bold]
    """
    from kalasag.evaluate import evaluate as run_eval
    from kalasag.evaluate import format_evaluation

    result = run_eval(run_dir, labels)
    if json_out:
        out.print_json(json.dumps(result, default=float))
    else:
        out.print(format_evaluation(result), markup=False)


@app.command()
@friendly
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Where the world and the run go.")] = Path("demo-out"),
    seed: Annotated[int, typer.Option(help="World seed.")] = 2026,
    scale: Annotated[float, typer.Option(help="World size (1.0 ≈ 300,000 transfers).")] = 1.0,
    quiet: QuietOpt = False,
) -> None:
    """Simulate a world, scan it, evaluate the alerts and say where the report is.

    Example: [bold]kalasag demo --out demo-out[/bold]
    """
    import time

    from kalasag.evaluate import format_evaluation
    from kalasag.pipeline import scan as run_scan
    from kalasag.simulate import simulate_world

    t0 = time.perf_counter()
    world = out_dir / "world"
    run = out_dir / "run"
    out.rule("[bold]1/3 simulate")
    summary = simulate_world(world, seed=seed, scale=scale, inject_errors=0.001, progress=not quiet)
    out.print(f"{summary.n_transfers:,} transfers, labels in {summary.files.get('labels')}")
    out.rule("[bold]2/3 scan")
    result = run_scan(summary.files["transfers"], run, quiet=quiet, labels=summary.files["labels"])
    _print_run_summary(result.run, run)
    out.rule("[bold]3/3 evaluate")
    out.print(format_evaluation(result.run["metrics"]), markup=False)
    out.print(f"\n[bold green]done in {time.perf_counter() - t0:.0f} s.[/bold green] Open the report: {(run / 'report.html').resolve()}")


@app.command("indicators")
@friendly
def list_indicators() -> None:
    """List the indicators with their sides and sources.

    Example: [bold]kalasag indicators[/bold]
    """
    from kalasag.indicators import INDICATORS
    from kalasag.model import load_config
    from kalasag.scoring import SCORING_EVIDENCE, weight_for

    table = Table("id", "name", "sides", "source", show_lines=False)
    for ind in INDICATORS.values():
        table.add_row(ind.id, ind.name, ", ".join(ind.sides), ind.source.split()[0] if ind.source else "")
    config = load_config()
    for ev_id, (ref, _source) in SCORING_EVIDENCE.items():   # computed by the scoring room (docs/scoring.md)
        sides = [s for s in ("sender", "receiver") if weight_for(config, ev_id, s)]
        table.add_row(ev_id, ref.name, ", ".join(sides), "docs/scoring.md")
    out.print(table)


@app.command()
def version() -> None:
    """Print the version.

    Example: [bold]kalasag version[/bold]
    """
    import kalasag

    out.print(f"kalasag {kalasag.__version__}")


from kalasag.cli import service as _service  # noqa: E402 - `kalasag serve`, `kalasag apikey` (issue 5)
_service.register(app)


def main() -> None:
    app()
