"""`network_evidence`: the network stage between the indicators and scoring.

N-01, N-02 and I-23 need only the transfers and run inside `compute_evidence` like every indicator.
N-03 and N-04 need to know which accounts are already suspicious: this step computes the first-pass
score (docs/scoring.md's formula on the evidence so far), runs them, and returns the evidence with
their columns added (`n03_*`, `n04_*`; fired false and strength 0 where they do not apply).
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir

from kalasag.indicators.context import Context
from kalasag.model import SIDES, KalasagConfig
from kalasag.network.propagation import STAGE, set_first_pass


def network_indicators(side: str) -> list:
    from kalasag.indicators.registry import INDICATORS

    return [i for i in INDICATORS.values() if getattr(i, "stage", "transfers") == STAGE and side in i.sides]


def network_evidence(
    engine: Any, transfers: ir.Table, evidence: Any, config: KalasagConfig, *, context: Context | None = None,
) -> Any:
    """Evidence with the network-stage columns joined (materialized). `context`: the Context the
    indicators used, if the caller kept it (saves rebuilding the prepared transfers)."""
    from kalasag.indicators.evidence import Evidence, join_all_evidence  # (the indicators room imports this room's indicators)

    # the indicators' own Context when they handed it on (compute_evidence does): same prepared
    # transfers, and the graph tables N-01/N-02 materialized are reused instead of rebuilt
    ctx = context or getattr(evidence, "context", None) or Context.build(engine, transfers, config)
    for side in SIDES:
        set_first_pass(ctx, side, evidence.side(side), config)
    out = {}
    for side in SIDES:
        # in batches, as the indicators' evidence (join_all_evidence)
        out[side] = join_all_evidence(ctx, side, evidence.side(side), network_indicators(side))
    return Evidence(sender=out["sender"], receiver=out["receiver"], context=ctx)
