"""The watchlist of known subjects (I-23): a small CSV of account ids, names or phone numbers from
earlier cases. Read with the csv module (a watchlist is small), checked line by line, and handed to
the engine as a table: entry (the file's line number), account_id, name, phone."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pandas as pd

WATCHLIST_COLUMNS = ("account_id", "name", "phone")
MIN_PHONE_DIGITS = 7


class WatchlistError(ValueError):
    """The watchlist file is missing or malformed (one-line message naming the line)."""


def read_watchlist(path: str | Path) -> pd.DataFrame:
    """The checked watchlist as pandas: entry (line number), account_id, name, phone (None when empty)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise WatchlistError(f"{path}: watchlist file not found") from exc
    except UnicodeDecodeError as exc:
        raise WatchlistError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise WatchlistError(f"{path}: cannot read watchlist ({exc.strerror})") from exc
    rows = list(csv.reader(text.splitlines()))
    if not rows or not any(c.strip() for c in rows[0]):
        raise WatchlistError(f"{path}: line 1: empty watchlist (expected a header with any of {', '.join(WATCHLIST_COLUMNS)})")
    header = [c.strip().lower() for c in rows[0]]
    known = [c for c in header if c in WATCHLIST_COLUMNS]
    if not known:
        raise WatchlistError(f"{path}: line 1: header has none of {', '.join(WATCHLIST_COLUMNS)} (found: {', '.join(header)})")
    dup = sorted({c for c in known if known.count(c) > 1})
    if dup:
        raise WatchlistError(f"{path}: line 1: column {dup[0]} appears twice")
    idx = {c: header.index(c) for c in known}
    out: list[dict[str, Any]] = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue  # blank line
        if len(row) != len(header):
            raise WatchlistError(f"{path}: line {n}: {len(row)} fields, the header has {len(header)}")
        rec: dict[str, Any] = {"entry": n}
        for c in WATCHLIST_COLUMNS:
            v = row[idx[c]].strip() if c in idx else ""
            rec[c] = v or None
        if not any(rec[c] for c in WATCHLIST_COLUMNS):
            raise WatchlistError(f"{path}: line {n}: no account_id, name or phone")
        if rec["phone"] is not None:
            digits = re.sub(r"[^0-9]", "", rec["phone"])
            if len(digits) < MIN_PHONE_DIGITS or re.search(r"[^0-9+()\-./ ]", rec["phone"]):
                raise WatchlistError(f"{path}: line {n}: phone '{rec['phone']}' is not a phone number (at least {MIN_PHONE_DIGITS} digits)")
        if rec["name"] is not None and not re.search(r"[^\W\d_]{2,}", rec["name"]):
            raise WatchlistError(f"{path}: line {n}: name '{rec['name']}' has no letters")
        out.append(rec)
    if not out:
        raise WatchlistError(f"{path}: no entries after the header")
    df = pd.DataFrame(out, columns=["entry", *WATCHLIST_COLUMNS])
    df["entry"] = df["entry"].astype("int64")
    for c in WATCHLIST_COLUMNS:  # plain str / None (pd.NA confuses Spark's schema inference)
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


def load_watchlist(engine: Any, path: str | Path):
    """The watchlist as an engine table (entry, account_id, name, phone) for `compute_evidence(..., watchlist=)`.
    Missing values are "" in the table (an all-NULL column has no type on DuckDB or Spark); I-23
    reads "" as missing."""
    df = read_watchlist(path)
    for c in WATCHLIST_COLUMNS:
        df[c] = df[c].fillna("").astype(str)
    return engine.from_records(df)
