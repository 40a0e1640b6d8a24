"""Scoring entity resolution against the simulator's ground truth (labels.csv)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from kalasag.entities.alerts import _frame


def _pairs(sizes: pd.Series) -> int:
    n = sizes.astype("int64")
    return int((n * (n - 1) // 2).sum())


def evaluate_entities(entities: Any, labels_df: pd.DataFrame, *, alerts: pd.DataFrame | None = None,
                      positive_role: str = "osec_facilitator") -> dict[str, Any]:
    """Pairwise link precision/recall against `person_id`; household precision against
    `group`/`person_id`; and the share of multi-account operations (`group` of `positive_role`
    accounts) whose accounts all fall in one entity, one household, and (with `alerts`, the
    concatenation of entity and household alerts with an `accounts` column) in one alert."""
    e = _frame(entities).merge(labels_df, on=["account_id", "side"], how="inner")
    if not len(e):
        return {"records": 0}
    pred = _pairs(e.groupby("entity_id").size())
    true = _pairs(e.groupby("person_id").size())
    tp = _pairs(e.groupby(["entity_id", "person_id"]).size())
    hh_pred = _pairs(e.groupby("household_id").size())
    hh_same_group = _pairs(e.groupby(["household_id", "group"]).size())
    out: dict[str, Any] = {
        "records": int(len(e)),
        "entities": int(e["entity_id"].nunique()),
        "multi_account_entities": int((e.groupby("entity_id").size() > 1).sum()),
        "persons": int(e["person_id"].nunique()),
        "link_pairs_predicted": pred, "link_pairs_true": true, "link_pairs_correct": tp,
        "link_precision": tp / pred if pred else None,
        "link_recall": tp / true if true else None,
        "households_multi": int((e.groupby("household_id")["entity_id"].nunique() > 1).sum()),
        "household_pairs": hh_pred,
        "household_pair_precision_group": hh_same_group / hh_pred if hh_pred else None,
    }
    ops = e[e["role"] == positive_role].groupby("group")
    multi = [(g, d) for g, d in ops if len(d) > 1]
    out["operations_multi_account"] = len(multi)
    if multi:
        out["operations_in_one_entity"] = sum(d["entity_id"].nunique() == 1 for _, d in multi) / len(multi)
        out["operations_in_one_household"] = sum(d["household_id"].nunique() == 1 for _, d in multi) / len(multi)
        if alerts is not None:
            sets = [set(str(a).split(";")) for a in alerts.get("accounts", pd.Series(dtype=str)).dropna()]
            rec = 0
            for _, d in multi:
                accs = set(d["account_id"])
                rec += any(accs <= s for s in sets)
            out["operations_in_one_alert"] = rec / len(multi)
    return out
