"""Learn scoring weights from analysts' dispositions (`kalasag feedback`).

An analyst marks alerted (or any scored) accounts `true_positive` or `false_positive`. Per side, a
scikit-learn L2 logistic regression is fitted on the accounts' evidence strengths (the
`<slug>_strength` columns and `core_rule` of the run's `evidence.parquet`). Its intercept and
coefficients have exactly the meaning of `[scoring.prior_log_odds]` and `[scoring.weights]`, so a
later `kalasag scan --model DIR` scores with the learned numbers through the same scorer
(`score_table`), and explanations keep each feature's signed log-odds contribution.

`class_weight="balanced"`: dispositions are a sample of *alerts*, not of all accounts, and the two
classes are rarely balanced in it; weighting each class equally keeps the fitted weights about the
evidence rather than about the review queue's mix. The intercept therefore sits at even odds for
the dispositioned sample; it is not a population prior (docs/scoring.md).

The model is plain JSON (`model.json`), never a pickle: readable, diffable, safe to load.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kalasag.model import SIDES, KalasagConfig
from kalasag.scoring.combine import IndicatorRef, weight_for

MODEL_FILE = "model.json"
MODEL_FORMAT = "kalasag-logistic-v1"
DISPOSITIONS = ("true_positive", "false_positive")
MIN_PER_CLASS = 5  # fewer than this many of either class on a side: refuse to train that side
MAX_FOLDS = 5
L2_C = 1.0  # inverse L2 strength (scikit-learn's default)


class FeedbackError(ValueError):
    """Dispositions, a run directory or a model file cannot be used (one-line message)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CVMetrics(_Strict):
    folds: int
    precision: float
    recall: float
    f1: float
    average_precision: float


class SideModel(_Strict):
    """A learned logistic model for one side: logit = intercept + Σ weights[feature] · value."""

    intercept: float
    weights: dict[str, float]  # indicator id ("I-03", "N-01") or "core_rule" -> log-odds per unit
    n_true_positive: int = Field(ge=0)
    n_false_positive: int = Field(ge=0)
    cv: CVMetrics


class LearnedModel(_Strict):
    format: str = MODEL_FORMAT
    trained_at: str
    kalasag_version: str
    config_sha256: str
    run_dir: str
    class_weight: str = "balanced"
    regularisation: str = f"L2, C={L2_C}"
    sides: dict[str, SideModel]
    unknown_accounts: int = 0


# ---- dispositions ---------------------------------------------------------------------------
def read_dispositions(path: str | Path) -> pd.DataFrame:
    """account_id, side, disposition (true_positive|false_positive), optional note; errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise FeedbackError(f"{path}: dispositions file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in ("account_id", "side", "disposition") if c not in header]
            if missing:
                raise FeedbackError(f"{path}: line 1: missing column(s) {', '.join(missing)} (need account_id, side, disposition[, note])")
            rows = []
            seen: dict[tuple[str, str], int] = {}
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise FeedbackError(f"{path}: line {line}: more fields than the header")
                row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                acc, side, disp = row.get("account_id") or "", (row.get("side") or "").lower(), (row.get("disposition") or "").lower()
                if not acc:
                    raise FeedbackError(f"{path}: line {line}: empty account_id")
                if side not in SIDES:
                    raise FeedbackError(f"{path}: line {line}: side '{row.get('side')}' is not sender or receiver")
                if disp not in DISPOSITIONS:
                    raise FeedbackError(f"{path}: line {line}: disposition '{row.get('disposition')}' is not true_positive or false_positive")
                if (acc, side) in seen:
                    raise FeedbackError(f"{path}: line {line}: {side} {acc} already dispositioned on line {seen[(acc, side)]}")
                seen[(acc, side)] = line
                rows.append({"account_id": acc, "side": side, "positive": disp == "true_positive", "line": line})
    except UnicodeDecodeError as exc:
        raise FeedbackError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise FeedbackError(f"{path}: not a readable CSV ({exc})") from exc
    if not rows:
        raise FeedbackError(f"{path}: no dispositions")
    return pd.DataFrame(rows)


def evidence_path(run_dir: str | Path) -> Path:
    p = Path(run_dir) / "evidence.parquet"
    if not p.exists():
        raise FeedbackError(f"{run_dir}: no evidence.parquet (run `kalasag scan` into it first)")
    return p


def labelled_evidence(eng: Any, dispositions: pd.DataFrame, run_dir: str | Path) -> tuple[pd.DataFrame, int]:
    """Join dispositions to the run's evidence in the engine; fetch only the dispositioned rows.

    Returns (evidence + `positive` per known account, number of dispositioned accounts not in the run).
    """
    p = evidence_path(run_dir)
    src = str(p / "*.parquet") if p.is_dir() else str(p)  # the Spark engine writes a directory of parts
    ev = eng.con.read_parquet(src)
    d = eng.from_records(dispositions[["account_id", "side", "positive"]])
    joined = ev.inner_join(d, ["account_id", "side"])
    df = eng.fetch(joined)
    return df, len(dispositions) - len(df)


# ---- training --------------------------------------------------------------------------------
def feature_columns(columns: list[str], refs: list[IndicatorRef]) -> list[tuple[str, str]]:
    """(feature id, column) pairs present in an evidence table: indicator strengths, then core_rule."""
    cols = set(columns)
    out = [(r.id, f"{r.slug}_strength") for r in refs if f"{r.slug}_strength" in cols]
    if "core_rule" in cols:
        out.append(("core_rule", "core_rule"))
    return out


def _fit_side(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, CVMetrics]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    minority = int(min(y.sum(), len(y) - y.sum()))
    k = min(MAX_FOLDS, minority)

    def make() -> LogisticRegression:
        return LogisticRegression(C=L2_C, class_weight="balanced", max_iter=1000)

    prob = cross_val_predict(make(), x, y, cv=StratifiedKFold(n_splits=k, shuffle=True, random_state=seed), method="predict_proba")[:, 1]
    pred = prob >= 0.5
    cv = CVMetrics(
        folds=k,
        precision=float(precision_score(y, pred, zero_division=0)),
        recall=float(recall_score(y, pred, zero_division=0)),
        f1=float(f1_score(y, pred, zero_division=0)),
        average_precision=float(average_precision_score(y, prob)),
    )
    return make().fit(x, y), cv


def train(
    labelled: pd.DataFrame,
    refs: list[IndicatorRef],
    config: KalasagConfig,
    *,
    run_dir: str | Path = "",
    unknown_accounts: int = 0,
    seed: int = 0,
) -> LearnedModel:
    """Fit one model per side on `labelled` (evidence columns + side + positive)."""
    import kalasag

    sides: dict[str, SideModel] = {}
    problems = []
    for side in SIDES:
        part = labelled[labelled["side"] == side]
        n_pos, n_neg = int(part["positive"].sum()), int((~part["positive"].astype(bool)).sum())
        if min(n_pos, n_neg) < MIN_PER_CLASS:
            problems.append(f"{side}: {n_pos} true_positive and {n_neg} false_positive (need at least {MIN_PER_CLASS} of each)")
            continue
        feats = feature_columns(list(part.columns), refs)
        # a feature not computed on this side, or constant in the sample, carries no information: left out
        # (a learned side gives weight 0 to features the model does not list)
        feats = [(fid, col) for fid, col in feats if part[col].astype("float64").fillna(0.0).nunique() > 1]
        if not feats:
            problems.append(f"{side}: the dispositioned accounts do not differ in any evidence")
            continue
        x = np.column_stack([part[col].astype("float64").fillna(0.0).to_numpy() for _, col in feats])
        y = part["positive"].astype(bool).to_numpy().astype(int)
        clf, cv = _fit_side(x, y, seed)
        sides[side] = SideModel(
            intercept=float(clf.intercept_[0]),
            weights={fid: float(w) for (fid, _), w in zip(feats, clf.coef_[0])},
            n_true_positive=n_pos,
            n_false_positive=n_neg,
            cv=cv,
        )
    if not sides:
        raise FeedbackError("not enough dispositions to learn from: " + "; ".join(problems))
    return LearnedModel(
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        kalasag_version=kalasag.__version__,
        config_sha256=config.digest(),
        run_dir=str(run_dir),
        sides=sides,
        unknown_accounts=unknown_accounts,
    )


def skipped_sides(model: LearnedModel) -> list[str]:
    return [s for s in SIDES if s not in model.sides]


# ---- files -----------------------------------------------------------------------------------
def save_model(model: LearnedModel, model_dir: str | Path) -> Path:
    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    p = d / MODEL_FILE
    p.write_text(json.dumps(model.model_dump(mode="json"), indent=2))
    return p


def load_model(model_dir: str | Path) -> LearnedModel:
    p = Path(model_dir)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise FeedbackError(f"{p}: no model file (train one with `kalasag feedback`)")
    try:
        data = json.loads(p.read_text())
        model = LearnedModel.model_validate(data)
    except json.JSONDecodeError as exc:
        raise FeedbackError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise FeedbackError(f"{p}: invalid model at '{'.'.join(str(x) for x in first['loc'])}': {first['msg']}") from exc
    if model.format != MODEL_FORMAT:
        raise FeedbackError(f"{p}: model format '{model.format}' is not {MODEL_FORMAT}")
    bad = [f"{s}.{k}" for s, m in model.sides.items() for k, v in [("intercept", m.intercept), *m.weights.items()] if not math.isfinite(v)]
    if bad or set(model.sides) - set(SIDES):
        raise FeedbackError(f"{p}: model has unknown sides or non-finite numbers ({', '.join(bad or sorted(set(model.sides) - set(SIDES)))})")
    return model


def apply_model(config: KalasagConfig, model: LearnedModel, refs: list[IndicatorRef]) -> KalasagConfig:
    """A config whose [scoring] prior and weights are the learned ones for each side the model covers.

    Sides the model does not cover keep their configured weights (written out per side). Features
    the model has no weight for get weight 0 on a learned side.
    """
    ids = sorted({r.id for r in refs} | {"core_rule"} | {k for m in model.sides.values() for k in m.weights})
    prior = dict(config.scoring.prior_log_odds)
    weights: dict[str, float] = {}
    for side in SIDES:
        m = model.sides.get(side)
        if m is None:
            weights.update({f"{i}.{side}": weight_for(config, i, side) for i in ids})
        else:
            prior[side] = m.intercept
            weights.update({f"{i}.{side}": float(m.weights.get(i, 0.0)) for i in ids})
    scoring = config.scoring.model_copy(update={"prior_log_odds": prior, "weights": weights, "learned": True})
    scoring = type(config.scoring).model_validate(scoring.model_dump())  # re-run the checks
    return config.model_copy(update={"scoring": scoring})
