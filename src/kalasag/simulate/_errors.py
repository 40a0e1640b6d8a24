"""Realistic bad rows to exercise validation and quarantine (CSV only).

Each bad row is a copy of a good row with exactly ONE defect, so the expected quarantine reason
(the codes of kalasag.model.QUARANTINE_REASONS) is known and counted in world.json.
"""

from __future__ import annotations

import numpy as np

from kalasag.model.schema import COLUMN_NAMES, QUARANTINE_REASONS
from kalasag.simulate._people import hex_ids

ERROR_WEIGHTS: dict[str, float] = {
    "unparseable_timestamp": 3.0,
    "future_timestamp": 1.0,
    "non_numeric_amount": 2.0,
    "non_positive_amount": 2.0,
    "unknown_currency": 1.5,
    "invalid_country_code": 1.5,
    "invalid_channel": 1.0,
    "missing_required_field": 2.0,
    "duplicate_txn_id": 2.0,
    "malformed_row": 1.0,
}
assert set(ERROR_WEIGHTS) <= set(QUARANTINE_REASONS)

BAD_TIMESTAMPS = ("{d} {t}", "{dmy} {hm}", "{y}-13-{dd}T{t}Z", "{y}-11-31T{t}Z", "yesterday", "{d}T25:61:00Z", "{d}T{t}")
BAD_AMOUNTS = ("12,50", "USD 50", "N/A", "50.00.00", "fifty", "1.000,00")
NON_POSITIVE = ("-50.00", "0.00", "0", "-1200", "-0.01")
BAD_CURRENCIES = ("XYZ", "US$", "DOLLAR", "ZZZ", "PESO")
BAD_COUNTRIES = ("USA", "PHL", "U.S.", "Phil", "GER", "AUS")
BAD_CHANNELS = ("wire", "WU", "gcash", "remittance", "cash pickup")


def inject(rng: np.random.Generator, cols: dict, fraction: float) -> tuple[dict, np.ndarray, dict[str, int]]:
    """Return (columns with bad rows inserted, malformed-row mask, count per reason)."""
    n = len(cols["txn_id"])
    k = int(round(fraction * n))
    if k <= 0:
        return cols, np.zeros(n, bool), {}
    kinds = np.array(list(ERROR_WEIGHTS), dtype=object)
    wts = np.array(list(ERROR_WEIGHTS.values()))
    kind = kinds[rng.choice(len(kinds), size=k, p=wts / wts.sum())]
    src = rng.integers(0, n, k)
    pos = rng.integers(0, n, k)
    dup = kind == "duplicate_txn_id"
    pos[dup] = src[dup] + (rng.random(int(dup.sum())) * (n - src[dup])).astype(int)  # after the original
    taken = set(cols["txn_id"].tolist())
    fresh = [x for x in hex_ids(rng, k + 64, 20) if x not in taken][:k]
    bad = {c: cols[c][src].copy() for c in COLUMN_NAMES}
    bad["txn_id"] = np.array(fresh, dtype=object)
    bad["_epoch"] = cols["_epoch"][src].copy()
    bad["_amount"] = cols["_amount"][src].copy()
    for i in range(k):
        kd = kind[i]
        ts = bad["timestamp"][i]
        d, t = ts[:10], ts[11:19]
        if kd == "unparseable_timestamp":
            f = BAD_TIMESTAMPS[rng.integers(0, len(BAD_TIMESTAMPS))]
            bad["timestamp"][i] = f.format(d=d, t=t, y=d[:4], dd=d[8:10], dmy=f"{d[8:10]}/{d[5:7]}/{d[:4]}", hm=t[:5])
        elif kd == "future_timestamp":
            bad["timestamp"][i] = f"{int(d[:4]) + 6}{d[4:]}T{t}Z"
        elif kd == "non_numeric_amount":
            bad["amount"][i] = BAD_AMOUNTS[rng.integers(0, len(BAD_AMOUNTS))]
        elif kd == "non_positive_amount":
            bad["amount"][i] = NON_POSITIVE[rng.integers(0, len(NON_POSITIVE))]
        elif kd == "unknown_currency":
            bad["currency"][i] = BAD_CURRENCIES[rng.integers(0, len(BAD_CURRENCIES))]
        elif kd == "invalid_country_code":
            col = "sender_country" if rng.random() < 0.7 else "receiver_country"
            bad[col][i] = BAD_COUNTRIES[rng.integers(0, len(BAD_COUNTRIES))]
        elif kd == "invalid_channel":
            bad["channel"][i] = BAD_CHANNELS[rng.integers(0, len(BAD_CHANNELS))]
        elif kd == "missing_required_field":
            u = rng.random()
            col = "sender_id" if u < 0.7 else ("receiver_id" if u < 0.85 else "currency")
            bad[col][i] = None
        elif kd == "duplicate_txn_id":
            bad["txn_id"][i] = cols["txn_id"][src[i]]
            if rng.random() < 0.5:   # same id, edited row (a correction re-sent) rather than an exact copy
                bad["reference"][i] = "corrected"
    # merge: bad row j goes right after good row pos[j]
    key_pos = np.concatenate([np.arange(n), pos])
    key_bad = np.concatenate([np.zeros(n, np.int8), np.ones(k, np.int8)])
    order = np.lexsort((key_bad, key_pos))
    out = {c: np.concatenate([cols[c], bad[c]])[order] for c in cols}
    malformed = np.concatenate([np.zeros(n, bool), kind == "malformed_row"])[order]
    counts = {str(x): int((kind == x).sum()) for x in kinds if (kind == x).any()}
    return out, malformed, counts
