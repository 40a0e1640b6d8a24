"""`resolve`: account records → entities (same person) → households (relatives, operations)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from rapidfuzz.distance import JaroWinkler

from kalasag.engine import Engine
from kalasag.model import KalasagConfig
from kalasag.model.config import EntitiesConfig

from kalasag.entities.linkage import NAME_LEVELS, name_gamma, run_splink
from kalasag.entities.records import account_records, typed_records

ENTITY_COLUMNS = (
    "account_id", "side", "entity_id", "match_probability", "link_evidence", "household_id", "household_evidence",
)
HOUSEHOLD_COLUMNS = ("household_id", "entity_ids", "reason")


@dataclass
class EntityResult:
    entities: ir.Table                 # ENTITY_COLUMNS, one row per (account_id, side)
    households: pd.DataFrame           # HOUSEHOLD_COLUMNS, households of two entities or more
    records: ir.Table                  # the compared fields per account record
    links: pd.DataFrame                # account-record links at or above the match threshold
    model: dict[str, Any] = field(default_factory=dict)     # the trained Splink model (JSON-able)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)         # e.g. training skipped on a tiny file


def _fmt_name(a: Any, b: Any) -> str:
    if not isinstance(a, str) or not isinstance(b, str):
        return "name missing on one side"
    if a == b:
        return f"same name '{a}'"
    return f"name '{a}' ~ '{b}' (jaro-winkler {JaroWinkler.similarity(a, b):.2f})"


def describe_link(row: dict[str, Any]) -> str:
    """One line: the fields that drove a link between two account records."""
    if row["account_id_l"] == row["account_id_r"]:
        return "same account id as sender and receiver"
    parts = []
    if row.get("gamma_phone_e164") == 1:
        parts.append(f"same phone {row['phone_e164_l']}")
    g = int(row["gamma_name"]) if pd.notna(row.get("gamma_name")) else -1
    labels = dict(NAME_LEVELS)
    level = next((lab for lab, _ in NAME_LEVELS if name_gamma(lab) == g), None)
    name = _fmt_name(row.get("name_norm_l"), row.get("name_norm_r"))
    if level and level != "exact":
        name += f" [{labels[level]}]"
    parts.append(name)
    if row.get("gamma_region") == 1:
        parts.append(f"same region {row['region_l']}")
    if row.get("gamma_country") == 1:
        parts.append(f"same country {row['country_l']}")
    how = "deterministic (same phone, compatible names)" if row.get("deterministic") else (
        f"Splink probability {row['splink_probability']:.3f}"
    )
    return "; ".join(parts) + f" — {how}"


def _entity_table(engine: Engine, records: ir.Table, clusters: ir.Table, links: pd.DataFrame) -> ir.Table:
    """Per account record: entity id, the probability and evidence of its strongest link."""
    if len(links):
        long = pd.concat(
            [
                links.rename(columns={"unique_id_l": "unique_id", "unique_id_r": "other"}),
                links.rename(columns={"unique_id_r": "unique_id", "unique_id_l": "other"}),
            ],
            ignore_index=True,
        )
        long = long.sort_values(["unique_id", "match_probability", "other"], ascending=[True, False, True])
        best = long.drop_duplicates("unique_id")
        best = pd.DataFrame(
            {
                "unique_id": best["unique_id"].astype("string"),
                "best_probability": best["match_probability"].astype("float64"),
                "link_evidence": ("linked to " + best["other"] + ": " + best["evidence"]).astype("string"),
            }
        )
    else:
        best = pd.DataFrame(
            {"unique_id": pd.Series(dtype="string"), "best_probability": pd.Series(dtype="float64"),
             "link_evidence": pd.Series(dtype="string")}
        )
    bt = engine.from_records(typed_records(best, floats=("best_probability",)))
    e = records.select("unique_id", "account_id", "side").join(clusters, "unique_id")
    e = e.left_join(bt, "unique_id").drop("unique_id_right")
    return e.select(
        "unique_id", "account_id", "side",
        entity_id=ibis.literal("E:") + e.cluster_id.cast("string"),
        match_probability=e.best_probability,
        link_evidence=e.link_evidence.fill_null("single account record: no link to another account"),
    )


def _components(edges: pd.DataFrame, nodes: list[str]) -> dict[str, str]:
    """Connected components of a *small* entity graph (union–find): node → smallest node id."""
    parent = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(edges["a"].tolist(), edges["b"].tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra
    return {n: find(n) for n in nodes}


# household edge kinds, strongest first (the order of the evidence shown per entity)
HOUSEHOLD_KINDS = ("phone", "surname_region", "surname_payers", "shared_payers", "household_payers")


def _payer_rules_on(config: EntitiesConfig) -> bool:
    return bool(config.household_surname_region_min_shared or config.household_pattern_min_shared
                or config.household_pattern_min_shared_any_region or config.household_surname_any_region_min_shared
                or config.household_union_min_shared or config.household_identical_payers_min_shared)


def payer_entities(engine: Engine, transfers: ir.Table, re_: ir.Table, config: EntitiesConfig) -> ir.Table:
    """(s, entity_id, region, surname_core, surname): receiving entity `entity_id` was paid from abroad
    by payer entity `s` on a receiver record in `region` (hub payers, over
    household_max_counterparty_degree receiving accounts, left out). Materialized."""
    foreign = transfers.filter(transfers.sender_country != transfers.receiver_country)
    cp = foreign.select(r=transfers.receiver_id.cast("string"), s=transfers.sender_id.cast("string")).distinct()
    deg = cp.group_by("s").aggregate(deg=ibis._.count())
    cp = cp.join(deg, "s").filter(ibis._.deg <= config.household_max_counterparty_degree).select("r", "s")
    # count payers as persons: a payer's accounts that resolve to one entity count once
    payer = re_.filter(re_.side == "sender").select(s=re_.account_id, payer=re_.entity_id)
    cp = cp.join(payer, "s").select("r", s=ibis._.payer).distinct()
    rec = re_.filter(re_.side == "receiver").select(r=re_.account_id, entity_id=re_.entity_id,
                                                      region=re_.region, surname_core=re_.surname_core, surname=re_.surname)
    return engine.materialize(cp.join(rec, "r").select("s", "entity_id", "region", "surname_core", "surname").distinct())


def household_edges(engine: Engine, transfers: ir.Table, records: ir.Table, ents: ir.Table, config: EntitiesConfig,
                    cpe: ir.Table | None = None) -> ir.Table:
    """Entity pairs (a < b) with the reason that puts them in one household (Ibis)."""
    re_ = records.join(ents.select("unique_id", "entity_id"), "unique_id")
    parts: list[ir.Table] = []
    if config.household_shared_phone:
        p = re_.filter(re_.phone_e164.notnull()).select("entity_id", "phone_e164").distinct()
        q = p.view()
        j = p.join(q, (p.phone_e164 == q.phone_e164) & (p.entity_id < q.entity_id))
        parts.append(j.select(a=p.entity_id, b=q.entity_id, kind=ibis.literal("phone"),
                              reason=ibis.literal("shared phone ") + p.phone_e164))
    if _payer_rules_on(config):
        if cpe is None:
            cpe = payer_entities(engine, transfers, re_, config)
        o = cpe.view()
        pairs = cpe.join(o, (cpe.s == o.s) & (cpe.entity_id < o.entity_id))
        pairs = pairs.select(a=cpe.entity_id, b=o.entity_id,
                             region=ibis.ifelse((cpe.region == o.region).fill_null(False), cpe.region, ibis.null("string")),
                             same_surname=(cpe.surname_core == o.surname_core).fill_null(False),
                             surname=cpe.surname, s=cpe.s)
        agg = pairs.group_by(["a", "b"]).aggregate(
            n_shared=pairs.s.nunique(), same_surname=pairs.same_surname.any(), surname=pairs.surname.max(),
            region=pairs.region.max(),
        )
        npay = cpe.group_by("entity_id").aggregate(n=cpe.s.nunique())
        na, nb = npay.view(), npay.view()
        agg = agg.join(na, agg.a == na.entity_id).join(nb, agg.b == nb.entity_id)
        agg = agg.select(
            "a", "b", "n_shared", "same_surname", "surname", "region",
            jaccard=agg.n_shared / (na.n + nb.n - agg.n_shared),
            overlap=agg.n_shared / ibis.least(na.n, nb.n),
        )
        if config.household_match_any_record:
            # region and surname of an entity: those of any of its receiver records, not only of the
            # records the common payers paid (a relative's second account may lie in the family's province)
            ef = re_.filter(re_.side == "receiver").select("entity_id", "region", "surname_core").distinct()
            ra, rb = ef.view(), ef.view()
            j = agg.select("a", "b").join(ra, agg.a == ra.entity_id).join(rb, ibis._.b == rb.entity_id)
            j = j.select("a", "b",
                         region=ibis.ifelse((ra.region == rb.region).fill_null(False), ra.region, ibis.null("string")),
                         same_surname=(ra.surname_core == rb.surname_core).fill_null(False))
            j = j.group_by(["a", "b"]).aggregate(region_any=j.region.max(), surname_any=j.same_surname.any())
            agg = agg.left_join(j, ["a", "b"])
            agg = agg.select("n_shared", "surname", "jaccard", "overlap", a=agg.a, b=agg.b,
                             region=agg.region.fill_null(agg.region_any),
                             same_surname=agg.same_surname | agg.surname_any.fill_null(False))
        agg = engine.materialize(agg)
        if config.household_surname_region_min_shared:
            f = agg.filter(agg.same_surname & agg.region.notnull() & (agg.n_shared >= config.household_surname_region_min_shared))
            parts.append(f.select("a", "b", kind=ibis.literal("surname_region"),
                                  reason=ibis.literal("same region ") + f.region + ", surname '" + f.surname + "', "
                                  + f.n_shared.cast("string") + " common payer(s)"))
        if config.household_surname_any_region_min_shared:
            f = agg.filter(agg.same_surname & (agg.n_shared >= config.household_surname_any_region_min_shared)
                           & (agg.overlap >= config.household_surname_any_region_min_overlap))
            parts.append(f.select("a", "b", kind=ibis.literal("surname_payers"),
                                  reason=ibis.literal("surname '") + f.surname + "', "
                                  + f.n_shared.cast("string") + " common foreign payers in any region ("
                                  + (f.overlap * 100).round(0).cast("int64").cast("string") + "% of the smaller payer set)"))
        if config.household_pattern_min_shared:
            f = agg.filter(agg.region.notnull() & (agg.n_shared >= config.household_pattern_min_shared))
            parts.append(f.select("a", "b", kind=ibis.literal("shared_payers"),
                                  reason=ibis.literal("same region ") + f.region + ", "
                                  + f.n_shared.cast("string") + " common foreign payers"))
        if config.household_identical_payers_min_shared:
            f = agg.filter(agg.region.notnull() & (agg.jaccard >= 1.0)
                           & (agg.n_shared >= config.household_identical_payers_min_shared))
            parts.append(f.select("a", "b", kind=ibis.literal("shared_payers"),
                                  reason=ibis.literal("same region ") + f.region + ", the same "
                                  + f.n_shared.cast("string") + " foreign payer(s), and no other"))
        if config.household_pattern_min_shared_any_region:
            f = agg.filter((agg.n_shared >= config.household_pattern_min_shared_any_region)
                           & (agg.jaccard >= config.household_any_region_min_jaccard))
            parts.append(f.select("a", "b", kind=ibis.literal("shared_payers"),
                                  reason=f.n_shared.cast("string") + " common foreign payers (Jaccard "
                                  + f.jaccard.round(2).cast("string") + ")"))
    if not parts:
        return engine.from_records(typed_records(pd.DataFrame({c: [] for c in ("a", "b", "kind", "reason")})))
    return engine.materialize(ibis.union(*parts))


def household_union_edges(engine: Engine, cpe: ir.Table, re_: ir.Table, members: pd.DataFrame,
                          config: EntitiesConfig) -> pd.DataFrame:
    """The household-level payer rule (`household_payers`): an entity joins a household of two
    entities or more (`members`: entity_id, hid) when at least `household_union_min_shared` of its
    foreign payers also pay the household (the union of the payers of its entities), these make up at
    least `household_union_min_overlap` of the entity's payers, and the entity shares a region with
    the household (any receiver record), or, with `household_union_surname_any_region`, its
    surname. Each entity joins at most one household (the one sharing the most payers), so the rule
    does not chain households together. Returns edges a (entity), b (household root), kind, reason."""
    cols = ("a", "b", "kind", "reason")
    if not config.household_union_min_shared or not len(members):
        return pd.DataFrame({c: pd.Series(dtype="string") for c in cols})
    mt = engine.from_records(typed_records(members[["entity_id", "hid"]]))
    pay = cpe.select("s", "entity_id").distinct()
    hp = pay.join(mt, "entity_id").select("s", "hid", member=ibis._.entity_id).distinct()
    cand = pay.select("s", e=pay.entity_id).join(hp, "s")
    own = mt.select(e=mt.entity_id, own_hid=mt.hid)
    cand = cand.left_join(own, "e").drop("e_right")
    cand = cand.filter(cand.own_hid.isnull() | (cand.own_hid != cand.hid))
    agg = cand.group_by(["e", "hid"]).aggregate(n_shared=cand.s.nunique(), n_members=cand.member.nunique())
    npay = pay.group_by("entity_id").aggregate(n=pay.s.nunique())
    agg = agg.join(npay, agg.e == npay.entity_id).drop("entity_id")
    agg = agg.mutate(overlap=agg.n_shared / agg.n)
    agg = agg.filter((agg.n_shared >= config.household_union_min_shared) & (agg.overlap >= config.household_union_min_overlap))
    # places and surnames: every receiver record of the entity, and of the household's entities
    ef = re_.filter(re_.side == "receiver").select("entity_id", "region", "surname_core", "surname").distinct()
    he = ef.join(mt, "entity_id").select("hid", h_region=ibis._.region, h_surname=ibis._.surname_core)
    ee = ef.select(e=ef.entity_id, e_region=ef.region, e_surname=ef.surname_core, surname=ef.surname)
    j = agg.select("e", "hid").join(ee, "e").join(he, "hid")
    j = j.select("e", "hid", "surname",
                 region=ibis.ifelse((j.e_region == j.h_region).fill_null(False), j.e_region, ibis.null("string")),
                 same_surname=(j.e_surname == j.h_surname).fill_null(False))
    j = j.group_by(["e", "hid"]).aggregate(region=j.region.max(), same_surname=j.same_surname.any(),
                                          surname=j.surname.max())
    agg = agg.join(j, ["e", "hid"])
    ok = agg.region.notnull()
    if config.household_union_surname_any_region:
        ok = ok | agg.same_surname
    df = engine.fetch(agg.filter(ok).select("e", "hid", "n_shared", "n_members", "n", "region", "same_surname", "surname"))
    if not len(df):
        return pd.DataFrame({c: pd.Series(dtype="string") for c in cols})
    df = df.sort_values(["e", "n_shared", "n_members", "hid"], ascending=[True, False, False, True]).drop_duplicates("e")
    df = df.reset_index(drop=True)
    where = [f"same region {r}" if isinstance(r, str) else f"surname '{sn}'" for r, sn in zip(df["region"], df["surname"])]
    reason = [f"{w}, {int(k)} of its {int(n)} foreign payers also pay the household ({int(m)} of its entities)"
              for w, k, n, m in zip(where, df["n_shared"], df["n"], df["n_members"])]
    return pd.DataFrame({"a": df["e"].astype("string"), "b": df["hid"].astype("string"),
                         "kind": "household_payers", "reason": pd.Series(reason, dtype="string")})


def assign_households(engine: Engine, transfers: ir.Table, records: ir.Table, ents: ir.Table,
                      cfg: EntitiesConfig) -> tuple[ir.Table, pd.DataFrame]:
    """Households over the entities `ents` (unique_id, account_id, side, entity_id, match_probability,
    link_evidence): the entity table with household_id and household_evidence, and the households."""
    re_ = records.join(ents.select("unique_id", "entity_id"), "unique_id")
    cpe = payer_entities(engine, transfers, re_, cfg) if _payer_rules_on(cfg) else None
    hh = engine.fetch(household_edges(engine, transfers, records, ents, cfg, cpe=cpe))
    nodes = sorted(set(hh["a"]).union(hh["b"])) if len(hh) else []
    comp = _components(hh, nodes)
    if cfg.household_union_min_shared and cpe is not None and len(hh):
        # second pass: an entity against the union of the payers of a household found above
        members = pd.DataFrame({"entity_id": list(comp), "hid": [comp[n] for n in comp]})
        un = household_union_edges(engine, cpe, re_, members, cfg)
        if len(un):
            hh = pd.concat([hh, un], ignore_index=True)
            nodes = sorted(set(hh["a"]).union(hh["b"]))
            comp = _components(hh, nodes)
    # households: components over entities of the household edges
    hh["household"] = [comp[a] for a in hh["a"]]
    # evidence per entity: its first reasons (strongest kind first)
    order = {k: i for i, k in enumerate(HOUSEHOLD_KINDS)}
    long = pd.concat(
        [hh.assign(entity_id=hh["a"], other=hh["b"]), hh.assign(entity_id=hh["b"], other=hh["a"])], ignore_index=True
    )
    if len(long):
        long["rank"] = long["kind"].map(order)
        long = long.sort_values(["entity_id", "rank", "other"])
        # (string joins per group, not a Python function per group: a 10M-transfer scan has
        # hundreds of thousands of entities in households)
        top = long.groupby("entity_id", sort=False).head(3)
        txt = pd.Series([f"{r} with {o}" for r, o in zip(top["reason"], top["other"])], index=top.index, dtype=object)
        ev = txt.groupby(top["entity_id"]).agg("; ".join)
        ent_hh = pd.DataFrame({"entity_id": ev.index.astype("string"),
                               "household_id": ["H:" + comp[e][2:] for e in ev.index],
                               "household_evidence": pd.Series(ev.values, dtype="string")})
        hl = long.assign(household_id="H:" + long["household"].str[2:])
        members = hl[["household_id", "entity_id"]].drop_duplicates().sort_values(["household_id", "entity_id"])
        kinds = hl[["household_id", "kind"]].drop_duplicates()
        kinds = kinds.assign(_rank=kinds["kind"].map(order)).sort_values(["household_id", "_rank"])
        households = pd.DataFrame({
            "entity_ids": members.groupby("household_id")["entity_id"].agg(";".join),
            "reason": kinds.groupby("household_id")["kind"].agg(";".join),
        }).rename_axis("household_id").reset_index()
    else:
        ent_hh = pd.DataFrame({"entity_id": pd.Series(dtype="string"), "household_id": pd.Series(dtype="string"),
                               "household_evidence": pd.Series(dtype="string")})
        households = pd.DataFrame({c: pd.Series(dtype="string") for c in HOUSEHOLD_COLUMNS})
    ht = engine.from_records(typed_records(ent_hh))
    e = ents.left_join(ht, "entity_id").drop("entity_id_right")
    e = e.select(
        "account_id", "side", "entity_id", "match_probability", "link_evidence",
        household_id=e.household_id.fill_null(ibis.literal("H:") + e.entity_id.substr(2)),
        household_evidence=e.household_evidence.fill_null("no household link"),
    )
    return engine.materialize(e), households[list(HOUSEHOLD_COLUMNS)]


class _Bar:
    """A rich progress bar over the three stages (silent when progress=False)."""

    def __init__(self, progress: bool) -> None:
        self.p = None
        if progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.p = Progress(TextColumn("entities: {task.description}"), BarColumn(), TimeElapsedColumn())
            self.p.start()
            self.task = self.p.add_task("account records", total=3)

    def next(self, what: str) -> None:
        if self.p is not None:
            self.p.update(self.task, advance=1, description=what)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()


def resolve(engine: Engine, transfers: ir.Table, config: KalasagConfig | EntitiesConfig, *, progress: bool = False) -> EntityResult:
    """Link the account records of `transfers` into entities (same person) and households."""
    cfg = config.entities if isinstance(config, KalasagConfig) else config
    bar = _Bar(progress)
    try:
        return _resolve(engine, transfers, cfg, bar, progress)
    finally:
        bar.close()


def _resolve(engine: Engine, transfers: ir.Table, cfg: EntitiesConfig, bar: _Bar, progress: bool) -> EntityResult:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    records = account_records(engine, transfers, cfg)
    timings["records"] = time.perf_counter() - t0
    bar.next("Splink (EM, prediction, clusters)")

    t0 = time.perf_counter()
    run = run_splink(engine, records, cfg, progress=progress)
    timings["splink"] = time.perf_counter() - t0
    bar.next("households")

    t0 = time.perf_counter()
    p = run.predictions
    keep = [
        "unique_id_l", "unique_id_r", "account_id_l", "account_id_r", "match_probability", "splink_probability",
        "deterministic", "gamma_name", "name_norm_l", "name_norm_r", "gamma_phone_e164", "phone_e164_l",
        "gamma_region", "region_l", "gamma_country", "country_l",
    ]
    links = engine.fetch(p.filter(p.match_probability >= cfg.match_threshold).select(*keep))
    links["evidence"] = [describe_link(r) for r in links.to_dict("records")] if len(links) else pd.Series(dtype="string")
    ents = engine.materialize(_entity_table(engine, records, run.clusters, links))

    entities, households = assign_households(engine, transfers, records, ents, cfg)
    timings["households"] = time.perf_counter() - t0
    bar.next("done")
    return EntityResult(entities=entities, households=households, records=records,
                        links=links, model=run.parameters, timings=timings, notes=run.notes)
