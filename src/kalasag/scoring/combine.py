"""Combine per-account evidence into a score, a risk level and an explanation.

The score is a logistic combination of graded indicator strengths (each 0–1):

    logit = prior_log_odds[side] + Σ weight[id] · strength[id] + weight["core_rule"] · core_rule
    score = 1 / (1 + exp(−logit))

No single indicator can raise an alert on its own unless its weight alone beats the prior: this is
the "no single red flag" rule of AUSTRAC and ACAMS, written as arithmetic. Weights are per
indicator id, optionally per side (`"I-07.receiver"` beats `"I-07"`); all live in config.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from kalasag.model import KalasagConfig


@dataclass(frozen=True)
class IndicatorRef:
    """What scoring needs to know of an indicator (the scoring room does not import its internals)."""

    id: str
    slug: str
    name: str


def weight_for(config: KalasagConfig, indicator_id: str, side: str) -> float:
    weights = config.scoring.weights
    return float(weights.get(f"{indicator_id}.{side}", weights.get(indicator_id, 0.0)))


def _present(table: ir.Table, refs: Iterable[IndicatorRef]) -> list[IndicatorRef]:
    cols = set(table.columns)
    return [r for r in refs if f"{r.slug}_fired" in cols and f"{r.slug}_strength" in cols]


def score_table(table: ir.Table, side: str, refs: Iterable[IndicatorRef], config: KalasagConfig) -> ir.Table:
    """Add `logit`, `score`, `risk_level`, `alerted` and `indicators` (fired ids) to an evidence table."""
    refs = _present(table, refs)
    sc = config.scoring
    logit: ir.FloatingValue = ibis.literal(sc.prior_log_odds[side], type="float64")
    for ref in refs:
        w = weight_for(config, ref.id, side)
        if w:
            logit = logit + table[f"{ref.slug}_strength"].fill_null(0.0).cast("float64") * w
    core_w = weight_for(config, "core_rule", side)
    if "core_rule" in table.columns and core_w:
        logit = logit + table["core_rule"].fill_null(False).cast("float64") * core_w
    score = 1.0 / (1.0 + (-logit).exp())
    fired = ibis.literal("")
    for ref in refs:
        fired = fired + ibis.ifelse(table[f"{ref.slug}_fired"].fill_null(False), ref.id + ";", "")
    out = table.mutate(logit=logit, score=score, indicators=fired.re_replace(r";$", ""))
    risk = ibis.cases(
        (out.score >= sc.risk_high, "high"),
        (out.score >= sc.risk_medium, "medium"),
        else_="low",
    )
    per_10k = sc.alerts_per_10k.get(side)
    if per_10k is None:
        return out.mutate(risk_level=risk, alerted=out.score >= sc.alert_threshold)
    # Capacity threshold: alert the k highest scores, k = ceil(n × per_10k / 10,000), ties at the
    # k-th score included. ibis.rank() is the 0-based SQL RANK (ties share the lowest rank), so
    # "rank < k" keeps every account whose score equals the k-th highest.
    n = out.account_id.count().over(ibis.window())
    k = (n.cast("float64") * (per_10k / 10_000.0)).ceil()
    rank = ibis.rank().over(ibis.window(order_by=ibis.desc(out.score)))
    return out.mutate(risk_level=risk, alerted=rank.cast("float64") < k)


def attach_evidence(table: ir.Table, agg: ir.Table, key: str, prefix: str, cols: list[str]) -> ir.Table:
    """`table` with `cols` of `agg` joined on account_id = `key`; accounts without a row get
    fired False and strength 0 (the other columns stay NULL)."""
    j = table.left_join(agg, table.account_id == agg[key])
    extra = {c: j[c] for c in cols}
    extra[f"{prefix}_fired"] = j[f"{prefix}_fired"].fill_null(False)
    extra[f"{prefix}_strength"] = j[f"{prefix}_strength"].fill_null(0.0).cast("float64")
    return j.select(*[j[c] for c in table.columns], **extra)


def number(row: Mapping[str, Any], key: str) -> float | None:
    """`row[key]` as a float, or None when it is missing, not a number or NaN (explanations)."""
    v = row.get(key)
    try:
        f = float(v) if v is not None else None
    except (TypeError, ValueError):
        return None
    return None if f is None or math.isnan(f) else f


def capacity_k(n_accounts: int, alerts_per_10k: float) -> int:
    """How many accounts a capacity of `alerts_per_10k` alerts (before ties): ceil(n × a / 10,000)."""
    return math.ceil(n_accounts * alerts_per_10k / 10_000)


def contributions(row: Mapping[str, Any], side: str, refs: Iterable[IndicatorRef], config: KalasagConfig) -> list[tuple[str, float]]:
    """Per-indicator log-odds contribution of one account (for explanations), largest first."""
    out = []
    for ref in refs:
        if row.get(f"{ref.slug}_fired"):
            out.append((ref.id, weight_for(config, ref.id, side) * float(row.get(f"{ref.slug}_strength") or 0.0)))
    # largest first; with a learned model (negative weights allowed) the ones that lower the score last
    return sorted(out, key=lambda kv: -kv[1])


def explain_row(
    row: Mapping[str, Any],
    side: str,
    refs: Iterable[IndicatorRef],
    config: KalasagConfig,
    explain: Callable[[str, Mapping[str, Any], str], str],
) -> str:
    """Sentences for the fired indicators, strongest contribution first, with the numbers."""
    refs = list(refs)
    parts = []
    for ind_id, contrib in contributions(row, side, refs, config)[: config.scoring.max_explained]:
        sentence = explain(ind_id, row, side).strip().rstrip(".")
        if sentence:
            parts.append(f"{ind_id}: {sentence[0].upper()}{sentence[1:]} ({contrib:+.2f} log-odds).")
    if row.get("core_rule"):
        parts.append(
            "The plain published rule holds: low-value payments (I-01) between unrelated parties (I-05) "
            f"with high frequency or fan-in/fan-out (I-02/I-03/I-04) ({weight_for(config, 'core_rule', side):+.2f} log-odds)."
        )
    return " ".join(parts)
