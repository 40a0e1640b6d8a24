"""Entity- and household-level alerts from the account-level scores."""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pandas as pd

from kalasag.model import KalasagConfig

ENTITY_ALERT_COLUMNS = (
    "entity_id", "side", "score", "risk_level", "max_account_score", "n_accounts", "n_alerted", "accounts",
    "alerted_accounts", "why_linked", "household_id", "household_evidence",
)
HOUSEHOLD_ALERT_COLUMNS = (
    "household_id", "side", "score", "risk_level", "max_account_score", "n_entities", "n_accounts", "n_alerted",
    "entity_ids", "accounts", "alerted_accounts", "why_grouped",
)


class EntityAlertError(ValueError):
    """Inputs to the entity alerts are missing columns (one-line message)."""


def _frame(entities: Any, keys: pd.DataFrame | None = None, by: str = "entity_id") -> pd.DataFrame:
    """pandas rows of `entities` (a pandas frame or an Ibis table), optionally only those whose
    `by` value is in `keys` (so a 1M-row Ibis table is filtered in the engine)."""
    if isinstance(entities, pd.DataFrame):
        df = entities
        return df if keys is None else df[df[by].isin(keys)]
    t = entities
    if keys is not None:
        t = t.filter(t[by].isin(list(keys)))
    return t.execute()


def _check(df: pd.DataFrame, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise EntityAlertError(f"{what} lacks column(s): {', '.join(missing)}")


def _aggregate(scores: pd.Series, how: str) -> float:
    s = scores.fillna(0.0).clip(0.0, 1.0).to_numpy()
    if how == "max":
        return float(s.max()) if len(s) else 0.0
    return float(1.0 - np.prod(1.0 - s))  # noisy-OR: the chance at least one account is what it seems


def _risk(score: float, config: KalasagConfig) -> str:
    if score >= config.scoring.risk_high:
        return "high"
    if score >= config.scoring.risk_medium:
        return "medium"
    return "low"


def _alerted_keys(entities: Any, scored_alerts_df: pd.DataFrame, by: str) -> list[str]:
    _check(scored_alerts_df, ("account_id", "side"), "the alerts table")
    pairs = scored_alerts_df[["account_id", "side"]].drop_duplicates()
    if isinstance(entities, pd.DataFrame):
        hit = entities.merge(pairs, on=["account_id", "side"])
    else:
        t = entities
        hit = t.filter(t.account_id.isin(pairs["account_id"].astype(str).tolist())).execute().merge(pairs, on=["account_id", "side"])
    return sorted(hit[by].dropna().unique().tolist())


def _aggregate_keys(entities: Any, scores_df: Any, by: str, config: KalasagConfig) -> list[str]:
    """The `by` groups (entity or household) whose aggregate score on one side reaches
    `[entities] alert_min_aggregate_score` (computed in the engine when `entities` is an Ibis table)."""
    threshold = config.entities.alert_min_aggregate_score
    if by == "household_id" and config.entities.household_alert_min_aggregate_score is not None:
        threshold = config.entities.household_alert_min_aggregate_score
    if not threshold:
        return []
    if isinstance(entities, pd.DataFrame):
        s = scores_df if isinstance(scores_df, pd.DataFrame) else scores_df.filter(
            scores_df.account_id.isin(entities["account_id"].astype(str).unique().tolist())).select(
            "account_id", "side", "score").execute()
        m = entities[[by, "account_id", "side"]].merge(s[["account_id", "side", "score"]], on=["account_id", "side"])
        sc = m["score"].fillna(0.0).clip(0.0, 1.0 - 1e-12)
        if config.entities.alert_score == "max":
            agg = m.assign(_s=sc).groupby([by, "side"])["_s"].max()
        else:
            agg = 1.0 - np.exp(m.assign(_l=np.log1p(-sc)).groupby([by, "side"])["_l"].sum())
        return sorted(agg[agg >= threshold].index.get_level_values(0).unique().tolist())
    t = entities.select(by, "account_id", "side")
    s = ibis.memtable(scores_df[["account_id", "side", "score"]]) if isinstance(scores_df, pd.DataFrame) else scores_df
    j = t.join(s.select(account_id=s.account_id.cast("string"), side=s.side, score=s.score.cast("float64")),
               ["account_id", "side"])
    sc = ibis.least(ibis.greatest(j.score.fill_null(0.0), 0.0), 1.0 - 1e-12)
    if config.entities.alert_score == "max":
        g = j.group_by([by, "side"]).aggregate(_a=sc.max())
    else:
        g = j.group_by([by, "side"]).aggregate(_l=(1.0 - sc).ln().sum()).mutate(_a=1.0 - ibis._["_l"].exp())
    hit = g.filter(g._a >= threshold).select(by).distinct().execute()
    return sorted(hit[by].dropna().astype(str).tolist())


def _members(entities: Any, scored_alerts_df: pd.DataFrame, scores_df: Any, by: str,
             config: KalasagConfig | None = None) -> pd.DataFrame:
    cols = scores_df.columns if isinstance(scores_df, pd.DataFrame) else list(scores_df.columns)
    _check(pd.DataFrame(columns=list(cols)), ("account_id", "side", "score"), "the scores table")
    keys = _alerted_keys(entities, scored_alerts_df, by)
    if config is not None:
        keys = sorted(set(keys).union(_aggregate_keys(entities, scores_df, by, config)))
    m = _frame(entities, keys, by)
    if not len(m):
        return m
    if not isinstance(scores_df, pd.DataFrame):  # an Ibis table (scores.parquet): fetch the members only
        s = scores_df
        scores_df = s.filter(s.account_id.isin(m["account_id"].astype(str).unique().tolist())).select(
            "account_id", "side", "score").execute()
    m = m.merge(scores_df[["account_id", "side", "score"]], on=["account_id", "side"], how="left")
    al = scored_alerts_df[["account_id", "side"]].drop_duplicates().assign(_alerted=True)
    m = m.merge(al, on=["account_id", "side"], how="left")
    m["_alerted"] = m["_alerted"].fillna(False).astype(bool)
    return m


def entity_alerts(entities: Any, scored_alerts_df: pd.DataFrame, scores_df: Any, config: KalasagConfig) -> pd.DataFrame:
    """One row per (entity, side) with at least one alerted account on that side.

    `entities`: the EntityResult.entities Ibis table (or a pandas frame of it); `scores_df`: every
    account's score (pandas, or an Ibis table such as scores.parquet — then only the members of
    alerted entities are fetched); `scored_alerts_df`: the alerted accounts (alerts.csv).

    score = noisy-OR of the account scores of the entity on that side (`[entities] alert_score`:
    "noisy_or" = 1 − Π(1 − s_i), or "max"); risk level from `[scoring]` risk_high / risk_medium."""
    m = _members(entities, scored_alerts_df, scores_df, "entity_id", config)
    rows = []
    floor = config.entities.alert_min_aggregate_score
    if len(m):
        for (eid, side), g in m.groupby(["entity_id", "side"], sort=False):
            g = g.sort_values(["score", "account_id"], ascending=[False, True], na_position="last")  # ties: by id, not input order
            score = _aggregate(g["score"], config.entities.alert_score)
            if not (g["_alerted"].any() or (floor and score >= floor)):
                continue
            links = [e for e in g["link_evidence"].dropna().unique().tolist() if not e.startswith("single account")]
            rows.append({
                "entity_id": eid, "side": side, "score": round(score, 6), "risk_level": _risk(score, config),
                "max_account_score": float(g["score"].max()), "n_accounts": len(g), "n_alerted": int(g["_alerted"].sum()),
                "accounts": ";".join(g["account_id"]), "alerted_accounts": ";".join(g.loc[g["_alerted"], "account_id"]),
                "why_linked": " | ".join(f"{a}: {e}" for a, e in zip(g["account_id"], g["link_evidence"]) if e in links)
                or "single account",
                "household_id": g["household_id"].iloc[0], "household_evidence": g["household_evidence"].iloc[0],
            })
    out = pd.DataFrame(rows, columns=list(ENTITY_ALERT_COLUMNS))
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def household_alerts(entities: Any, scored_alerts_df: pd.DataFrame, scores_df: Any, config: KalasagConfig) -> pd.DataFrame:
    """One row per (household, side) of two entities or more with at least one alerted account:
    the network view (relatives, one operation). Same score rule as `entity_alerts`."""
    m = _members(entities, scored_alerts_df, scores_df, "household_id", config)
    rows = []
    floor = config.entities.alert_min_aggregate_score
    if config.entities.household_alert_min_aggregate_score is not None:
        floor = config.entities.household_alert_min_aggregate_score
    if len(m):
        for (hid, side), g in m.groupby(["household_id", "side"], sort=False):
            if g["entity_id"].nunique() < 2:
                continue
            g = g.sort_values(["score", "account_id"], ascending=[False, True], na_position="last")  # ties: by id, not input order
            score = _aggregate(g["score"], config.entities.alert_score)
            if not (g["_alerted"].any() or (floor and score >= floor)):
                continue
            rows.append({
                "household_id": hid, "side": side, "score": round(score, 6), "risk_level": _risk(score, config),
                "max_account_score": float(g["score"].max()), "n_entities": int(g["entity_id"].nunique()),
                "n_accounts": len(g), "n_alerted": int(g["_alerted"].sum()),
                "entity_ids": ";".join(sorted(g["entity_id"].unique())), "accounts": ";".join(g["account_id"]),
                "alerted_accounts": ";".join(g.loc[g["_alerted"], "account_id"]),
                "why_grouped": " | ".join(sorted(set(g["household_evidence"].dropna()))),
            })
    out = pd.DataFrame(rows, columns=list(HOUSEHOLD_ALERT_COLUMNS))
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
