"""Compare a scan's scores with ground-truth labels.

The unit is the account on one side, `(account_id, side)`: an account that both sends and receives
is judged twice, once per side, as the scan scores it.

Inputs
- `run_dir/scores.parquet` (written by `kalasag scan`): one row per scored `(account_id, side)`
  with `score` (0–1), `alerted` (bool) and `core_rule` (bool: the plain published rule
  I-01 AND I-05 AND (I-02 OR I-03 OR I-04)).
- a labels file (CSV, CSV.gz or Parquet; `kalasag simulate` writes `labels.csv`) with
  `account_id`, `side`, `role` (and usually `group`). Positives are the roles in
  `kalasag.model.POSITIVE_ROLES`.

Conventions (documented in the result's `notes` and in docs/detection.md)
- A scored account with no label counts as a negative (`n_unlabelled` says how many).
- A labelled positive the scan did not score counts as missed: a false negative for the alerts
  and the rule, and it is never retrieved in the ranking behind average precision and
  precision@k (`n_positive_unscored` says how many).
- Zero divisions give 0: precision is 0 when nothing is alerted, recall is 0 when there is no
  positive, F1 is 0 when precision + recall is 0, average precision is 0 when there is no positive.
- average precision is scikit-learn's step-wise AP over `score` (no interpolation), rescaled by the
  share of positives that were scored (the unscored ones are never reached).
- precision@k and recall@k use k = the number of positives, ranking by score; accounts tied at the
  cut count by their expected share (the mean over every order of the tie), so ids never matter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kalasag.evaluate.entities import entity_metrics, read_entity_run, read_operations
from kalasag.model import POSITIVE_ROLES, SIDES

SCORE_COLUMNS: tuple[str, ...] = ("account_id", "side", "score", "alerted", "core_rule")
LABEL_REQUIRED: tuple[str, ...] = ("account_id", "side", "role")
RULE_TEXT = "I-01 AND I-05 AND (I-02 OR I-03 OR I-04)"


class EvaluationError(ValueError):
    """The run directory or the labels cannot be evaluated (one-line message)."""


# ---- reading -------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _scores_path(run_dir: str | Path) -> Path:
    path = Path(run_dir)
    if not path.exists():
        raise EvaluationError(f"{path}: run directory not found")
    if path.suffix.lower() == ".parquet":  # the scores file (or part directory) itself is accepted too
        return path
    if path.is_file():
        raise EvaluationError(f"{path}: not a run directory (give the --out directory of `kalasag scan`)")
    scores = path / "scores.parquet"  # a file, or a directory of parts (the Spark engine writes those)
    if not scores.exists():
        raise EvaluationError(f"{path}: no scores.parquet in this directory (run `kalasag scan` into it first)")
    return scores


def _as_bool(series: pd.Series, name: str, path: Path, *, null_is_false: bool) -> pd.Series:
    s = series
    if s.isna().any():
        if not null_is_false:
            raise EvaluationError(f"{path}: column '{name}' has empty values")
        s = s.astype(object).where(s.notna(), False)
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype(bool)
    mapping = {True: True, False: False, 1: True, 0: False, "true": True, "false": False, "1": True, "0": False}
    out = s.map(lambda v: mapping.get(v.strip().lower() if isinstance(v, str) else v))
    if out.isna().any():
        bad = s[out.isna()].iloc[0]
        raise EvaluationError(f"{path}: column '{name}' must be true/false, found {bad!r}")
    return out.astype(bool)


def _check_sides(values: pd.Series, where: str) -> None:
    unknown = sorted(set(values.unique()) - set(SIDES))
    if unknown:
        raise EvaluationError(f"{where}: unknown side {unknown[0]!r} (expected {' or '.join(SIDES)})")


def read_scores(run_dir: str | Path) -> pd.DataFrame:
    """The scores of a run directory, checked: account_id, side, score, alerted, core_rule."""
    path = _scores_path(run_dir)
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise EvaluationError(f"{path}: cannot read as Parquet ({_first_line(exc)})") from exc
    missing = [c for c in SCORE_COLUMNS if c not in df.columns]
    if missing:
        raise EvaluationError(f"{path}: missing column(s) {', '.join(missing)}")
    df = df[list(SCORE_COLUMNS)].copy()
    if df["account_id"].isna().any():
        raise EvaluationError(f"{path}: column 'account_id' has empty values")
    df["account_id"] = df["account_id"].astype(str)
    df["side"] = df["side"].astype(str)
    _check_sides(df["side"], str(path))
    score = pd.to_numeric(df["score"], errors="coerce")
    bad = score.isna() | (score < 0) | (score > 1)
    if bad.any():
        row = df[bad].iloc[0]
        raise EvaluationError(
            f"{path}: score must be a number between 0 and 1, found {row['score']} "
            f"(account {row['account_id']!r}, {row['side']})"
        )
    df["score"] = score.astype("float64")
    df["alerted"] = _as_bool(df["alerted"], "alerted", path, null_is_false=False)
    df["core_rule"] = _as_bool(df["core_rule"], "core_rule", path, null_is_false=True)
    dup = df.duplicated(["account_id", "side"])
    if dup.any():
        row = df[dup].iloc[0]
        raise EvaluationError(f"{path}: account {row['account_id']!r} is scored twice on the {row['side']} side")
    return df.reset_index(drop=True)


def read_labels(labels_path: str | Path) -> pd.DataFrame:
    """The labels, checked: account_id, side, role (+ group when present)."""
    path = Path(labels_path)
    if not path.exists():
        raise EvaluationError(f"{path}: labels file not found")
    if not path.is_file():
        raise EvaluationError(f"{path}: labels path is not a file")
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
            df = df.astype({c: str for c in df.columns if c in LABEL_REQUIRED})
            first_data_line, unit = 1, "row"
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
            first_data_line, unit = 2, "line"  # line 1 is the header
    except pd.errors.EmptyDataError as exc:
        raise EvaluationError(f"{path}: labels file is empty") from exc
    except Exception as exc:
        raise EvaluationError(f"{path}: cannot read labels ({_first_line(exc)})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in LABEL_REQUIRED if c not in df.columns]
    if missing:
        raise EvaluationError(f"{path}: missing column(s) {', '.join(missing)}")
    for col in ("account_id", "side", "role"):
        df[col] = df[col].astype(str).str.strip()
    df["side"] = df["side"].str.lower()
    empty_id = df["account_id"] == ""
    if empty_id.any():
        raise EvaluationError(f"{path} {unit} {int(np.flatnonzero(empty_id)[0]) + first_data_line}: empty account_id")
    unknown = ~df["side"].isin(SIDES)
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise EvaluationError(
            f"{path} {unit} {i + first_data_line}: unknown side {df['side'].iloc[i]!r} (expected {' or '.join(SIDES)})"
        )
    return df.reset_index(drop=True)


# ---- metrics -------------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if (p + r) else 0.0


def _average_precision(scores: np.ndarray, positive: np.ndarray, n_positive: int) -> float:
    n_scored_pos = int(positive.sum())
    if n_positive == 0 or n_scored_pos == 0:
        return 0.0
    from sklearn.metrics import average_precision_score  # imported late: it is slow to load

    ap = float(average_precision_score(positive.astype(int), scores))
    return ap * n_scored_pos / n_positive


def _hits_at_k(scores: np.ndarray, positive: np.ndarray, k: int) -> float:
    """Positives among the k highest scores; a tie across the cut counts its expected share.

    With scores sorted descending: everything above the score at rank k counts fully, and the tied
    group at the cut contributes (free slots) x (its share of positives), the mean over all orders.
    """
    if k <= 0 or not len(scores):
        return 0.0
    if k >= len(scores):
        return float(positive.sum())
    cut = scores[k - 1]
    above = scores > cut
    tied = scores == cut
    free = k - int(above.sum())
    return float(positive[above].sum()) + free * float(positive[tied].mean())


def _groups(frame: pd.DataFrame, flag: str) -> dict[str, Any]:
    """Operations (label `group`) with a positive account, and how many had one flagged by `flag`."""
    pos = frame[frame["positive"] & (frame["group"].fillna("").astype(str) != "")]
    n = int(pos["group"].nunique())
    found = int(pos.loc[pos[flag], "group"].nunique())
    return {"n_positive_groups": n, "groups_detected": found, "group_recall": _ratio(found, n)}


def _block(frame: pd.DataFrame, n_unlabelled: int) -> dict[str, Any]:
    """Metrics of one population. `frame` rows: every scored account plus unscored positives."""
    scored = frame["scored"].to_numpy(bool)
    positive = frame["positive"].to_numpy(bool)
    alerted = frame["alerted"].to_numpy(bool)
    rule = frame["core_rule"].to_numpy(bool)
    n_positive = int(positive.sum())

    tp = int((alerted & positive).sum())
    fp = int((alerted & ~positive).sum())
    fn = n_positive - tp
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, n_positive)

    r_tp = int((rule & positive).sum())
    r_fp = int((rule & ~positive).sum())
    r_p, r_r = _ratio(r_tp, r_tp + r_fp), _ratio(r_tp, n_positive)

    ranked = frame[scored].sort_values("score", ascending=False, kind="stable")
    k = n_positive
    hits = _hits_at_k(ranked["score"].to_numpy(float), ranked["positive"].to_numpy(bool), k)

    return {
        "n_accounts": int(scored.sum()),
        "n_positive": n_positive,
        "n_positive_unscored": int((positive & ~scored).sum()),
        "n_unlabelled": int(n_unlabelled),
        "n_alerts": int(alerted.sum()),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "average_precision": _average_precision(
            ranked["score"].to_numpy(float), ranked["positive"].to_numpy(bool), n_positive
        ),
        "k": k,
        "precision_at_k": _ratio(hits, k),
        "recall_at_k": _ratio(hits, n_positive),
        **_groups(frame, "alerted"),
        "rule": {
            "n_alerts": int(rule.sum()),
            "tp": r_tp,
            "fp": r_fp,
            "fn": n_positive - r_tp,
            "precision": r_p,
            "recall": r_r,
            "f1": _f1(r_p, r_r),
            "groups_detected": _groups(frame, "core_rule")["groups_detected"],
        },
    }


def evaluate(run_dir: str | Path, labels_path: str | Path, operations_path: str | Path | None = None) -> dict[str, Any]:
    """Precision, recall, F1 and average precision of a scan, per side and overall.

    Returns {"sides": {"sender": {...}, "receiver": {...}}, "overall": {...}, "notes": [...], ...};
    each block holds n_accounts, n_positive, n_positive_unscored, n_unlabelled, n_alerts, tp, fp, fn,
    precision, recall, f1, average_precision, k, precision_at_k, recall_at_k, n_positive_groups,
    groups_detected, group_recall (operations, by the labels' `group`, with at least one alerted
    positive account) and "rule" (the same counts for the plain published rule). See the module docstring for the conventions.

    "entities" holds the entity-resolution metrics when the run directory has entities.csv (see
    `kalasag.evaluate.entities`): link precision and recall against the labels' `person_id`, and
    the multi-account facilitator operations recovered whole in one entity or household alert.
    It is None for a run without entities.csv. `operations_path` (default: operations.csv next to
    the labels, when present) adds the view over the facilitator accounts that were paid by an
    OSEC customer (`paid_operations_*`).
    """
    scores = read_scores(run_dir)
    labels = read_labels(labels_path)
    raw_labels = labels

    labels = labels.assign(positive=labels["role"].isin(POSITIVE_ROLES))
    if "group" not in labels.columns:
        labels["group"] = ""
    labels["group"] = labels["group"].fillna("").astype(str).str.strip()
    # one truth per (account, side): positive if any of its rows is; its group from a positive row first
    labels = labels.sort_values("positive", ascending=False, kind="stable")
    truth = labels.groupby(["account_id", "side"], as_index=False, sort=False).agg(
        positive=("positive", "any"), group=("group", "first")
    )

    merged = scores.merge(truth, on=["account_id", "side"], how="outer", indicator=True)
    merged = merged[(merged["_merge"] != "right_only") | merged["positive"].fillna(False).astype(bool)]
    merged = merged.assign(
        scored=merged["_merge"] != "right_only",
        labelled=merged["_merge"] != "left_only",
        positive=merged["positive"].fillna(False).astype(bool),
        alerted=merged["alerted"].fillna(False).astype(bool),
        core_rule=merged["core_rule"].fillna(False).astype(bool),
    ).drop(columns="_merge")

    unlabelled = merged["scored"] & ~merged["labelled"]
    sides = {
        side: _block(merged[merged["side"] == side], int((unlabelled & (merged["side"] == side)).sum()))
        for side in SIDES
    }
    overall = _block(merged, int(unlabelled.sum()))

    notes: list[str] = []
    if overall["n_unlabelled"]:
        notes.append(f"{overall['n_unlabelled']} scored account(s) have no label and count as negatives")
    if overall["n_positive_unscored"]:
        notes.append(
            f"{overall['n_positive_unscored']} labelled positive(s) were not scored and count as missed"
        )
    if overall["n_positive"] == 0:
        notes.append("the labels hold no positive: recall and average precision are 0 by convention")
    if overall["n_alerts"] == 0:
        notes.append("nothing was alerted: precision is 0 by convention")

    try:
        run_files = read_entity_run(run_dir)
    except ValueError as exc:
        raise EvaluationError(_first_line(exc)) from exc
    entities = None
    if run_files is None:
        notes.append("no entities.csv in the run directory: entity metrics are not computed")
    else:
        ops_path = Path(operations_path) if operations_path is not None else Path(labels_path).parent / "operations.csv"
        if operations_path is not None and not ops_path.is_file():
            raise EvaluationError(f"{ops_path}: operations file not found")
        try:
            operations = read_operations(ops_path) if ops_path.is_file() else None
        except ValueError as exc:
            raise EvaluationError(_first_line(exc)) from exc
        entities = entity_metrics(run_files["entities"], raw_labels, entity_alerts=run_files["entity_alerts"],
                                  household_alerts=run_files["household_alerts"], operations=operations)
        entities["operations_file"] = str(ops_path) if operations is not None else None
        notes += [f"entities: {n}" for n in entities.pop("notes")]

    return {
        "run_dir": str(run_dir),
        "labels": str(labels_path),
        "positive_roles": sorted(POSITIVE_ROLES),
        "rule_text": RULE_TEXT,
        "sides": sides,
        "overall": overall,
        "entities": entities,
        "notes": notes,
    }
