"""The scoring room: evidence → score (0–1), risk level, alert flag and explanation."""

from kalasag.scoring.combine import IndicatorRef, contributions, explain_row, score_table, weight_for

__all__ = ["IndicatorRef", "contributions", "explain_row", "score_table", "weight_for"]
