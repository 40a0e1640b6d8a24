"""`kalasag scan`: ingest → evidence → scoring → explanations → run directory.

Every tabular step is an Ibis expression executed by the engine; only the alerted accounts (and
the transfers of the top alerts, for the report's plots) are brought into Python.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

import kalasag
from kalasag import indicators as ind
from kalasag import evaluate as evaluation
from kalasag import entities as ent
from kalasag import ingest, report
from kalasag import network as net
from kalasag.engine import Engine, connect
from kalasag.model import SIDES, KalasagConfig, load_config
from kalasag.pipeline.progress import Stages
from kalasag import scoring
from kalasag.scoring import IndicatorRef, explain_row, score_table

ALERT_OUTPUT_COLUMNS = [
    "account_id", "side", "score", "risk_level", "indicators", "explanation", "n_transactions",
    "total_usd", "first_seen", "last_seen", "counterparties",
]


@dataclass
class ScanResult:
    out_dir: Path
    run: dict[str, Any]
    alerts: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)


def indicator_refs() -> list[IndicatorRef]:
    """Every piece of evidence the score combines: the indicators, then scoring's own (A-01, P-01)."""
    return [IndicatorRef(i.id, i.slug, i.name) for i in ind.INDICATORS.values()] + scoring.scoring_refs()


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"kalasag": kalasag.__version__, "python": platform.python_version()}
    for pkg in ("ibis-framework", "duckdb", "pyspark", "pandas", "pyarrow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _account_details(engine: Engine, transfers: ir.Table, side: str, ids: list[str]) -> dict[tuple[str, str], pd.DataFrame]:
    """Transfers of a few alerted accounts, shaped for the report's plots."""
    if not ids:
        return {}
    own, other = ("sender", "receiver") if side == "sender" else ("receiver", "sender")
    t = transfers.filter(transfers[f"{own}_id"].isin(ids))
    t = ind.with_local_hour(engine, t, "sender_country", "sender_local_hour")
    t = t.select(
        account_id=t[f"{own}_id"],
        timestamp=t.timestamp,
        amount=t.amount,
        currency=t.currency,
        amount_usd=t.amount_usd,
        channel=t.channel,
        counterparty_id=t[f"{other}_id"],
        counterparty_name=t[f"{other}_name"],
        counterparty_country=t[f"{other}_country"],
        reference=t.reference,
        sender_local_hour=t.sender_local_hour,
    ).order_by("timestamp")
    df = engine.fetch(t)
    return {(acc, side): g.drop(columns="account_id").reset_index(drop=True) for acc, g in df.groupby("account_id")}


def _score_histogram(engine: Engine, scores: ir.Table) -> pd.DataFrame:
    """Scores of every account binned in the engine (side, bin, n): small whatever the input size."""
    b = (scores.score * report.SCORE_BINS).floor().cast("int64")
    b = ibis.least(ibis.greatest(b, 0), report.SCORE_BINS - 1)
    return engine.fetch(scores.mutate(bin=b).group_by(["side", "bin"]).aggregate(n=ibis._.count()))


def _night_hours(config: KalasagConfig) -> tuple[int, int]:
    p = config.indicator_params("I-07")
    return int(p["night_start_hour"]), int(p["night_end_hour"])


def scan(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    config: KalasagConfig | None = None,
    config_path: str | Path | None = None,
    mapping: str | Path | None = None,
    fx: str | Path | None = None,
    engine: Engine | str = "duckdb",
    now: datetime | None = None,
    quiet: bool = False,
    write_report: bool = True,
    labels: str | Path | None = None,
    watchlist: str | Path | None = None,
    model: str | Path | None = None,
) -> ScanResult:
    started = datetime.now(UTC)
    config = config or load_config(config_path)
    refs = indicator_refs()
    learned = None
    if model is not None:  # learned weights replace [scoring] prior and weights for the sides it covers
        learned = scoring.load_model(model)
        config = scoring.apply_model(config, learned, refs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    eng = connect(engine) if isinstance(engine, str) else engine
    timings: dict[str, float] = {}
    files: dict[str, Path] = {}

    with Stages(quiet=quiet, total=10 if labels else 9) as stages:
        with stages.step("ingest", timings):
            ing = ingest.ingest(eng, input_path, config=config, mapping=mapping, fx=fx, now=now)
            files["quarantine"] = eng.write(ing.quarantine, out / "quarantine.csv")

        with stages.step("evidence", timings):
            wl = net.load_watchlist(eng, watchlist) if watchlist else None
            evidence = ind.compute_evidence(eng, ing.transfers, config, watchlist=wl)

        with stages.step("network evidence", timings):
            evidence = net.network_evidence(eng, ing.transfers, evidence, config)

        scored: dict[str, ir.Table] = {}
        with stages.step("scoring", timings):
            # the scoring room's own evidence: A-01 (anomaly) on both sides, P-01 (paid by high-scoring
            # senders) on receivers (docs/scoring.md)
            tables = scoring.scoring_evidence(eng, evidence, ing.transfers, config, refs)
            for side in SIDES:
                table = tables[side]
                scored[side] = eng.materialize(score_table(table, side, refs, config).mutate(side=ibis.literal(side)))
            all_scores = ibis.union(
                *[s.select("account_id", "side", "score", "alerted", "risk_level", "core_rule", "indicators") for s in scored.values()]
            )
            files["scores"] = eng.write(all_scores, out / "scores.parquet")
            # every scored account's evidence strengths (what `kalasag feedback` learns from)
            strength_cols = sorted({c for s in scored.values() for c in s.columns if c.endswith("_strength")})
            evidence_parts = []
            for side, s in scored.items():
                cols = {c: (s[c].cast("float64") if c in s.columns else ibis.null("float64")) for c in strength_cols}
                evidence_parts.append(s.select(account_id=s.account_id.cast("string"), side=s.side, core_rule=s.core_rule.cast("boolean"), **cols))
            files["evidence"] = eng.write(ibis.union(*evidence_parts), out / "evidence.parquet")
            alert_thresholds: dict[str, Any] = {}
            for side, s in scored.items():
                per_10k = config.scoring.alerts_per_10k.get(side)
                if per_10k is None:
                    alert_thresholds[side] = {"mode": "fixed", "threshold": config.scoring.alert_threshold}
                else:
                    n = eng.count(s)
                    alert_thresholds[side] = {
                        "mode": "capacity", "alerts_per_10k": per_10k, "n_accounts": n,
                        "k": scoring.capacity_k(n, per_10k),
                        "threshold": eng.scalar(s.filter(s.alerted).score.min()),
                    }

        frames = []
        explain = scoring.explainer(ind.explain, config)  # A-01/P-01 sentences from scoring, the rest from indicators
        with stages.step("explain", timings):
            for side in SIDES:
                s = scored[side]
                alerted = eng.fetch(s.filter(s.alerted).order_by(ibis.desc("score")))
                if len(alerted):
                    alerted["explanation"] = [
                        explain_row(row, side, refs, config, explain) for row in alerted.to_dict("records")
                    ]
                else:
                    alerted["explanation"] = pd.Series(dtype="string")
                frames.append(alerted)
            alerts = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
            alerts = alerts.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
            evidence_cols = [c for c in alerts.columns if c not in ALERT_OUTPUT_COLUMNS and c not in ("logit", "alerted")]
            alert_table = alerts[ALERT_OUTPUT_COLUMNS]
            files["alerts_csv"] = out / "alerts.csv"
            alert_table.to_csv(files["alerts_csv"], index=False)
            files["alerts_parquet"] = out / "alerts.parquet"
            alert_table.to_parquet(files["alerts_parquet"], index=False)
            # the numbers behind every explanation, for audit
            files["alert_evidence"] = out / "alert_evidence.parquet"
            alerts[["account_id", "side", *evidence_cols]].to_parquet(files["alert_evidence"], index=False)

        with stages.step("networks", timings):
            networks = net.detect_operations(eng, ing.transfers, scored, config)
            files["networks"] = out / "networks.csv"
            networks.to_csv(files["networks"], index=False)

        with stages.step("entities", timings):
            er = ent.resolve(eng, ing.transfers, config)
            files["entities"] = eng.write(er.entities, out / "entities.csv")
            files["households"] = out / "households.csv"
            er.households.to_csv(files["households"], index=False)
            entity_alerts = ent.entity_alerts(er.entities, alert_table, all_scores, config)
            household_alerts = ent.household_alerts(er.entities, alert_table, all_scores, config)
            files["entity_alerts"] = out / "entity_alerts.csv"
            entity_alerts.to_csv(files["entity_alerts"], index=False)
            files["household_alerts"] = out / "household_alerts.csv"
            household_alerts.to_csv(files["household_alerts"], index=False)

        counts_accounts = {side: eng.count(scored[side]) for side in SIDES}
        counts_alerts = {side: int((alerts["side"] == side).sum()) if len(alerts) else 0 for side in SIDES}
        run: dict[str, Any] = {
            "input": str(input_path),
            "watchlist": str(watchlist) if watchlist else None,
            "input_format": ing.input_format,
            "out_dir": str(out),
            "engine": eng.kind,
            "memory_limit": getattr(eng, "memory_limit", None),   # DuckDB's cap (None: Spark's own settings)
            "temp_directory": getattr(eng, "temp_directory", None),   # where DuckDB spilled (None: Spark)
            "work_database": getattr(eng, "work_database", None),     # its work tables' file (removed at close)
            "started": started.isoformat(),
            "counts": {
                "rows_in": ing.rows_in,
                "accepted": ing.accepted,
                "quarantined": ing.quarantined,
                "accounts": counts_accounts,
                "alerts": counts_alerts,
                "networks": len(networks),
                "entity_alerts": len(entity_alerts),
                "household_alerts": len(household_alerts),
                "alerts_by_risk": alerts.groupby(["side", "risk_level"]).size().rename("n").reset_index().to_dict("records")
                if len(alerts)
                else [],
            },
            "quarantine_reasons": dict(ing.reasons),
            "notes": list(ing.notes),
            "fx_source": ing.fx_source,
            "versions": versions(),
            "config_sha256": config.digest(),
            "model": (
                {"path": str(model), "trained_at": learned.trained_at, "sides": sorted(learned.sides)} if learned else None
            ),
            "thresholds": {
                "alert": config.scoring.alert_threshold,
                "alert_by_side": alert_thresholds,
                "high": config.scoring.risk_high,
                "medium": config.scoring.risk_medium,
            },
            "indicators": {
                **{i.id: {"name": i.name, "source": i.source} for i in ind.INDICATORS.values()},
                **{k: {"name": ref.name, "source": src} for k, (ref, src) in scoring.SCORING_EVIDENCE.items()},
            },
            "timings": timings,
            "entities": {"notes": list(er.notes), "model": er.model},
        }
        if ing.rows_in != ing.accepted + ing.quarantined:  # pragma: no cover - a bug, never a user error
            raise RuntimeError(f"counts do not reconcile: {ing.rows_in} != {ing.accepted} + {ing.quarantined}")

        metrics = None
        if labels is not None:
            with stages.step("evaluate", timings):
                metrics = evaluation.evaluate(out, labels)
                files["evaluation"] = out / "evaluation.json"
                files["evaluation"].write_text(json.dumps(metrics, indent=2, default=float))
            run["metrics"] = metrics

        with stages.step("report", timings):
            if write_report:
                details: dict[tuple[str, str], pd.DataFrame] = {}
                for side in SIDES:
                    top = alerts[alerts["side"] == side].head(config.report.top_alerts)["account_id"].tolist() if len(alerts) else []
                    details.update(_account_details(eng, ing.transfers, side, top))
                run["finished"] = datetime.now(UTC).isoformat()
                files["report"] = report.write_report(
                    out / "report.html", run=run, alerts=alert_table, details=details, metrics=metrics, networks=networks,
                    entities=entity_alerts, households=household_alerts,
                    scores=_score_histogram(eng, all_scores), night_hours=_night_hours(config),
                )

        with stages.step("run.json", timings):
            run["finished"] = datetime.now(UTC).isoformat()
            run["timings"] = {k: round(v, 3) for k, v in timings.items()}
            run["peak_rss_mib"] = dict(stages.peak_rss_mib)  # after each stage (the process's peak so far)
            run["cpu_seconds"] = dict(stages.cpu_seconds)
            run["files"] = {k: str(v) for k, v in files.items()}
            files["run"] = out / "run.json"
            files["run"].write_text(json.dumps(run, indent=2, default=str))

    return ScanResult(out_dir=out, run=run, alerts=alert_table, files=files)
