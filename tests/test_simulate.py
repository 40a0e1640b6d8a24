"""The synthetic world: schema, determinism, labels, calibration, error injection and regimes.

Worlds are tiny (scale 0.02-0.1) so the file runs in a few seconds.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from kalasag.model import CHANNELS, COLUMN_NAMES, LABEL_COLUMNS, POSITIVE_ROLES, QUARANTINE_REASONS, REQUIRED_COLUMNS
from kalasag.simulate import REGIMES, SimulationError, simulate_world

# USD per unit the simulator uses to generate amounts (kalasag/simulate/_calib.py), restated here
USD = {"USD": 1.0, "CAD": 0.72, "GBP": 1.31, "EUR": 1.12, "AUD": 0.65, "NZD": 0.59, "CHF": 1.18,
       "SEK": 0.102, "NOK": 0.095, "DKK": 0.150, "JPY": 0.0068, "KRW": 0.00072, "HKD": 0.128,
       "SGD": 0.76, "MYR": 0.226, "SAR": 0.2667, "AED": 0.2723, "QAR": 0.2747, "PHP": 0.0175}
# main standard UTC offset per sending country, for a sender-local hour good enough for the tests
TZ = {"US": -5, "CA": -5, "GB": 0, "IE": 0, "AU": 10, "NZ": 12, "DE": 1, "AT": 1, "CH": 1, "NL": 1,
      "FR": 1, "IT": 1, "ES": 1, "SE": 1, "NO": 1, "DK": 1, "JP": 9, "KR": 9, "TW": 8, "HK": 8,
      "SG": 8, "MY": 8, "SA": 3, "AE": 4, "QA": 3, "KW": 3, "PH": 8}
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def read(d):
    t = pd.read_csv(d / "transfers.csv.gz", dtype=str, keep_default_na=False)
    labels = pd.read_csv(d / "labels.csv", dtype=str, keep_default_na=False)
    return t, labels


def enrich(t: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    t = t.copy()
    t["usd"] = t["amount"].astype(float) * t["currency"].map(USD)
    ts = pd.to_datetime(t["timestamp"], utc=True)
    t["month"] = ts.dt.strftime("%Y-%m")
    hour = (ts.dt.hour + t["sender_country"].map(TZ)) % 24
    t["night"] = (hour >= 22) | (hour < 6)
    s = labels[labels.side == "sender"].set_index("account_id")["role"]
    r = labels[labels.side == "receiver"].set_index("account_id")["role"]
    t["srole"] = t["sender_id"].map(s)
    t["rrole"] = t["receiver_id"].map(r)
    return t


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    s = simulate_world(d, seed=7, scale=0.02, progress=False)
    return d, s


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    s = simulate_world(d, seed=11, scale=0.1, progress=False)
    t, labels = read(d)
    return d, s, enrich(t, labels), labels


# ------------------------------------------------------------------------------------ schema
def test_every_canonical_column_is_written_in_order(tiny):
    d, _ = tiny
    with gzip.open(d / "transfers.csv.gz", "rt", encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    assert tuple(header) == COLUMN_NAMES


def test_values_follow_the_schema(tiny):
    d, s = tiny
    t, _ = read(d)
    assert len(t) == s.n_transfers
    assert t["timestamp"].str.match(ISO_Z).all()
    assert (t["amount"].astype(float) > 0).all()
    assert set(t["currency"]) <= set(USD)
    assert t["txn_id"].is_unique
    for col in REQUIRED_COLUMNS:
        assert (t[col] != "").all(), col
    assert set(t["channel"]) - {""} <= set(CHANNELS)
    assert t["sender_country"].str.fullmatch(r"[A-Z]{2}").all()
    assert (t["receiver_country"] == "PH").mean() > 0.95
    ts = pd.to_datetime(t["timestamp"], utc=True)
    assert ts.min() >= pd.Timestamp("2025-10-01", tz="UTC") and ts.max() < pd.Timestamp("2026-10-01", tz="UTC")
    # JPY and KRW have no decimals, other currencies two
    zero = t["currency"].isin(["JPY", "KRW"])
    assert (~t.loc[zero, "amount"].str.contains(r"\.")).all()
    assert t.loc[~zero, "amount"].str.fullmatch(r"\d+\.\d{2}").all()
    # ids are opaque: 16 (accounts) and 20 (transfers) lowercase hex characters
    assert t["sender_id"].str.fullmatch(r"[0-9a-f]{16}").all() and t["receiver_id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert t["txn_id"].str.fullmatch(r"[0-9a-f]{20}").all()


def test_timestamps_are_sorted_and_rows_near_target(tiny):
    d, s = tiny
    t, _ = read(d)
    assert t["timestamp"].is_monotonic_increasing
    assert 0.8 * 6000 <= s.n_transfers <= 1.2 * 6000          # 300,000 x 0.02


# ------------------------------------------------------------------------------- determinism
def _digest(d):
    return {f: hashlib.sha256((d / f).read_bytes()).hexdigest() for f in ("transfers.csv.gz", "labels.csv", "world.json")}


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    d, _ = tiny
    simulate_world(tmp_path / "again", seed=7, scale=0.02, progress=False)
    simulate_world(tmp_path / "other", seed=8, scale=0.02, progress=False)
    assert _digest(tmp_path / "again") == _digest(d)
    other = _digest(tmp_path / "other")
    assert other["transfers.csv.gz"] != _digest(d)["transfers.csv.gz"]
    assert other["labels.csv"] != _digest(d)["labels.csv"]


# ------------------------------------------------------------------------------------ labels
def test_every_account_side_has_exactly_one_label(tiny):
    d, _ = tiny
    t, labels = read(d)
    assert list(labels.columns) == [c.name for c in LABEL_COLUMNS] + ["person_id"]
    seen = set(zip(t["sender_id"], ["sender"] * len(t))) | set(zip(t["receiver_id"], ["receiver"] * len(t)))
    keyed = list(zip(labels["account_id"], labels["side"]))
    assert len(keyed) == len(set(keyed))
    assert set(keyed) == seen


def test_roles_present_and_summary_matches_labels(tiny):
    d, s = tiny
    _, labels = read(d)
    roles = set(labels["role"])
    assert POSITIVE_ROLES <= roles
    assert {"ofw_sender", "ofw_family", "spouse_sender", "romance_sender", "freelancer", "freelance_client",
            "sponsor_donor", "charity", "online_seller", "shop_customer", "tourist_sender"} <= roles
    assert s.roles == labels["role"].value_counts().to_dict()
    assert s.n_accounts == labels["side"].value_counts().to_dict()
    sides = labels.groupby("role")["side"].agg(set)
    assert sides["osec_customer"] == {"sender"} and sides["osec_facilitator"] == {"receiver"}
    doc = json.loads((d / "world.json").read_text())
    assert doc["n_transfers"] == s.n_transfers and doc["regime"] == "baseline"
    assert doc["regime_params"]["customer_night_mean"] == 0.45


def test_person_ids_link_accounts_and_names_are_typed_in_variants(small):
    _, _, t, labels = small
    # persons with more than one account exist (facilitators' rotations, family wallets)
    per_person = labels.groupby("person_id")["account_id"].nunique()
    assert (per_person > 1).sum() > 0
    # some senders' names are typed in 3+ ways over their transfers
    n_variants = t[t["sender_name"] != ""].groupby("sender_id")["sender_name"].nunique()
    assert (n_variants >= 3).sum() > 10
    # Philippine phones appear in several formats
    ph = t.loc[t["receiver_phone"] != "", "receiver_phone"]
    formats = {"0": ph.str.match(r"^09\d{9}$").sum(), "+63 ": ph.str.startswith("+63 ").sum(),
               "63": ph.str.match(r"^639\d{9}$").sum(), "dash": ph.str.match(r"^9\d{2}-\d{3}-\d{4}$").sum()}
    assert all(v > 0 for v in formats.values()), formats


# ------------------------------------------------------------------------------- calibration
def test_ofw_amounts_and_seasonality(small):
    _, _, t, _ = small
    ofw = t[t["srole"] == "ofw_sender"]
    assert 250 <= ofw["usd"].median() <= 350            # research note §2.3
    per_month = t.groupby("month").size()
    assert per_month["2025-12"] > 1.1 * per_month.mean()  # December peak (BSP: ~1.18-1.2x)
    assert per_month["2026-06"] > per_month["2026-05"]    # school-opening bump


def test_positive_shares_within_bounds(small):
    _, s, _, labels = small
    snd = labels[labels.side == "sender"]
    rcv = labels[labels.side == "receiver"]
    cust = (snd["role"] == "osec_customer").mean()
    fac = (rcv["role"] == "osec_facilitator").mean()
    assert 0.002 <= cust <= 0.005, cust
    assert 0.001 <= fac <= 0.003, fac
    assert labels["role"].isin(POSITIVE_ROLES).mean() < 0.02   # legitimate accounts dominate


def test_customers_look_like_the_published_cases_and_have_lookalikes(small):
    _, _, t, _ = small
    cust = t[t["srole"] == "osec_customer"]
    # payments to facilitators: small (USD 15-150 typical)
    to_fac = cust[cust["rrole"] == "osec_facilitator"]
    assert 15 <= to_fac["usd"].median() <= 150
    assert to_fac["night"].mean() > 0.25
    # facilitators receive from several unrelated foreign senders, but so do charities and sellers
    fan_in = t.groupby(["rrole", "receiver_id"])["sender_id"].nunique().groupby("rrole").median()
    assert fan_in["osec_facilitator"] >= 2
    assert fan_in["charity"] > fan_in["osec_facilitator"] and fan_in["online_seller"] > 2
    # many more legitimate senders than customers send small amounts at night, repeatedly
    small_night = t[t["night"] & (t["usd"] < 100)].groupby(["srole", "sender_id"]).size()
    repeated = (small_night >= 3).groupby("srole").sum()
    legit = repeated.drop(labels=["osec_customer"]).sum()
    assert repeated["osec_customer"] >= 1 and legit >= 3 * repeated["osec_customer"], repeated.to_dict()


def test_no_value_is_used_only_by_positives(small):
    _, _, t, _ = small
    cust = t["srole"] == "osec_customer"
    fac = t["rrole"] == "osec_facilitator"
    legit = ~cust & ~fac
    for col in ("channel", "reference", "currency", "sender_country"):
        only = set(t.loc[cust | fac, col]) - set(t.loc[legit, col])
        assert not only, (col, only)


# ---------------------------------------------------------------------------- error injection
def _classify(rows: list[list[str]]) -> dict[str, int]:
    """Hand-written reason per row, first that applies, in the order of QUARANTINE_REASONS."""
    counts: dict[str, int] = {}
    seen: set[str] = set()
    idx = {c: i for i, c in enumerate(COLUMN_NAMES)}
    for row in rows:
        reason = None
        if len(row) != len(COLUMN_NAMES):
            reason = "malformed_row"
        elif any(row[idx[c]] == "" for c in REQUIRED_COLUMNS):
            reason = "missing_required_field"
        else:
            ts = row[idx["timestamp"]]
            parsed = pd.to_datetime(ts, format="%Y-%m-%dT%H:%M:%SZ", errors="coerce") if ISO_Z.match(ts) else pd.NaT
            amount = row[idx["amount"]]
            try:
                value = float(amount)
            except ValueError:
                value = None
            if pd.isna(parsed):
                reason = "unparseable_timestamp"
            elif parsed.year >= 2030:
                reason = "future_timestamp"
            elif value is None:
                reason = "non_numeric_amount"
            elif value <= 0:
                reason = "non_positive_amount"
            elif row[idx["currency"]] not in USD:
                reason = "unknown_currency"
            elif not all(re.fullmatch(r"[A-Z]{2}", row[idx[c]]) for c in ("sender_country", "receiver_country")):
                reason = "invalid_country_code"
            elif row[idx["channel"]] not in set(CHANNELS) | {""}:
                reason = "invalid_channel"
            elif row[idx["txn_id"]] in seen:
                reason = "duplicate_txn_id"
            if reason is None:
                seen.add(row[idx["txn_id"]])
        if reason:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def test_injected_errors_are_counted_per_reason(tmp_path):
    s = simulate_world(tmp_path, seed=5, scale=0.02, inject_errors=0.02, progress=False)
    doc = json.loads((tmp_path / "world.json").read_text())
    assert doc["injected_errors"] == s.injected_errors == round(0.02 * s.n_transfers)
    assert sum(doc["injected_errors_by_reason"].values()) == s.injected_errors
    assert set(doc["injected_errors_by_reason"]) <= set(QUARANTINE_REASONS)
    with gzip.open(tmp_path / "transfers.csv.gz", "rt", encoding="utf-8") as f:
        rows = list(csv.reader(io.StringIO(f.read())))[1:]
    assert len(rows) == s.n_transfers + s.injected_errors
    assert _classify(rows) == doc["injected_errors_by_reason"]
    assert len(doc["injected_errors_by_reason"]) >= 8   # most kinds of defect appear


def test_bad_arguments_are_one_line_errors(tmp_path):
    cases = [
        (dict(scale=-1), "--scale"), (dict(scale=0), "--scale"), (dict(fmt="xlsx"), "--format"),
        (dict(regime="nope"), "regime"), (dict(regime={"no_such_knob": 1}), "no_such_knob"),
        (dict(fmt="parquet", inject_errors=0.01), "CSV"), (dict(inject_errors=2.0), "--inject-errors"),
        (dict(start=date(2025, 10, 5)), "first day"), (dict(months=0), "--months"), (dict(seed=-3), "--seed"),
    ]
    for kwargs, needle in cases:
        with pytest.raises(SimulationError, match=re.escape(needle)) as e:
            simulate_world(tmp_path / "x", progress=False, **kwargs)
        assert "\n" not in str(e.value)


def test_parts_write_a_partitioned_parquet_world(tmp_path):
    s = simulate_world(tmp_path, seed=3, scale=0.04, fmt="parquet", parts=2, progress=False)
    files = sorted((tmp_path / "transfers").glob("*.parquet"))
    assert [f.name for f in files] == ["part-00000.parquet", "part-00001.parquet"]
    df = pd.concat([pd.read_parquet(f) for f in files])
    assert len(df) == s.n_transfers and df["txn_id"].is_unique
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert set(zip(labels["account_id"], labels["side"])) == (
        set(zip(df["sender_id"], ["sender"] * len(df))) | set(zip(df["receiver_id"], ["receiver"] * len(df))))
    assert s.osec["operations"] >= 4                       # each part has its own operations
    with pytest.raises(SimulationError, match="parquet"):
        simulate_world(tmp_path / "x", parts=2, progress=False)


def test_scale_is_limited_per_part_so_a_100m_world_can_be_written_in_parts(tmp_path):
    # one world is built in memory up to scale 100; a partitioned world may be 100 per part
    with pytest.raises(SimulationError, match=r"--scale must be a number in \(0, 100\], got 101"):
        simulate_world(tmp_path / "a", scale=101, fmt="parquet", progress=False)
    with pytest.raises(SimulationError, match=r"\(0, 200\] \(100 per part, 2 parts\), got 201"):
        simulate_world(tmp_path / "b", scale=201, fmt="parquet", parts=2, progress=False)
    with pytest.raises(SimulationError, match="--parts must be a positive integer"):
        simulate_world(tmp_path / "c", scale=1, fmt="parquet", parts=0, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()   # checked before anything is written


def test_parquet_holds_the_same_world_typed(tiny, tmp_path):
    d, s = tiny
    p = simulate_world(tmp_path, seed=7, scale=0.02, fmt="parquet", progress=False)
    df = pd.read_parquet(tmp_path / "transfers.parquet")
    assert tuple(df.columns) == COLUMN_NAMES
    assert str(df["timestamp"].dtype).startswith("datetime64") and "UTC" in str(df["timestamp"].dtype)
    assert df["amount"].dtype == np.float64
    t, _ = read(d)
    assert p.n_transfers == s.n_transfers == len(df)
    assert list(df["txn_id"]) == list(t["txn_id"])
    assert np.allclose(df["amount"].to_numpy(), t["amount"].astype(float).to_numpy())
    assert (tmp_path / "labels.csv").read_bytes() == (d / "labels.csv").read_bytes()


# ------------------------------------------------------------------------------------ regimes
@pytest.fixture(scope="module")
def regimes(tmp_path_factory):
    out = {}
    for name in REGIMES:
        d = tmp_path_factory.mktemp(name)
        s = simulate_world(d, seed=21, scale=0.1, regime=name, progress=False)
        t, labels = read(d)
        out[name] = (s, enrich(t, labels), labels)
    return out


def _to_facilitators(t):
    return t[(t["srole"] == "osec_customer") & (t["rrole"] == "osec_facilitator")]


def test_regimes_change_what_they_say(regimes):
    base = _to_facilitators(regimes["baseline"][1])
    day = _to_facilitators(regimes["daytime_payers"][1])
    # (the test's sender-local hour ignores DST and US/CA/AU zones: it reads some evenings as night)
    assert base["night"].mean() > 0.3 and day["night"].mean() < 0.5 * base["night"].mean()
    high = _to_facilitators(regimes["high_amounts"][1])
    assert high["usd"].median() > 2 * base["usd"].median()
    accounts_per_op = {}
    for name in ("baseline", "many_accounts"):
        lab = regimes[name][2]
        fac = lab[lab["role"] == "osec_facilitator"]
        accounts_per_op[name] = fac.groupby("group")["account_id"].nunique().mean()
    assert accounts_per_op["many_accounts"] > max(4, accounts_per_op["baseline"])
    roles_base, roles_more = regimes["baseline"][0].roles, regimes["more_lookalikes"][0].roles
    assert roles_more["freelancer"] > 2 * roles_base["freelancer"]
    assert roles_more["romance_sender"] > 2 * roles_base["romance_sender"]
    assert roles_more["sponsor_donor"] < 0.5 * roles_base["sponsor_donor"]
    def per_customer(t):
        c = t[t["srole"] == "osec_customer"]
        return c.groupby("sender_id").size().median(), c.groupby("sender_id")["receiver_id"].nunique().mean()

    (n_base, k_base), (n_calm, k_calm) = per_customer(regimes["baseline"][1]), per_customer(regimes["calm_customers"][1])
    assert n_calm < n_base and k_calm < k_base
    noisy, plain = regimes["noisy_data"][1], regimes["baseline"][1]
    assert (noisy["receiver_region"] == "").mean() > 0.2 > (plain["receiver_region"] == "").mean()
    for name, (s, _, _) in regimes.items():
        assert json.loads((s.files["world"]).read_text())["regime"] == name


def test_a_regime_can_be_a_dict_of_overrides(tmp_path):
    s = simulate_world(tmp_path, seed=1, scale=0.02, regime={"regime": "high_amounts", "n_romance_senders": 2000},
                       progress=False)
    doc = json.loads((tmp_path / "world.json").read_text())
    assert doc["regime"] == "custom"
    assert doc["regime_params"]["customer_amount_factor"] == 2.5
    assert s.roles["romance_sender"] == 40                   # 2000 x 0.02, all of them send
