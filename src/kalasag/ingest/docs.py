"""Generated parts of docs/schema.md, rendered from the schema declarations and the bundled data.

    python -m kalasag.ingest.docs            # rewrite the generated blocks of docs/schema.md
    python -m kalasag.ingest.docs --check    # exit 1 when docs/schema.md is out of date

A block sits between `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import resources
from pathlib import Path

from kalasag.ingest.fx import load_fx
from kalasag.ingest.reference import currency_names
from kalasag.ingest.validate import CHECK_ORDER
from kalasag.model.schema import DERIVED_COLUMNS, QUARANTINE_REASONS, TRANSFER_COLUMNS, Column

DEFAULT_DOC = Path(__file__).resolve().parents[3] / "docs" / "schema.md"


def _columns(columns: tuple[Column, ...]) -> str:
    lines = ["| column | required | type | meaning |", "|---|---|---|---|"]
    for c in columns:
        lines.append(f"| `{c.name}` | {'yes' if c.required else 'no'} | {c.dtype} | {c.meaning} |")
    return "\n".join(lines)


def _reasons() -> str:
    lines = ["| order | reason | meaning |", "|---|---|---|"]
    order = ("malformed_row", *CHECK_ORDER)
    for i, code in enumerate(order, start=1):
        lines.append(f"| {i} | `{code}` | {QUARANTINE_REASONS[code]} |")
    return "\n".join(lines)


def _fx() -> str:
    fx = load_fx()
    meta = json.loads(resources.files("kalasag.ingest").joinpath("data", "fx_sources.json").read_text())
    names = currency_names()
    pegs = meta["usd_pegs"]
    fixed = meta["eur_fixed"]
    lines = [
        f"Months {meta['first_month']} to {meta['last_month']} (ECB data up to {meta['ecb_last_day']}); "
        f"{len(fx.currencies)} currencies.",
        "",
        "| currency | name | source |",
        "|---|---|---|",
    ]
    for cur in fx.currencies:
        if cur == "USD":
            src = "identity (1.0)"
        elif cur in pegs:
            src = "US-dollar peg: " + pegs[cur]
        elif cur in fixed:
            src = "ECB USD/EUR and the " + fixed[cur]
        else:
            src = "ECB reference rates, monthly mean of daily USD-per-unit cross rates"
        lines.append(f"| {cur} | {names.get(cur, '')} | {src} |")
    return "\n".join(lines)


def blocks() -> dict[str, str]:
    return {
        "transfer-columns": _columns(TRANSFER_COLUMNS),
        "derived-columns": _columns(DERIVED_COLUMNS),
        "quarantine-reasons": _reasons(),
        "fx-currencies": _fx(),
    }


def render(text: str) -> str:
    """`text` with every generated block replaced by its current content."""
    for name, body in blocks().items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {re.escape(name)} -->\n).*?(\n<!-- END GENERATED: {re.escape(name)} -->)",
            re.S,
        )
        if not pattern.search(text):
            raise ValueError(f"docs/schema.md has no generated block '{name}'")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Regenerate the generated blocks of docs/schema.md")
    ap.add_argument("--doc", type=Path, default=DEFAULT_DOC)
    ap.add_argument("--check", action="store_true", help="only check; exit 1 when out of date")
    args = ap.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print(f"{args.doc} is out of date: run python -m kalasag.ingest.docs", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
