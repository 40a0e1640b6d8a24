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


def _count_share(count: Any, total: Any) -> str:
    if count is None:
        return "–"
    return f"{int(count):,} ({count / total:.3f})" if total else f"{int(count):,}"


def _ops_rows(ent: dict[str, Any], prefix: str, label: str) -> list[tuple[str, str]]:
    n_ops = ent.get(f"{prefix}_multi_account")
    split, unalerted = ent.get(f"{prefix}_missed_split"), ent.get(f"{prefix}_missed_not_alerted")
    return [
        (label, _fmt(n_ops, "int")),
        ("  whole in one entity", _count_share(ent.get(f"{prefix}_in_one_entity"), n_ops)),
        ("  whole in one household", _count_share(ent.get(f"{prefix}_in_one_household"), n_ops)),
        ("  whole in one alert", _count_share(ent.get(f"{prefix}_in_one_alert"), n_ops)),
        ("  missed: split / not alerted", "–" if split is None else f"{split:,} / {unalerted:,}"),
    ]


def format_entities(ent: dict[str, Any]) -> list[str]:
    """Lines of the entity-resolution block (`result["entities"]`), for the terminal."""
    rows = [
        ("account records (labelled)", f"{ent['records']:,} ({ent['records_labelled']:,})"),
        ("entities (of 2+ records)", f"{ent['entities']:,} ({ent['multi_account_entities']:,})"),
        ("link precision", _fmt(ent.get("link_precision"), "pct")
         + (f"  ({ent['link_pairs_correct']:,} of {ent['link_pairs_predicted']:,} linked pairs)"
            if ent.get("link_pairs_predicted") is not None else "")),
        ("link recall", _fmt(ent.get("link_recall"), "pct")
         + (f"  ({ent['link_pairs_correct']:,} of {ent['link_pairs_true']:,} same-person pairs)"
            if ent.get("link_pairs_true") is not None else "")),
        ("households (of 2+ entities)", f"{ent['households_multi']:,}"),
        ("household pair precision", _fmt(ent.get("household_pair_precision"), "pct")),
        ("  pairs of an OSEC and an unrelated account", _fmt(ent.get("household_pairs_osec_with_other"), "int")),
        *_ops_rows(ent, "operations", "multi-account facilitator operations"),
    ]
    if ent.get("paid_operations_multi_account") is not None:
        rows += _ops_rows(ent, "paid_operations", "same, paid accounts only (operations.csv)")
    width = max(len(k) for k, _ in rows)
    return ["entity resolution (entities.csv; truth: person_id, group)"] + [f"{k.ljust(width)}  {v}" for k, v in rows]


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
    if result.get("entities"):
        out += ["", *format_entities(result["entities"])]
    out += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(out)


def _ops_cell(ent: dict[str, Any], prefix: str) -> str:
    n, k = ent.get(f"{prefix}_multi_account"), ent.get(f"{prefix}_in_one_alert")
    if k is None:
        return "–"
    return f"**{k}/{n}**" + (f" = {k / n:.2f}" if n else "")


def entities_markdown_row(result: dict[str, Any], world: str) -> str:
    """One row of the docs/entities.md table (header: ENTITIES_MARKDOWN_HEADER) for `world`."""
    ent = result.get("entities") or {}
    split = ent.get("operations_missed_split")
    cells = [
        world, _fmt(ent.get("records_labelled"), "int"), _fmt(ent.get("link_precision"), "pct"),
        _fmt(ent.get("link_recall"), "pct"), _fmt(ent.get("household_pair_precision"), "pct"),
        _fmt(ent.get("operations_multi_account"), "int"), _fmt(ent.get("operations_in_one_entity"), "int"),
        _fmt(ent.get("operations_in_one_household"), "int"), _ops_cell(ent, "operations"),
        "–" if split is None else f"{split} / {ent['operations_missed_not_alerted']}",
        _ops_cell(ent, "paid_operations"),
    ]
    return "| " + " | ".join(cells) + " |"


ENTITIES_MARKDOWN_HEADER = (
    "| world | records | link precision | link recall | household pair precision | multi-account operations "
    "| in one entity | in one household | **in one alert** | missed: split / not alerted | paid accounts: in one alert |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


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
