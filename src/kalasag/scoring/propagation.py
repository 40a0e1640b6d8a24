"""P-01 and P-02, the scoring's second pass: evidence propagated from other accounts' scores.

P-01 (receivers): paid by high-scoring senders. P-02 (senders): pays beneficiaries that
high-scoring senders also pay (below).

Senders are scored first. A receiver's P-01 evidence is then the sum of the scores of the distinct
foreign senders that paid it (watched payments: sender country ≠ receiver country, receiver in a
target country): the number of OSEC customers one expects among its payers if the sender scores
are calibrated probabilities. The sources' picture of a facilitator is exactly this: one
beneficiary paid by several customers (AUSTRAC: "sent by multiple Australia-based customers";
Operation Endeavour: 11 facilitators, 29 customers). Unlike N-04 (first-pass scores, a hard
`seed_score`), P-01 uses the senders' final scores, network evidence included, and keeps them graded.

P-01 fires when the expected number of customers is at least `min_expected`; its strength is
expected / `strong_expected`, capped at 1. Parameters: `[indicators."P-01"]`.

P-02 is the same sum seen from a customer: a sender's **co-payers** are the other senders that pay
one of its beneficiaries (watched payments), and P-02's evidence is the sum of their scores — the
number of OSEC customers one expects among the senders that share its beneficiaries. A customer who
pays one facilitator rarely (calm customers, docs/detection.md) shows little frequency evidence of
its own, but shares its beneficiary with other customers (AUSTRAC: "two offenders were linked
through common PH beneficiaries"; Operation Endeavour began from one offender's records and led to
29 customers). The co-payers' scores are the sender scores **before** P-02 (every other evidence,
network and A-01 included, with the configured weights), so no sender's P-02 contains anything
computed from P-02, and a sender's own score never enters its own P-02. Beneficiaries with more
than `max_via_payers` foreign payers (charities, online shops, platforms) link nobody. P-02 fires
when the co-payers' scores add up to `min_expected`; strength = sum / `strong_expected`, capped at 1.
Parameters: `[indicators."P-02"]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kalasag.model import ConfigError, KalasagConfig
from kalasag.scoring.combine import IndicatorRef, attach_evidence, number as _num

_P = TypeVar("_P", bound=BaseModel)

PROPAGATION_ID = "P-01"
SLUG = "p01"
PROPAGATION_REF = IndicatorRef(PROPAGATION_ID, SLUG, "Paid by high-scoring senders")
PROPAGATION_SOURCE = (
    "Kalasag second scoring pass (docs/scoring.md): AUSTRAC case guidance (frequent low-value remittances to a "
    "common beneficiary sent by multiple customers); NCA Operation Endeavour (11 facilitators, 29 customers)"
)


COPAYER_ID = "P-02"
COPAYER_SLUG = "p02"
COPAYER_REF = IndicatorRef(COPAYER_ID, COPAYER_SLUG, "Pays beneficiaries that high-scoring senders also pay")
COPAYER_SOURCE = (
    "Kalasag second scoring pass (docs/scoring.md): AUSTRAC case guidance (two offenders linked through common "
    "PH beneficiaries; remittances to a common beneficiary sent by multiple customers); NCA Operation Endeavour "
    "(one offender's records led to 29 customers of 11 facilitators); research note osec-financial-indicators.md I-03"
)


class PropagationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_expected: float = Field(gt=0)      # fires at this many expected customers among the payers
    strong_expected: float = Field(gt=0)   # strength = expected / strong_expected, capped at 1
    flag_score: float = Field(gt=0, le=1)  # payers scoring at least this are counted (and named) in the sentence


def _params(config: KalasagConfig, indicator_id: str, model: type[_P]) -> _P:
    """`[indicators."<id>"]` validated into `model`, with a one-line error naming the key."""
    try:
        p = model.model_validate(config.indicator_params(indicator_id))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"invalid config at 'indicators.\"{indicator_id}\".{where}': {first['msg']}") from exc
    if p.strong_expected < p.min_expected:
        raise ConfigError(f"invalid config at 'indicators.\"{indicator_id}\"': strong_expected must not be below min_expected")
    return p


def propagation_params(config: KalasagConfig) -> PropagationParams:
    return _params(config, PROPAGATION_ID, PropagationParams)


class CopayerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_expected: float = Field(gt=0)      # fires when the co-payers' scores add up to at least this
    strong_expected: float = Field(gt=0)   # strength = sum / strong_expected, capped at 1
    max_via_payers: int = Field(gt=0)      # beneficiaries with more distinct foreign payers link nobody
    flag_score: float = Field(gt=0, le=1)  # co-payers scoring at least this are counted in the sentence


def copayer_params(config: KalasagConfig) -> CopayerParams:
    return _params(config, COPAYER_ID, CopayerParams)


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
    agg = _fire(_sum_of_scores(e, "receiver_id", "sender_id", "s_score", "p01", "p01_payers", "p01_top_payer", p), "p01", p)
    cols = ["p01_fired", "p01_strength", "p01_expected", "p01_payers", "p01_flagged", "p01_top_payer", "p01_top_score"]
    return attach_evidence(receivers, agg, "receiver_id", "p01", cols)


def copayer_evidence(senders: ir.Table, edges: ir.Table, first_scores: ir.Table, config: KalasagConfig) -> ir.Table:
    """The senders' evidence table with P-02's columns added.

    `edges`: `payer_edges(...)`; `first_scores`: account_id, score of every sender *before* P-02.
    A co-payer of sender s is another sender paying one of s's beneficiaries, counted once however
    many beneficiaries they share, through beneficiaries with at most `max_via_payers` distinct
    foreign payers. Adds `p02_fired`, `p02_strength` (never NULL), `p02_expected` (sum of the
    co-payers' scores), `p02_copayers`, `p02_via` (s's beneficiaries that link it to a co-payer),
    `p02_flagged` (co-payers scoring ≥ flag_score), `p02_top_copayer` and `p02_top_score` (ties:
    smallest id).
    """
    p = copayer_params(config)
    deg = edges.group_by("receiver_id").aggregate(_payers=edges.sender_id.nunique())
    via = edges.inner_join(deg, edges.receiver_id == deg.receiver_id)
    via = via.filter(via._payers <= p.max_via_payers).select(edges.receiver_id, edges.sender_id)
    other = via.view()
    pairs = via.inner_join(other, (via.receiver_id == other.receiver_id) & (via.sender_id != other.sender_id))
    pairs = pairs.select(sender_id=via.sender_id, co_id=other.sender_id, via_id=via.receiver_id)
    nvia = pairs.group_by("sender_id").aggregate(p02_via=pairs.via_id.nunique().cast("int64"))
    co = pairs.select("sender_id", "co_id").distinct()
    s = first_scores.select(co_id=first_scores.account_id, c_score=first_scores.score.cast("float64"))
    e = co.inner_join(s, co.co_id == s.co_id).select(co.sender_id, co.co_id, "c_score")
    agg = _sum_of_scores(e, "sender_id", "co_id", "c_score", "p02", "p02_copayers", "p02_top_copayer", p)
    agg = agg.inner_join(nvia, agg.sender_id == nvia.sender_id).select(*[agg[c] for c in agg.columns], nvia.p02_via)
    cols = ["p02_fired", "p02_strength", "p02_expected", "p02_copayers", "p02_via", "p02_flagged", "p02_top_copayer",
            "p02_top_score"]
    return attach_evidence(senders, _fire(agg, "p02", p), "sender_id", "p02", cols)


def _sum_of_scores(e: ir.Table, key: str, other: str, score: str, prefix: str, count: str, top_name: str,
                   p: PropagationParams | CopayerParams) -> ir.Table:
    """Per `key`: `<prefix>_expected` (sum of the `other` accounts' scores), `count` (distinct
    `other`), `<prefix>_flagged` (scores ≥ flag_score), `<prefix>_top_score` and `top_name` (the
    highest-scoring `other`; ties: smallest id). Shared by P-01 (payers of a receiver) and P-02
    (co-payers of a sender)."""
    agg = e.group_by(key).aggregate(**{
        f"{prefix}_expected": e[score].sum(),
        count: e[other].nunique().cast("int64"),
        f"{prefix}_flagged": (e[score] >= p.flag_score).cast("int64").sum(),
        f"{prefix}_top_score": e[score].max(),
    })
    top = e.mutate(_r=ibis.row_number().over(ibis.window(group_by=e[key], order_by=[ibis.desc(e[score]), e[other]])))
    top = top.filter(top._r == 0).select(top[key], **{top_name: top[other]})
    return agg.inner_join(top, agg[key] == top[key]).select(
        agg[key], *[agg[c] for c in agg.columns if c != key], top[top_name])


def _fire(agg: ir.Table, prefix: str, p: PropagationParams | CopayerParams) -> ir.Table:
    """Fired at `<prefix>_expected` ≥ min_expected; strength = expected / strong_expected, capped at 1."""
    expected = agg[f"{prefix}_expected"]
    fired = expected >= p.min_expected
    return agg.mutate(**{
        f"{prefix}_fired": fired,
        f"{prefix}_strength": ibis.ifelse(fired, ibis.least(expected / p.strong_expected, 1.0), 0.0).cast("float64"),
    })


def _flagged_and_top(row: Mapping[str, Any], prefix: str, top_key: str, flag_score: float) -> str:
    """The end of a P-01 / P-02 sentence: how many of the counterparts are flagged, and the highest."""
    text = ""
    flagged = int(_num(row, f"{prefix}_flagged") or 0)
    if flagged:
        text += f"; {flagged} of them score{'s' if flagged == 1 else ''} {flag_score:.2f} or more"
    top, score = row.get(top_key), _num(row, f"{prefix}_top_score")
    if top is not None and score is not None:
        text += f" (highest: {top}, score {score:.2f})"
    return text


def explain_propagation(row: Mapping[str, Any], side: str, flag_score: float = 0.5) -> str:
    expected, payers = _num(row, "p01_expected"), _num(row, "p01_payers")
    if expected is None or payers is None:
        return ""
    n = int(payers)
    text = (f"paid by {n} foreign sender{'' if n == 1 else 's'} whose own scores add up to {expected:.1f} expected "
            f"OSEC customer{'' if round(expected, 1) == 1.0 else 's'}")
    return text + _flagged_and_top(row, "p01", "p01_top_payer", flag_score)


def explain_copayers(row: Mapping[str, Any], side: str, flag_score: float = 0.5) -> str:
    expected, copayers = _num(row, "p02_expected"), _num(row, "p02_copayers")
    if expected is None or copayers is None:
        return ""
    n, via = int(copayers), int(_num(row, "p02_via") or 0)
    text = (f"{'its beneficiary is' if via == 1 else f'{via} of its beneficiaries are'} also paid by {n} other foreign "
            f"sender{'' if n == 1 else 's'} whose own scores add up to {expected:.1f} expected OSEC "
            f"customer{'' if round(expected, 1) == 1.0 else 's'}")
    return text + _flagged_and_top(row, "p02", "p02_top_copayer", flag_score)
