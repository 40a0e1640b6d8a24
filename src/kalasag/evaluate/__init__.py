"""The evaluate room: score a scan's run directory against ground-truth labels.

Entry points:
- `evaluate(run_dir, labels_path) -> dict`: precision, recall, F1 and average precision per side
  and overall, next to the plain published rule (I-01 AND I-05 AND (I-02 OR I-03 OR I-04)).
- `format_evaluation(result) -> str`: a plain-text table for the terminal.
- `to_markdown(result, title) -> str`: the table recorded in docs/detection.md.
- `EvaluationError`: every user error, with a one-line message.
"""

from kalasag.evaluate.core import EvaluationError, evaluate
from kalasag.evaluate.formatting import format_evaluation, to_markdown

__all__ = ["EvaluationError", "evaluate", "format_evaluation", "to_markdown"]
