"""Render an `evaluate()` result: a plain-text table for the terminal, a markdown table for docs."""

from __future__ import annotations

from typing import Any

from kalasag.model import SIDES

_ROWS: tuple[tuple[str, str, str], ...] = (
    # label, key ("rule.x" for the rule's), kind
    ("accounts scored", "n_accounts", "int"),
    ("positives (labelled)", "n_positive", "int"),
    ("  of which not scored", "n_positive_unscored", "int"),
    ("unlabelled (negatives)", "n_unlabelled", "int"),
    ("alerts", "n_alerts", "int"),
    ("true positives", "tp", "int"),
    ("false positives", "fp", "int"),
    ("false negatives", "fn", "int"),
    ("precision", "precision", "pct"),
    ("recall", "recall", "pct"),
    ("F1", "f1", "pct"),
    ("average precision", "average_precision", "pct"),
    ("precision@k (k = positives)", "precision_at_k", "pct"),
    ("operations with a positive", "n_positive_groups", "int"),
    ("  of which alerted", "groups_detected", "int"),
    ("rule: alerts", "rule.n_alerts", "int"),
    ("rule: precision", "rule.precision", "pct"),
    ("rule: recall", "rule.recall", "pct"),
    ("rule: F1", "rule.f1", "pct"),
)


def _get(block: dict[str, Any], key: str) -> Any:
    value: Any = block
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{float(value):.3f}"
    return f"{int(value):,}"


def _columns(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cols = [(side, result["sides"][side]) for side in SIDES if side in result.get("sides", {})]
    if "overall" in result:
        cols.append(("overall", result["overall"]))
    return cols


def format_evaluation(result: dict[str, Any]) -> str:
    """A plain-text table (one column per side and overall) plus the notes, for the terminal."""
    cols = _columns(result)
    header = ["metric", *[name for name, _ in cols]]
    body = [[label, *[_fmt(_get(block, key), kind) for _, block in cols]] for label, key, kind in _ROWS]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body]
    rule = result.get("rule_text")
    if rule:
        out.append(f"rule = the plain published rule {rule}")
    out.append("zero divisions count as 0 (no alert: precision 0; no positive: recall and AP 0)")
    out += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(out)


def to_markdown(result: dict[str, Any], title: str) -> str:
    """A markdown section for docs/detection.md: Kalasag's alerts next to the plain rule, per side."""
    header = (
        "| side | accounts | positives | alerts | precision | recall | F1 | AP "
        "| rule alerts | rule precision | rule recall | rule F1 |"
    )
    sep = "|---|" + "---:|" * 11
    rows = []
    for name, b in _columns(result):
        r = b["rule"]
        cells = [
            name,
            _fmt(b["n_accounts"], "int"),
            _fmt(b["n_positive"], "int"),
            _fmt(b["n_alerts"], "int"),
            _fmt(b["precision"], "pct"),
            _fmt(b["recall"], "pct"),
            _fmt(b["f1"], "pct"),
            _fmt(b["average_precision"], "pct"),
            _fmt(r["n_alerts"], "int"),
            _fmt(r["precision"], "pct"),
            _fmt(r["recall"], "pct"),
            _fmt(r["f1"], "pct"),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    lines = [f"### {title}", "", header, sep, *rows, ""]
    rule = result.get("rule_text", "I-01 AND I-05 AND (I-02 OR I-03 OR I-04)")
    lines.append(
        f"Rule = the plain published-indicator rule {rule}. AP = average precision over the score. "
        "Unit: one account on one side. Zero divisions count as 0."
    )
    lines += [f"Note: {n}." for n in result.get("notes", [])]
    return "\n".join(lines) + "\n"
