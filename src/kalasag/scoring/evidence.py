"""The evidence the scoring room adds itself (A-01 anomaly, P-01 and P-02 second pass) and its sentences.

`SCORING_EVIDENCE` lists them (id → ref, source) for run.json and the report; `scoring_evidence`
joins their columns onto both sides' evidence tables in the order a scan needs (A-01 on both sides;
P-02 on senders, from the other senders' scores before P-02; P-01 on receivers, from the senders'
final scores); `explainer` makes the `explain` callback of
`explain_row` speak for them and hand every other id to the indicators room.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ibis.expr.types as ir

from kalasag.model import KalasagConfig
from kalasag.scoring.anomaly import ANOMALY_ID, ANOMALY_REF, ANOMALY_SOURCE, account_profile, anomaly_evidence, explain_anomaly
from kalasag.scoring.combine import IndicatorRef, score_table
from kalasag.scoring.propagation import (
    COPAYER_ID,
    COPAYER_REF,
    COPAYER_SOURCE,
    PROPAGATION_ID,
    PROPAGATION_REF,
    PROPAGATION_SOURCE,
    copayer_evidence,
    copayer_params,
    customer_evidence,
    explain_copayers,
    explain_propagation,
    payer_edges,
    propagation_params,
)

SCORING_EVIDENCE: dict[str, tuple[IndicatorRef, str]] = {
    ANOMALY_ID: (ANOMALY_REF, ANOMALY_SOURCE),
    COPAYER_ID: (COPAYER_REF, COPAYER_SOURCE),
    PROPAGATION_ID: (PROPAGATION_REF, PROPAGATION_SOURCE),
}

Explain = Callable[[str, Mapping[str, Any], str], str]


def scoring_refs() -> list[IndicatorRef]:
    return [ref for ref, _ in SCORING_EVIDENCE.values()]


def scoring_evidence(engine: Any, evidence: Any, transfers: ir.Table, config: KalasagConfig,
                     refs: list[IndicatorRef]) -> dict[str, ir.Table]:
    """Both sides' evidence tables with the scoring room's own evidence joined (materialized).

    `evidence` has `.side("sender")` / `.side("receiver")` (kalasag.indicators.Evidence, after
    network_evidence); `transfers` are the ingested transfers; `refs` every evidence the score
    combines (`kalasag.pipeline.indicator_refs()`). A-01 is added on both sides; the senders are
    scored without P-02 (score_table, the same formula and weights as the final score, P-02's
    column not yet present) and P-02 is added to each sender from its co-payers' scores; the
    senders are scored again (the final sender score) and P-01 is added to the receivers from
    those scores. Scoring the returned tables with `score_table` gives the scan's scores; the
    senders' final score is the one P-01 used.
    """
    out = {}
    edges = engine.materialize(payer_edges(transfers, config))
    s = engine.materialize(anomaly_evidence(evidence.side("sender"), account_profile(transfers, "sender"), "sender", config))
    before = score_table(s, "sender", refs, config).select("account_id", "score")
    out["sender"] = engine.materialize(copayer_evidence(s, edges, before, config))
    sender_scores = score_table(out["sender"], "sender", refs, config).select("account_id", "score")
    r = anomaly_evidence(evidence.side("receiver"), account_profile(transfers, "receiver"), "receiver", config)
    out["receiver"] = engine.materialize(customer_evidence(r, edges, sender_scores, config))
    return out


def explainer(fallback: Explain, config: KalasagConfig | None = None) -> Explain:
    """An `explain(id, row, side)` callback for `explain_row`: A-01, P-01 and P-02 here, the rest to `fallback`."""
    flag = propagation_params(config).flag_score if config is not None else 0.5
    co_flag = copayer_params(config).flag_score if config is not None else 0.5

    def explain(indicator_id: str, row: Mapping[str, Any], side: str) -> str:
        if indicator_id == ANOMALY_ID:
            return explain_anomaly(row, side)
        if indicator_id == PROPAGATION_ID:
            return explain_propagation(row, side, flag)
        if indicator_id == COPAYER_ID:
            return explain_copayers(row, side, co_flag)
        return fallback(indicator_id, row, side)

    return explain
