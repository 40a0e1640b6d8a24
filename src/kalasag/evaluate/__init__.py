"""The evaluate room: score a scan's run directory against ground-truth labels.

Entry points:
- `evaluate(run_dir, labels_path) -> dict`: precision, recall, F1 and average precision per side
  and overall, next to the plain published rule (I-01 AND I-05 AND (I-02 OR I-03 OR I-04)); and,
  when the run has entities.csv, the entity-resolution metrics under "entities".
- `entity_metrics(entities, labels, entity_alerts=, household_alerts=) -> dict`: pairwise link
  precision/recall (person_id), household pair precision and multi-account facilitator
  operations recovered whole in one entity or household alert (docs/entities.md §5).
- `read_entity_run(run_dir)`: entities.csv, entity_alerts.csv, household_alerts.csv as frames.
- `format_evaluation(result) -> str`: a plain-text table for the terminal.
- `to_markdown(result, title) -> str`: the table recorded in docs/detection.md.
- `entities_markdown_row(result, world)` and `ENTITIES_MARKDOWN_HEADER`: the table in docs/entities.md.
- `EvaluationError`: every user error, with a one-line message.
"""

from kalasag.evaluate.core import EvaluationError, evaluate
from kalasag.evaluate.entities import entity_metrics, read_entity_run
from kalasag.evaluate.formatting import (
    ENTITIES_MARKDOWN_HEADER,
    entities_markdown_row,
    format_entities,
    format_evaluation,
    to_markdown,
)

__all__ = ["ENTITIES_MARKDOWN_HEADER", "EvaluationError", "entities_markdown_row", "entity_metrics", "evaluate",
           "format_entities", "format_evaluation", "read_entity_run", "to_markdown"]
