"""Score entity resolution and entity/household alerts against the simulator's ground truth.

Inputs (written by `kalasag scan` into the run directory)
- `entities.csv`: one row per account record `(account_id, side)` with `entity_id` (same person)
  and `household_id` (relatives or one operation).
- `entity_alerts.csv` and `household_alerts.csv`: one row per alert, with `side` and `accounts`
  (the ";"-joined account ids the alert lists on that side).
- the labels (`labels.csv` of `kalasag simulate`): `account_id`, `side`, `role`, `group` (the
  operation for OSEC) and `person_id` (the true person behind the account).

Metrics (docs/entities.md §5)
- pairwise link precision and recall: the pairs of labelled records put in one entity, against
  the pairs that share a `person_id`. The same account on both sides is two records of one person.
- household pair precision: the pairs put in one household whose labels share `group`; and the
  pairs that join an OSEC account (customer or facilitator) to an account of no OSEC role and of
  another group (`household_pairs_osec_with_other`: an unrelated person drawn into an OSEC alert).
- multi-account facilitator operations: the `group`s whose `osec_facilitator` records span two
  account ids or more. An operation is recovered *in one alert* when every one of its facilitator
  records `(account_id, side)` is listed by one entity alert or one household alert (the network
  alert of an operation). The misses are split into `split` (the records fall in two households or
  more: a linkage miss) and `not_alerted` (one household, but no alert lists it whole: a miss of the
  account scores).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from kalasag.model import POSITIVE_ROLES

FACILITATOR_ROLE = "osec_facilitator"
ENTITY_FILES = {
    "entities": ("entities.csv", ("account_id", "side", "entity_id", "household_id")),
    "entity_alerts": ("entity_alerts.csv", ("side", "accounts")),
    "household_alerts": ("household_alerts.csv", ("side", "accounts")),
}


def _pairs(sizes: pd.Series) -> int:
    n = sizes.astype("int64")
    return int((n * (n - 1) // 2).sum())


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def _alert_records(alerts: pd.DataFrame | None) -> list[set[tuple[str, str]]]:
    """Each alert as the set of (account_id, side) records it lists."""
    if alerts is None or not len(alerts):
        return []
    out = []
    for side, accounts in zip(alerts["side"].astype(str).tolist(), alerts["accounts"].fillna("").astype(str).tolist()):
        out.append({(a, side) for a in accounts.split(";") if a})
    return out


def _operations(e: pd.DataFrame | None, entity_alerts: pd.DataFrame | None, household_alerts: pd.DataFrame | None,
                positive_role: str, prefix: str, notes: list[str]) -> dict[str, Any]:
    """Multi-account operations among the labelled records `e` (None: not computable), keys
    prefixed by `prefix` ("operations" or "paid_operations")."""
    names = ("multi_account", "in_one_entity", "in_one_household", "in_one_alert", "missed_split",
             "missed_not_alerted")
    out: dict[str, Any] = {f"{prefix}_{k}": None for k in names}
    out.update({f"{prefix}_share_in_one_{k}": None for k in ("entity", "household", "alert")})
    out[f"{prefix}_missed"] = []
    if e is None:
        return out
    fac = e[(e["role"] == positive_role) & (e["group"] != "")]
    multi = [(g, d) for g, d in fac.groupby("group", sort=True) if d["account_id"].nunique() > 1]
    n = len(multi)
    out[f"{prefix}_multi_account"] = n
    out[f"{prefix}_in_one_entity"] = sum(d["entity_id"].nunique() == 1 for _, d in multi)
    out[f"{prefix}_in_one_household"] = sum(d["household_id"].nunique() == 1 for _, d in multi)
    if entity_alerts is not None or household_alerts is not None:
        sets = _alert_records(entity_alerts) + _alert_records(household_alerts)
        alerted = set().union(*sets) if sets else set()
        rec = split = unalerted = 0
        for g, d in multi:
            recs = set(zip(d["account_id"], d["side"]))
            if any(recs <= s for s in sets):
                rec += 1
                continue
            if d["household_id"].nunique() > 1:
                split += 1
                why = "split"
            else:
                unalerted += 1
                why = "not_alerted"
            out[f"{prefix}_missed"].append({
                "group": g, "accounts": len(recs), "entities": int(d["entity_id"].nunique()),
                "households": int(d["household_id"].nunique()), "accounts_alerted": len(recs & alerted), "why": why,
            })
        out.update({f"{prefix}_in_one_alert": rec, f"{prefix}_missed_split": split,
                    f"{prefix}_missed_not_alerted": unalerted})
    else:
        notes.append("no entity or household alerts given: operations recovered in one alert are not computed")
    for k in ("entity", "household", "alert"):
        c = out[f"{prefix}_in_one_{k}"]
        out[f"{prefix}_share_in_one_{k}"] = _share(c, n) if c is not None else None
    return out


def entity_metrics(entities: pd.DataFrame, labels: pd.DataFrame, *, entity_alerts: pd.DataFrame | None = None,
                   household_alerts: pd.DataFrame | None = None, operations: pd.DataFrame | None = None,
                   positive_role: str = FACILITATOR_ROLE) -> dict[str, Any]:
    """Link precision/recall, household pair precision and the operations recovered whole.

    `entities`: account_id, side, entity_id, household_id (entities.csv). `labels`: account_id,
    side, role, and `person_id` (for links) and `group` (for households and operations); a metric
    whose truth column is absent is None and a note says why. `entity_alerts` / `household_alerts`:
    side, accounts (";"); without either, `operations_in_one_alert` is None. `operations`
    (operations.csv of `kalasag simulate`: account_id, side, role, osec_payments) adds the same
    operation counts over the *paid* facilitator accounts only (`paid_operations_*`): those that
    received at least one payment from an OSEC customer in the transfers."""
    notes: list[str] = []
    ent = entities[["account_id", "side", "entity_id", "household_id"]].astype(str)
    lab = labels.copy()
    lab["account_id"] = lab["account_id"].astype(str)
    lab["side"] = lab["side"].astype(str)
    # one truth per record: a positive-role row first
    lab = lab.assign(_pos=lab["role"] == positive_role).sort_values("_pos", ascending=False, kind="stable")
    lab = lab.drop_duplicates(["account_id", "side"]).drop(columns="_pos")
    e = ent.merge(lab, on=["account_id", "side"], how="inner")
    out: dict[str, Any] = {
        "records": int(len(ent)),
        "records_labelled": int(len(e)),
        "entities": int(ent["entity_id"].nunique()),
        "multi_account_entities": int((ent.groupby("entity_id").size() > 1).sum()),
        "households_multi": int((ent.groupby("household_id")["entity_id"].nunique() > 1).sum()),
    }
    if len(e) < len(ent):
        notes.append(f"{len(ent) - len(e)} entity record(s) have no label and are left out of the pair counts")

    if "person_id" in e.columns:
        p = e[e["person_id"].fillna("").astype(str) != ""]
        pred = _pairs(p.groupby("entity_id").size())
        true = _pairs(p.groupby("person_id").size())
        tp = _pairs(p.groupby(["entity_id", "person_id"]).size())
        out.update(persons=int(p["person_id"].nunique()), link_pairs_predicted=pred, link_pairs_true=true,
                   link_pairs_correct=tp, link_precision=_share(tp, pred), link_recall=_share(tp, true))
    else:
        out.update(persons=None, link_pairs_predicted=None, link_pairs_true=None, link_pairs_correct=None,
                   link_precision=None, link_recall=None)
        notes.append("the labels have no person_id column: link precision and recall are not computed")

    has_group = "group" in e.columns
    if has_group:
        e["group"] = e["group"].fillna("").astype(str)
        hh = _pairs(e.groupby("household_id").size())
        hh_ok = _pairs(e[e["group"] != ""].groupby(["household_id", "group"]).size())
        # the harmful kind of error: an OSEC account and an account of no OSEC role, of another group
        pos = e["role"].isin(POSITIVE_ROLES)
        by_h = e.assign(_p=pos, _n=~pos).groupby("household_id")[["_p", "_n"]].sum()
        by_hg = e[e["group"] != ""].assign(_p=pos, _n=~pos).groupby(["household_id", "group"])[["_p", "_n"]].sum()
        mixed = int((by_h["_p"] * by_h["_n"]).sum() - (by_hg["_p"] * by_hg["_n"]).sum())
        out.update(household_pairs=hh, household_pairs_same_group=hh_ok, household_pair_precision=_share(hh_ok, hh),
                   household_pairs_osec_with_other=mixed)
    else:
        out.update(household_pairs=None, household_pairs_same_group=None, household_pair_precision=None,
                   household_pairs_osec_with_other=None)
        notes.append("the labels have no group column: household precision and operations are not computed")

    out.update(_operations(e if has_group else None, entity_alerts, household_alerts, positive_role, "operations", notes))
    if operations is not None and has_group:
        paid = operations[(operations["role"] == positive_role) & (pd.to_numeric(operations["osec_payments"]) > 0)]
        keep = paid[["account_id", "side"]].astype(str).drop_duplicates()
        ep = e.merge(keep, on=["account_id", "side"], how="inner")
        out.update(_operations(ep, entity_alerts, household_alerts, positive_role, "paid_operations", []))
    else:
        out.update(_operations(None, None, None, positive_role, "paid_operations", []))
        if has_group:
            notes.append("no operations.csv (payments per OSEC account): the paid-accounts view is not computed")
    out["notes"] = notes
    return out


OPERATIONS_COLUMNS = ("account_id", "side", "role", "osec_payments")


def read_operations(path: str | Path) -> pd.DataFrame:
    """operations.csv of `kalasag simulate` (string columns; osec_payments numeric). ValueError
    naming the file on a missing column."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{path}: file is empty (no header)") from exc
    missing = [c for c in OPERATIONS_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    n = pd.to_numeric(df["osec_payments"], errors="coerce")
    if n.isna().any():
        raise ValueError(f"{path}: osec_payments must be a whole number, found {df.loc[n.isna(), 'osec_payments'].iloc[0]!r}")
    return df.assign(osec_payments=n.astype("int64"))


def read_entity_run(run_dir: str | Path) -> dict[str, pd.DataFrame] | None:
    """entities.csv, entity_alerts.csv and household_alerts.csv of a run directory as string frames,
    or None when the run has no entities.csv (a scan from before entity resolution). A missing
    alerts file is None in the dict. Raises ValueError naming the file on a missing column."""
    d = Path(run_dir)
    if d.suffix.lower() == ".parquet":  # evaluate() also accepts scores.parquet itself
        d = d.parent
    if not (d / ENTITY_FILES["entities"][0]).is_file():
        return None
    frames: dict[str, pd.DataFrame] = {}
    for key, (name, cols) in ENTITY_FILES.items():
        path = d / name
        if not path.is_file():
            frames[key] = None
            continue
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{path}: file is empty (no header)") from exc
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        frames[key] = df
    return frames
