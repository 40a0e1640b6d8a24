"""The indicators room: every published OSEC payment indicator the schema allows, as Ibis code.

Entry points: `INDICATORS` (id → `Indicator`), `compute_evidence(engine, transfers, config)`
→ `Evidence` (.sender / .receiver tables, one row per account) and `explain(id, row, side)`;
`StreamEvidence` — the same evidence kept incrementally, one transfer at a time (the stream form,
docs/indicators.md "Two forms"); `STREAM_CLASSES`, the classes of its state (for snapshots).
See docs/indicators.md for the definitions, parameters and sources.
"""

from kalasag.indicators.base import Indicator, Params
from kalasag.indicators.context import Context, IndicatorInputError
from kalasag.indicators.evidence import (
    CORE_ALL, CORE_ANY, CORE_RULE, Evidence, compute_evidence, core_rule, explain, join_evidence,
)
from kalasag.indicators.ops import IBIS, SCALAR
from kalasag.indicators.registry import INDICATORS, NOT_IMPLEMENTED, for_side
from kalasag.indicators.stream import STREAM_CLASSES, StreamEvidence, Tx
from kalasag.indicators.timezones import with_local_hour

__all__ = [
    "CORE_ALL", "CORE_ANY", "CORE_RULE", "IBIS", "SCALAR", "STREAM_CLASSES", "Context", "Evidence", "INDICATORS",
    "Indicator", "IndicatorInputError", "NOT_IMPLEMENTED", "Params", "StreamEvidence", "Tx",
    "compute_evidence", "core_rule", "explain", "for_side", "join_evidence", "with_local_hour",
]
