"""The scoring room: evidence → score (0–1), risk level, alert flag and explanation; learned weights;
the evidence scoring adds itself: A-01 (label-free anomaly), P-01 (receivers paid by high-scoring
senders) and P-02 (senders sharing beneficiaries with high-scoring senders), a second pass.
Entry points for a scan: `scoring_evidence`, `score_table`, `explainer`, `explain_row`,
`scoring_refs`, `SCORING_EVIDENCE`."""

from kalasag.scoring.anomaly import (
    ANOMALY_ID,
    ANOMALY_REF,
    ANOMALY_SOURCE,
    AnomalyParams,
    account_profile,
    anomaly_evidence,
    anomaly_params,
    explain_anomaly,
)
from kalasag.scoring.evidence import SCORING_EVIDENCE, explainer, scoring_evidence, scoring_refs
from kalasag.scoring.propagation import (
    COPAYER_ID,
    COPAYER_REF,
    COPAYER_SOURCE,
    CopayerParams,
    copayer_evidence,
    copayer_params,
    explain_copayers,
    PROPAGATION_ID,
    PROPAGATION_REF,
    PROPAGATION_SOURCE,
    PropagationParams,
    customer_evidence,
    explain_propagation,
    payer_edges,
    propagation_params,
)
from kalasag.scoring.combine import IndicatorRef, capacity_k, contributions, explain_row, score_table, weight_for
from kalasag.scoring.feedback import (
    FeedbackError,
    LearnedModel,
    SideModel,
    apply_model,
    labelled_evidence,
    load_model,
    read_dispositions,
    save_model,
    skipped_sides,
    train,
)

__all__ = [
    "ANOMALY_ID", "ANOMALY_REF", "ANOMALY_SOURCE", "AnomalyParams", "account_profile", "anomaly_evidence",
    "anomaly_params", "explain_anomaly", "explainer", "SCORING_EVIDENCE", "scoring_evidence", "scoring_refs",
    "PROPAGATION_ID", "PROPAGATION_REF", "PROPAGATION_SOURCE", "PropagationParams", "customer_evidence",
    "explain_propagation", "payer_edges", "propagation_params",
    "COPAYER_ID", "COPAYER_REF", "COPAYER_SOURCE", "CopayerParams", "copayer_evidence", "copayer_params", "explain_copayers",
    "FeedbackError", "IndicatorRef", "LearnedModel", "SideModel", "apply_model", "capacity_k", "contributions",
    "explain_row", "labelled_evidence", "load_model", "read_dispositions", "save_model", "score_table",
    "skipped_sides", "train", "weight_for",
]
