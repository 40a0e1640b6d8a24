"""Turn the world's event chunks into the canonical transfer table, labels, and files."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

from kalasag.model.schema import COLUMN_NAMES
from kalasag.simulate import _calib as C
from kalasag.simulate._people import N_VARIANTS, hex_ids, name_variants, phone_styles
from kalasag.simulate._world import MIX_NAMES, MIXES, World

# style of a person's usual typing of their name (index into the variants of _people.name_variants)
PRIMARY_STYLE_P = np.array([0.55, 0.15, 0.15, 0.0, 0.1, 0.05])


def assemble(w: World, tick=lambda: None) -> tuple[dict, pd.DataFrame, dict]:
    """Return (columns, labels, stats). columns: the canonical columns in file order (object arrays of
    str/None) plus `_epoch` (int64 seconds UTC) and `_amount` (float, in the sending currency)."""
    rng = w.rng
    P = w.people.finish()
    for a, b in w.phone_links:
        P["phone"][np.asarray(a)] = P["phone"][np.asarray(b)]
    acc_person = np.concatenate(w.acc_person).astype(np.int64)
    acc_role = np.concatenate(w.acc_role)
    acc_group = np.concatenate(w.acc_group).astype(np.int64)
    acc_kind = np.concatenate(w.acc_kind)
    acc_region = np.concatenate(w.acc_region)
    ev = {k: np.concatenate([c[k] for c in w.chunks]) for k in w.chunks[0]}
    if w.switches:
        to = np.full(w.n_acc, -1, np.int64)
        when = np.full(w.n_acc, np.inf)
        for a, b, d in w.switches:
            to[a], when[a] = b, d
        moved = (to[ev["s"]] >= 0) & (ev["day"] >= when[ev["s"]])
        ev["s"] = np.where(moved, to[ev["s"]], ev["s"])
    tick()

    # ---- local sender time -> UTC
    sp = acc_person[ev["s"]]
    day = np.clip(ev["day"], 0, w.ndays - 1)
    mi = np.clip(np.searchsorted(w.month_start, day, side="right") - 1, 0, w.months - 1)
    cal = w.month_num[mi]
    dst = P["dst"][sp]
    summer_n = (cal >= 4) & (cal <= 10)
    shift = np.where((dst == "N") & summer_n, 1.0, 0.0) + np.where((dst == "S") & ((cal >= 10) | (cal <= 3)), 1.0, 0.0)
    offset = P["tz"][sp].astype(float) + shift
    utc = ev["day"] * 86400 + ev["sec"] - np.rint(offset * 3600).astype(np.int64)
    keep = (utc >= 0) & (utc < w.ndays * 86400) & (ev["day"] >= 0)
    ev = {k: v[keep] for k, v in ev.items()}
    utc = utc[keep]
    order = np.lexsort((rng.random(len(utc)), utc))
    ev = {k: v[order] for k, v in ev.items()}
    utc = utc[order]
    epoch = w.start_epoch + utc
    n = len(epoch)
    s, r = ev["s"], ev["r"]
    sp, rp = acc_person[s], acc_person[r]
    tick()

    # ---- ids
    acc_ids = hex_ids(rng, w.n_acc, 16)
    person_ids = np.array(["p" + x for x in hex_ids(rng, w.people.n, 10)], dtype=object)
    group_ids = np.array(["g" + x for x in hex_ids(rng, max(w.n_groups, 1), 10)], dtype=object)
    txn_ids = hex_ids(rng, n, 20)

    # ---- amounts in the sending currency
    cur_p = np.array([C.COUNTRY.get(c, {"cur": "USD"})["cur"] for c in P["country"]], dtype=object)
    cur = cur_p[sp]
    rate = np.array([C.USD_PER_UNIT[c] for c in C.USD_PER_UNIT])
    ci = pd.Index(list(C.USD_PER_UNIT)).get_indexer(cur)
    local = ev["usd"] / rate[ci]
    step = np.array([C.ROUND_STEP[c] for c in C.USD_PER_UNIT], float)[ci]
    rounded = np.maximum(np.round(local / step), 1) * step
    zero_dec = np.isin(cur, list(C.ZERO_DECIMAL))
    local = np.where(ev["round"], rounded, np.where(zero_dec, np.round(local), np.round(local, 2)))
    local = np.maximum(local, 0.01)
    amount_str = np.array([f"{x:.0f}" if z else f"{x:.2f}" for x, z in zip(local.tolist(), zero_dec.tolist())], dtype=object)
    tick()

    # ---- names typed per transfer
    V = name_variants(P)
    var_person = rng.random(w.people.n) < w.params["name_variant_person_p"]
    primary = rng.choice(N_VARIANTS, size=w.people.n, p=PRIMARY_STYLE_P)

    def names(persons):
        st = primary[persons]
        flip = var_person[persons] & (rng.random(len(persons)) < 0.45)
        st = np.where(flip, rng.integers(0, N_VARIANTS, len(persons)), st)
        return V[persons, st]

    sender_name, receiver_name = names(sp), names(rp)
    tick()

    # ---- phones
    PS = phone_styles(P["phone"], P["country"])
    acc_pstyle = rng.integers(0, 4, w.n_acc)
    acc_pvar = rng.random(w.n_acc) < 0.15

    def phones(accs, persons):
        st = np.where(acc_pvar[accs], rng.integers(0, 4, len(accs)), acc_pstyle[accs])
        return PS[persons, st]

    sender_phone, receiver_phone = phones(s, sp), phones(r, rp)

    # ---- channel: the receiving account's kind most of the time, else the sender population's mix
    chan = np.where(ev["rk"] & (acc_kind[r] != ""), acc_kind[r], None).astype(object)
    for k, name in enumerate(MIX_NAMES):
        m = (chan == None) & (ev["mix"] == k)  # noqa: E711
        if m.any():
            mix = MIXES[name]
            keys = np.array(list(mix), dtype=object)
            pr = np.array(list(mix.values()))
            chan[m] = keys[rng.choice(len(keys), size=int(m.sum()), p=pr / pr.sum())]

    ts = np.char.add(np.datetime_as_string(epoch.astype("datetime64[s]"), unit="s"), "Z").astype(object)
    cols = {
        "txn_id": txn_ids,
        "timestamp": ts,
        "amount": amount_str,
        "currency": cur,
        "channel": chan,
        "sender_id": acc_ids[s],
        "receiver_id": acc_ids[r],
        "sender_name": sender_name,
        "receiver_name": receiver_name,
        "sender_country": P["country"][sp],
        "receiver_country": P["country"][rp],
        "receiver_region": acc_region[r].copy(),
        "sender_phone": sender_phone,
        "receiver_phone": receiver_phone,
        "reference": ev["ref"].copy(),
    }
    for col, p_miss in w.params["missing"].items():
        cols[col] = np.where(rng.random(n) < p_miss, None, cols[col]).astype(object)
    for col in ("receiver_region", "reference"):
        v = cols[col]
        v[v == ""] = None
    assert tuple(cols) == COLUMN_NAMES
    cols["_epoch"] = epoch
    cols["_amount"] = local
    tick()

    # ---- labels: one row per (account, side) that appears
    rows = []
    for side, accs in (("sender", s), ("receiver", r)):
        u = np.unique(accs)
        rows.append(pd.DataFrame({
            "account_id": acc_ids[u], "side": side, "role": acc_role[u],
            "group": group_ids[acc_group[u]], "person_id": person_ids[acc_person[u]],
        }))
    labels = pd.concat(rows, ignore_index=True).sort_values(["side", "account_id"], kind="stable").reset_index(drop=True)
    stats = {"n_persons": int(w.people.n), "operations": _operations(acc_ids, acc_role, acc_group, acc_person,
                                                                      group_ids, person_ids, s, r, ev["usd"])}
    return cols, labels, stats


def _operations(acc_ids, acc_role, acc_group, acc_person, group_ids, person_ids, s, r, usd) -> pd.DataFrame:
    """Ground truth of the OSEC operations (operations.csv): one row per facilitator account (receiver
    side) and customer account (sender side) that appears, with the number and USD value of the
    payments it received from / sent to OSEC counterparts in the transfers. Draws no random number."""
    osec = (acc_role[s] == "osec_customer") & (acc_role[r] == "osec_facilitator")
    n_acc = len(acc_ids)
    rows = []
    for side, accs, role in (("receiver", r, "osec_facilitator"), ("sender", s, "osec_customer")):
        n = np.bincount(accs[osec], minlength=n_acc)
        v = np.bincount(accs[osec], weights=usd[osec], minlength=n_acc)
        u = np.unique(accs)
        u = u[acc_role[u] == role]
        rows.append(pd.DataFrame({
            "group": group_ids[acc_group[u]], "account_id": acc_ids[u], "side": side, "role": role,
            "person_id": person_ids[acc_person[u]], "osec_payments": n[u].astype(np.int64), "osec_usd": np.round(v[u], 2),
        }))
    return pd.concat(rows, ignore_index=True).sort_values(["group", "side", "account_id"], kind="stable").reset_index(drop=True)


# ============================================================================== writers
def write_csv_gz(path: Path, cols: dict, malformed: np.ndarray | None = None) -> None:
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(COLUMN_NAMES)
    data = [cols[c] for c in COLUMN_NAMES]
    if malformed is None or not malformed.any():
        wr.writerows(zip(*data))
    else:
        bad = set(np.flatnonzero(malformed).tolist())
        ref_i = COLUMN_NAMES.index("reference")
        for i, row in enumerate(zip(*data)):
            if i in bad:
                # a free-text field with an unquoted comma: one field too many
                row = list(row)
                text = row[ref_i] or "school"
                row[ref_i] = "\x01"
                line = io.StringIO()
                csv.writer(line, lineterminator="\n").writerow(row)
                buf.write(line.getvalue().replace("\x01", f"{text}, food"))
            else:
                wr.writerow(row)
    raw = buf.getvalue().encode("utf-8")
    path.write_bytes(gzip.compress(raw, compresslevel=6, mtime=0))


def write_parquet(path: Path, cols: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, fields = [], []
    for c in COLUMN_NAMES:
        if c == "timestamp":
            arr = pa.array(cols["_epoch"] * 1_000_000, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        elif c == "amount":
            arr = pa.array(cols["_amount"], type=pa.float64())
        else:
            arr = pa.array(cols[c], type=pa.string())
        arrays.append(arr)
        fields.append(pa.field(c, arr.type))
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), path, compression="zstd")
