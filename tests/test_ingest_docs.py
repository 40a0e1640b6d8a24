"""docs/schema.md stays in sync with the schema declarations and the bundled data."""

from __future__ import annotations

from pathlib import Path

from kalasag.ingest.docs import blocks, render
from kalasag.model.schema import DERIVED_COLUMNS, QUARANTINE_REASONS, TRANSFER_COLUMNS

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def test_generated_blocks_are_current():
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "run: python -m kalasag.ingest.docs"


def test_doc_lists_every_column_and_reason():
    text = DOC.read_text(encoding="utf-8")
    for column in (*TRANSFER_COLUMNS, *DERIVED_COLUMNS):
        assert f"| `{column.name}` | {'yes' if column.required else 'no'} |" in text, column.name
    for reason in QUARANTINE_REASONS:
        assert f"| `{reason}` |" in text, reason


def test_reason_table_follows_the_check_order():
    rows = [line for line in blocks()["quarantine-reasons"].splitlines()[2:]]
    codes = [row.split("`")[1] for row in rows]
    assert codes == list(QUARANTINE_REASONS)


def test_fx_block_lists_the_sending_currencies():
    fx_block = blocks()["fx-currencies"]
    for cur in ("USD", "SGD", "SAR", "JPY", "GBP", "AED", "CAD", "QAR", "KRW", "HKD", "AUD", "EUR"):
        assert f"| {cur} |" in fx_block
    assert "| TWD |" not in fx_block
