"""One record per (account, side): the fields entity resolution compares, as Ibis expressions.

Names vary per transfer; an account's record carries its most frequent normalized name (ties:
alphabetical), its most frequent E.164 phone, region and country. Only the distinct
(phone, country) pairs go to Python (to `phonenumbers`); everything else runs in the engine.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from kalasag.engine import Engine
from kalasag.indicators import names as N
from kalasag.model import SIDES
from kalasag.model.config import EntitiesConfig

from kalasag.entities.phones import PhoneParser, phone_frame

# distinct (phone, country) pairs brought to Python at a time, so the driver's lists stay bounded
# (10M simulated transfers have about 1.6 million pairs; 100M, ten times as many)
PHONE_BATCH = 1_000_000

RECORD_COLUMNS = (
    "unique_id", "account_id", "side", "name_norm", "name_sig", "given_tokens", "given_initial",
    "surname", "surname_core", "phone_e164", "phone_shared_line", "region", "country", "n_transfers",
    "name_block",
)


def typed_records(df: pd.DataFrame, floats: tuple[str, ...] = ()) -> pa.Table:
    """A small frame as an Arrow table with explicit types (string, or float64 for `floats`):
    empty or all-missing columns keep their type, and every engine (DuckDB, Spark) reads it."""
    schema = pa.schema([(c, pa.float64() if c in floats else pa.string()) for c in df.columns])
    cols = {c: df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns}
    return pa.Table.from_pydict(cols, schema=schema)


def _rows(transfers: ir.Table) -> ir.Table:
    parts = []
    for side in SIDES:
        t = transfers
        parts.append(
            t.select(
                account_id=t[f"{side}_id"].cast("string"),
                side=ibis.literal(side),
                name_raw=t[f"{side}_name"].cast("string"),
                phone_raw=t[f"{side}_phone"].cast("string"),
                country=t[f"{side}_country"].cast("string"),
                region_raw=(t.receiver_region.cast("string") if side == "receiver" else ibis.null("string")),
            )
        )
    return ibis.union(*parts)


def _mode(rows: ir.Table, col: str, out: str) -> ir.Table:
    """The most frequent value of `col` per account record (ties: the smallest value). `rows` carry
    `_w`, the number of transfers each row stands for."""
    keys = ["account_id", "side"]
    g = rows.filter(rows[col].notnull()).group_by([*keys, col]).aggregate(_k=ibis._["_w"].sum())
    g = g.mutate(_rn=ibis.row_number().over(group_by=keys, order_by=[ibis.desc("_k"), g[col]]))
    return g.filter(g._rn == 0).select(*keys, **{out: g[col]})


def phone_lookup(engine: Engine, pairs: ir.Table, config: EntitiesConfig, batch: int | None = None) -> ir.Table:
    """Engine table (phone_raw, country, phone_e164) of the distinct pairs in `pairs`, parsed in
    Python `batch` pairs at a time (default PHONE_BATCH): the batches are the pairs' hash classes,
    so the driver holds one batch, never the whole list."""
    pairs = engine.materialize(pairs)
    n = engine.count(pairs)
    k = max(1, -(-n // (batch or PHONE_BATCH)))
    h = pairs.phone_raw.hash()
    cls = ((h % k) + k) % k  # non-negative on every engine (Spark's hash is a signed int)
    parts = []
    with PhoneParser(tuple(config.phone_strict_regions)) as parser:
        for i in range(k):
            frame = engine.fetch(pairs if k == 1 else pairs.filter(cls == i))
            lookup = phone_frame(frame, config.default_phone_region, parser=parser)
            parts.append(engine.from_records(typed_records(lookup[["phone_raw", "country", "phone_e164"]])))
    if k == 1:
        engine.drop(pairs)
        return parts[0]
    out = engine.materialize(ibis.union(*parts))
    engine.drop(*parts, pairs)
    return out


def normalize_region(region: ir.StringValue, aliases: dict[str, str]) -> ir.StringValue:
    r = region.lower().re_replace(r"\s+", " ").strip().nullif("")
    return r.substitute(aliases, else_=r) if aliases else r


def account_records(engine: Engine, transfers: ir.Table, config: EntitiesConfig) -> ir.Table:
    """Materialized table of RECORD_COLUMNS, one row per (account_id, side)."""
    # one row per distinct (account, side, name, phone, country, region) with the number of transfers
    # it stands for (`_w`): an account repeats the same fields on most of its transfers, so the
    # passes below read a few rows per account instead of two per transfer (same modes, same counts)
    raw = _rows(transfers)
    rows = engine.materialize(raw.group_by(list(raw.columns)).aggregate(_w=ibis._.count()))
    accounts = rows.group_by(["account_id", "side"]).aggregate(n_transfers=rows._w.sum().cast("int64"))

    # names: distinct raw → normalized (names.py), then the account's most frequent form
    parts = N.name_parts(rows, "name_raw", "n", engine)
    named = rows.join(parts, "name_raw", how="left").select("account_id", "side", "n_norm", "_w")
    name_mode = _mode(named, "n_norm", "name_norm")

    # phones: distinct (raw, country) → E.164 in Python, joined back
    lk = phone_lookup(engine, rows.filter(rows.phone_raw.notnull()).select("phone_raw", "country").distinct(), config)
    phoned = rows.join(lk, ["phone_raw", "country"], how="left").select("account_id", "side", "phone_e164", "_w")
    phone_mode = _mode(phoned, "phone_e164", "phone_e164")

    reg = rows.mutate(region=normalize_region(rows.region_raw, config.region_aliases))
    region_mode = _mode(reg, "region", "region")
    country_mode = _mode(rows, "country", "country")

    r = accounts
    for m in (name_mode, phone_mode, region_mode, country_mode):
        r = r.left_join(m, ["account_id", "side"]).drop("account_id_right", "side_right")
    r = engine.materialize(r)

    # a phone on too many account records is a shared line (agent, shop): it links nobody
    per_phone = r.filter(r.phone_e164.notnull()).group_by("phone_e164").aggregate(_np=ibis._.count())
    r = r.left_join(per_phone, "phone_e164").drop("phone_e164_right")
    shared = (r._np > config.max_accounts_per_phone).fill_null(False)
    sur = N.surname(r.name_norm)
    out = r.select(
        unique_id=r.side + ":" + r.account_id,
        account_id=r.account_id,
        side=r.side,
        name_norm=r.name_norm,
        name_sig=N.name_signature(r.name_norm),
        given_tokens=N.given_tokens(r.name_norm),
        given_initial=N.given_initial(r.name_norm),
        surname=sur,
        surname_core=N.surname_core(sur),
        phone_e164=ibis.ifelse(shared, ibis.null("string"), r.phone_e164),
        phone_shared_line=shared,
        region=r.region,
        country=r.country,
        n_transfers=r.n_transfers,
    )
    return engine.materialize(with_name_block(out, config.max_name_block))


def with_name_block(records: ir.Table, max_block: int) -> ir.Table:
    """`records` with `name_block`, the key Splink's name blocking rule compares: the name words and
    the country; for a block of more than `max_block` records, the name words, the country and the
    region; NULL (no name block) where that is still too large or the region is unknown (0 = no cap).

    A block of n records costs n(n − 1)/2 candidate pairs, so the pairs of the plain rule grow with
    the square of the number of accounts that share a common name: 0.7 million at 1M transfers,
    ~270 million at 20M, billions at 100M (docs/benchmarks.md). In a block that large the name
    alone is common, and its pairs are compared through their phone (their own blocking rule) or,
    for receivers, within their region."""
    key = records.name_sig + "|" + records.country
    if not max_block:
        return records.mutate(name_block=key)
    refined = key + "|" + records.region
    n_key = records.filter(key.notnull()).group_by(_nb=key).aggregate(_nk=ibis._.count())
    n_ref = records.filter(refined.notnull()).group_by(_nr=refined).aggregate(_nr_n=ibis._.count())
    t = records.mutate(_nb=key, _nr=refined)
    t = t.left_join(n_key, "_nb").drop("_nb_right").left_join(n_ref, "_nr").drop("_nr_right")
    block = ibis.cases((t._nk <= max_block, t._nb), (t._nr_n <= max_block, t._nr), else_=ibis.null("string"))
    return t.select(*records.columns, name_block=block)
