"""Reference lists bundled with Kalasag: ISO 4217 currencies and ISO 3166-1 alpha-2 countries.

Generated from `pycountry` by tools/build_fx_table.py (Kalasag does not need pycountry at run time).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources


def _read(name: str) -> dict[str, str]:
    with resources.files("kalasag.ingest").joinpath("data", name).open(encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        return {row[0]: row[1] for row in reader}


@lru_cache(maxsize=1)
def currency_codes() -> frozenset[str]:
    """Active ISO 4217 alphabetic codes (upper case)."""
    return frozenset(_read("iso4217.csv"))


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes (upper case)."""
    return frozenset(_read("iso3166.csv"))


def currency_names() -> dict[str, str]:
    return _read("iso4217.csv")


def country_names() -> dict[str, str]:
    return _read("iso3166.csv")
