"""The scoring room: evidence → score (0–1), risk level, alert flag and explanation; learned weights."""

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
    "FeedbackError", "IndicatorRef", "LearnedModel", "SideModel", "apply_model", "capacity_k", "contributions",
    "explain_row", "labelled_evidence", "load_model", "read_dispositions", "save_model", "score_table",
    "skipped_sides", "train", "weight_for",
]
