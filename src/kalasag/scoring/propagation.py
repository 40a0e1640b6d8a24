"""P-01, the scoring's second pass: receivers paid by high-scoring senders.

Senders are scored first. A receiver's P-01 evidence is then the sum of the scores of the distinct
foreign senders that paid it (watched payments: sender country ≠ receiver country, receiver in a
target country): the number of OSEC customers one expects among its payers if the sender scores
are calibrated probabilities. The sources' picture of a facilitator is exactly this: one
beneficiary paid by several customers (AUSTRAC: "sent by multiple Australia-based customers";
Operation Endeavour: 11 facilitators, 29 customers). Unlike N-04 (first-pass scores, a hard
`seed_score`), P-01 uses the senders' final scores, network evidence included, and keeps them graded.

P-01 fires when the expected number of customers is at least `min_expected`; its strength is
expected / `strong_expected`, capped at 1. Parameters: `[indicators."P-01"]`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kalasag.model import ConfigError, KalasagConfig
from kalasag.scoring.combine import IndicatorRef

PROPAGATION_ID = "P-01"
SLUG = "p01"
PROPAGATION_REF = IndicatorRef(PROPAGATION_ID, SLUG, "Paid by high-scoring senders")
PROPAGATION_SOURCE = (
    "Kalasag second scoring pass (docs/scoring.md): AUSTRAC case guidance (frequent low-value remittances to a "
    "common beneficiary sent by multiple customers); NCA Operation Endeavour (11 facilitators, 29 customers)"
)


class PropagationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_expected: float = Field(gt=0)      # fires at this many expected customers among the payers
    strong_expected: float = Field(gt=0)   # strength = expected / strong_expected, capped at 1
    flag_score: float = Field(gt=0, le=1)  # payers scoring at least this are counted (and named) in the sentence


def propagation_params(config: KalasagConfig) -> PropagationParams:
    try:
        p = PropagationParams.model_validate(config.indicator_params(PROPAGATION_ID))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"invalid config at 'indicators.\"{PROPAGATION_ID}\".{where}': {first['msg']}") from exc
    if p.strong_expected < p.min_expected:
        raise ConfigError(f"invalid config at 'indicators.\"{PROPAGATION_ID}\"': strong_expected must not be below min_expected")
    return p


def payer_edges(transfers: ir.Table, config: KalasagConfig) -> ir.Table:
    """Distinct (sender_id, receiver_id) pairs of watched payments, with how many there were."""
    t = transfers
    targets = [c.upper() for c in config.target_countries]
    watched = (t.sender_country != t.receiver_country).fill_null(False) & t.receiver_country.isin(targets).fill_null(False)
    w = t.filter(watched)
    return w.group_by(["sender_id", "receiver_id"]).aggregate(n=w.count().cast("int64"))


def customer_evidence(receivers: ir.Table, edges: ir.Table, sender_scores: ir.Table, config: KalasagConfig) -> ir.Table:
    """The receivers' evidence table with P-01's columns added.

    `edges`: `payer_edges(...)`; `sender_scores`: account_id, score of every scored sender.
    Adds `p01_fired`, `p01_strength` (never NULL), `p01_expected` (sum of the payers' scores),
    `p01_payers` (distinct foreign payers), `p01_flagged` (payers scoring ≥ flag_score),
    `p01_top_payer` and `p01_top_score` (the highest-scoring payer; ties: smallest id).
    """
    p = propagation_params(config)
    s = sender_scores.select(sender_id=sender_scores.account_id, s_score=sender_scores.score.cast("float64"))
    e = edges.inner_join(s, edges.sender_id == s.sender_id).select(edges.receiver_id, edges.sender_id, "s_score")
    agg = e.group_by("receiver_id").aggregate(
        p01_expected=e.s_score.sum(),
        p01_payers=e.sender_id.nunique().cast("int64"),
        p01_flagged=(e.s_score >= p.flag_score).cast("int64").sum(),
        p01_top_score=e.s_score.max(),
    )
    top = e.mutate(_r=ibis.row_number().over(ibis.window(group_by=e.receiver_id,
                                                          order_by=[ibis.desc(e.s_score), e.sender_id])))
    top = top.filter(top._r == 0).select(top.receiver_id, p01_top_payer=top.sender_id)
    agg = agg.inner_join(top, agg.receiver_id == top.receiver_id).select(
        agg.receiver_id, agg.p01_expected, agg.p01_payers, agg.p01_flagged, agg.p01_top_score, top.p01_top_payer)
    fired = agg.p01_expected >= p.min_expected
    agg = agg.mutate(
        p01_fired=fired,
        p01_strength=ibis.ifelse(fired, ibis.least(agg.p01_expected / p.strong_expected, 1.0), 0.0).cast("float64"),
    )
    cols = ["p01_fired", "p01_strength", "p01_expected", "p01_payers", "p01_flagged", "p01_top_payer", "p01_top_score"]
    base = list(receivers.columns)
    j = receivers.left_join(agg, receivers.account_id == agg.receiver_id)
    extra = {c: j[c] for c in cols}
    extra["p01_fired"] = j.p01_fired.fill_null(False)
    extra["p01_strength"] = j.p01_strength.fill_null(0.0).cast("float64")
    return j.select(*[j[c] for c in base], **extra)


def _num(row: Mapping[str, Any], key: str) -> float | None:
    v = row.get(key)
    try:
        f = float(v) if v is not None else None
    except (TypeError, ValueError):
        return None
    return None if f is None or math.isnan(f) else f


def explain_propagation(row: Mapping[str, Any], side: str, flag_score: float = 0.5) -> str:
    expected, payers = _num(row, "p01_expected"), _num(row, "p01_payers")
    if expected is None or payers is None:
        return ""
    n = int(payers)
    flagged = int(_num(row, "p01_flagged") or 0)
    text = (f"paid by {n} foreign sender{'' if n == 1 else 's'} whose own scores add up to {expected:.1f} expected "
            f"OSEC customer{'' if round(expected, 1) == 1.0 else 's'}")
    if flagged:
        text += f"; {flagged} of them score{'s' if flagged == 1 else ''} {flag_score:.2f} or more"
    top, score = row.get("p01_top_payer"), _num(row, "p01_top_score")
    if top is not None and score is not None:
        text += f" (highest: {top}, score {score:.2f})"
    return text
