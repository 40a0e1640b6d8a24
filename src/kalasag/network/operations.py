"""Network alerts: facilitator operations found by Leiden community detection (igraph + leidenalg)
on the *reduced* suspicious subgraph.

The subgraph is built by the engine and only it is fetched to Python: the accounts scored at
least `[network] seed_score` (at most `max_nodes`, highest scores first), plus their direct
counterparties with strong ties (≥ `tie_min_transactions` payments or ≥ `tie_min_usd` with a seed),
and the watched payments among them (at most `max_edges`, largest USD first). Receivers of the
subgraph sharing a phone number or a name get an extra edge. Each community with at least
`min_receivers` receiving accounts, `min_senders` customers and one seed is a candidate operation;
its score is the mean of its `score_top_k` highest account scores (an operation is as suspicious
as its strongest few accounts, and one strong account among weak ones does not make a network), and
it is alerted at `alert_threshold`.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from kalasag.indicators import names as N
from kalasag.model import SIDES, KalasagConfig

NETWORK_COLUMNS = [
    "network_id", "score", "risk_level", "n_receivers", "n_senders", "receivers", "senders", "total_usd",
    "n_transactions", "first_seen", "last_seen", "n_alerted", "explanation",
]


class NetworkError(ValueError):
    """The inputs of detect_operations are unusable (one-line message)."""


def _usd(x: float) -> str:
    return f"USD {x:,.0f}"


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def subgraph(engine: Any, transfers: ir.Table, scored: dict[str, ir.Table], config: KalasagConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(edges, nodes) of the reduced suspicious subgraph, as small pandas frames.

    edges: sender_id, receiver_id, n, usd, first, last. nodes: side, account_id, score, alerted,
    country (senders), phone_key and name_key (receivers)."""
    nc = config.network
    for side in SIDES:
        if side not in scored:
            raise NetworkError(f"scored tables lack the {side} side")
        missing = [c for c in ("account_id", "score", "alerted") if c not in scored[side].columns]
        if missing:
            raise NetworkError(f"scored {side} table lacks column(s): {', '.join(missing)}")
    targets = [c.upper() for c in config.target_countries]
    t = transfers
    t = t.filter((t.sender_country != t.receiver_country).fill_null(False) & t.receiver_country.isin(targets).fill_null(False))
    e = t.group_by(["sender_id", "receiver_id"]).aggregate(
        n=t.count().cast("int64"), usd=t.amount_usd.sum().cast("float64"), first=t.timestamp.min(), last=t.timestamp.max())
    e = engine.materialize(e)
    seeds = {}
    for side in SIDES:
        s = scored[side]
        s = s.filter(s.score >= nc.seed_score).order_by([ibis.desc("score"), "account_id"]).limit(nc.max_nodes)
        seeds[side] = engine.materialize(s.select(seed_id=s.account_id))
    ss, sr = seeds["sender"], seeds["receiver"]
    x = e.left_join(ss, e.sender_id == ss.seed_id).select(*[e[c] for c in e.columns], s_seed=ss.seed_id.notnull())
    x = x.left_join(sr, x.receiver_id == sr.seed_id).select(*[x[c] for c in x.columns], r_seed=sr.seed_id.notnull())
    strong = (x.n >= nc.tie_min_transactions) | (x.usd >= nc.tie_min_usd)
    kept = x.filter((x.s_seed & x.r_seed) | ((x.s_seed | x.r_seed) & strong))
    kept = engine.materialize(kept)
    node_s = kept.select(account_id=kept.sender_id).union(ss.select(account_id=ss.seed_id), distinct=True)
    node_r = kept.select(account_id=kept.receiver_id).union(sr.select(account_id=sr.seed_id), distinct=True)
    node_s, node_r = engine.materialize(node_s), engine.materialize(node_r)
    # every watched payment among the subgraph's accounts (customers of a seed paying its non-seed sister accounts too)
    sub = e.join(node_s, e.sender_id == node_s.account_id).join(node_r, e.receiver_id == node_r.account_id)
    sub = sub.select("sender_id", "receiver_id", "n", "usd", "first", "last")
    edges = engine.fetch(sub.order_by([ibis.desc("usd"), "sender_id", "receiver_id"]).limit(nc.max_edges))
    # node attributes
    frames = []
    for side, nodes in (("sender", node_s), ("receiver", node_r)):
        sc = scored[side]
        j = nodes.left_join(sc, nodes.account_id == sc.account_id).select(
            account_id=nodes.account_id, score=sc.score.fill_null(0.0).cast("float64"), alerted=sc.alerted.fill_null(False))
        own = "sender_id" if side == "sender" else "receiver_id"
        tt = transfers.join(nodes, transfers[own] == nodes.account_id)
        if side == "sender":
            attrs = tt.group_by(tt[own].name("aid")).aggregate(country=tt.sender_country.max(), phone_key=ibis.null("string"),
                                                               name_key=ibis.null("string"))
        else:
            norm = N.normalize_name(tt.receiver_name)
            tt = tt.mutate(_pk=N.phone_key(tt.receiver_phone, nc.phone_digits), _nk=N.identity_key(norm))
            attrs = tt.group_by(tt[own].name("aid")).aggregate(country=tt.receiver_country.max(), phone_key=tt._pk.max(),
                                                               name_key=tt._nk.max())
        j = j.left_join(attrs, j.account_id == attrs.aid).select(
            side=ibis.literal(side), account_id=j.account_id, score=j.score, alerted=j.alerted,
            country=attrs.country, phone_key=attrs.phone_key, name_key=attrs.name_key)
        frames.append(engine.fetch(j))
    # in a fixed order: the node order is igraph's vertex order, and Leiden's result (seeded) depends
    # on it; fetched unordered, one input gave 21 operations in one run and 20 in the next
    nodes_df = pd.concat(frames, ignore_index=True).sort_values(["side", "account_id"], kind="stable").reset_index(drop=True)
    return edges, nodes_df


def communities(edges: pd.DataFrame, nodes: pd.DataFrame, config: KalasagConfig) -> dict[str, int]:
    """Leiden membership of every node key ("sender:<id>" / "receiver:<id>")."""
    import igraph as ig
    import leidenalg

    nc = config.network
    keys = [f"{s}:{a}" for s, a in zip(nodes["side"], nodes["account_id"], strict=True)]
    index = {k: i for i, k in enumerate(keys)}
    pairs, weights = [], []
    for s, r, n in zip(edges["sender_id"], edges["receiver_id"], edges["n"], strict=True):
        a, b = index.get(f"sender:{s}"), index.get(f"receiver:{r}")
        if a is not None and b is not None:
            pairs.append((a, b))
            weights.append(1.0 + math.log(float(n)))
    rec = nodes[nodes["side"] == "receiver"]
    for col, w in (("phone_key", nc.phone_link_weight), ("name_key", nc.name_link_weight)):
        if w <= 0:
            continue
        for _, grp in rec[rec[col].notna()].groupby(col):
            ids = sorted(grp["account_id"])
            for i in range(1, len(ids)):  # a chain links the group (no quadratic blow-up)
                pairs.append((index[f"receiver:{ids[i - 1]}"], index[f"receiver:{ids[i]}"]))
                weights.append(float(w))
    g = ig.Graph(n=len(keys), edges=pairs)
    g.es["weight"] = weights
    if not pairs:
        return {k: i for i, k in enumerate(keys)}
    part = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition, weights="weight",
                                    resolution_parameter=nc.resolution, seed=nc.random_seed)
    return {k: int(part.membership[i]) for i, k in enumerate(keys)}


def _explain(r_ids: list[str], s_ids: list[str], nodes: pd.DataFrame, inner: pd.DataFrame, top: list[float], score: float) -> str:
    rec = nodes[(nodes["side"] == "receiver") & nodes["account_id"].isin(r_ids)]
    snd = nodes[(nodes["side"] == "sender") & nodes["account_id"].isin(s_ids)]
    countries = sorted(c for c in snd["country"].dropna().unique())
    nr, ns = len(r_ids), len(s_ids)
    who = f"{nr} receiving accounts" if nr > 1 else "1 receiving account"
    parts = [f"A suspected facilitator operation of {who} paid by {_plural(ns, 'customer')} in "
             f"{_plural(len(countries), 'country', 'countries')} ({', '.join(countries)}), {_usd(inner['usd'].sum())} in "
             f"{int(inner['n'].sum()):,} payments from {pd.Timestamp(inner['first'].min()):%Y-%m-%d} to "
             f"{pd.Timestamp(inner['last'].max()):%Y-%m-%d}."]
    if nr > 1:
        multi = int((inner.groupby("sender_id")["receiver_id"].nunique() > 1).sum())
        if multi:
            parts.append(f"{_plural(multi, 'customer pays', 'customers pay')} more than one of its receiving accounts.")
        for col, what in (("phone_key", "a phone number"), ("name_key", "a name")):
            c = Counter(rec[col].dropna())
            shared = sum(v for v in c.values() if v > 1)
            if shared:
                parts.append(f"{shared} receiving accounts share {what}.")
    n_alerted = int(rec["alerted"].sum() + snd["alerted"].sum())
    parts.append(f"{n_alerted} of its {nr + ns} accounts are alerted; its strongest account scores "
                 f"{', '.join(f'{s:.2f}' for s in top)} average a network score of {score:.2f}.")
    return " ".join(parts)


def detect_operations(engine: Any, transfers: ir.Table, scored: dict[str, ir.Table], config: KalasagConfig) -> pd.DataFrame:
    """One row per network alert (columns NETWORK_COLUMNS), highest score first."""
    nc = config.network
    edges, nodes = subgraph(engine, transfers, scored, config)
    if nodes.empty:
        return pd.DataFrame(columns=NETWORK_COLUMNS)
    member = communities(edges, nodes, config)
    nodes = nodes.assign(key=nodes["side"] + ":" + nodes["account_id"])
    nodes["community"] = nodes["key"].map(member)
    seed_keys = set(nodes.loc[nodes["score"] >= nc.seed_score, "key"])
    edges = edges.assign(cs=("sender:" + edges["sender_id"]).map(member), cr=("receiver:" + edges["receiver_id"]).map(member))
    rows = []
    for com, grp in nodes.groupby("community"):
        r_ids = sorted(grp.loc[grp["side"] == "receiver", "account_id"])
        s_ids = sorted(grp.loc[grp["side"] == "sender", "account_id"])
        if len(r_ids) < nc.min_receivers or len(s_ids) < nc.min_senders or not (set(grp["key"]) & seed_keys):
            continue
        inner = edges[(edges["cs"] == com) & (edges["cr"] == com)]
        if inner.empty:
            continue
        top = sorted(grp["score"].astype(float), reverse=True)[: nc.score_top_k]
        score = sum(top) / len(top)
        if score < nc.alert_threshold:
            continue
        risk = "high" if score >= nc.risk_high else "medium" if score >= nc.risk_medium else "low"
        rows.append({
            "score": score, "risk_level": risk, "n_receivers": len(r_ids), "n_senders": len(s_ids),
            "receivers": ";".join(r_ids), "senders": ";".join(s_ids), "total_usd": float(inner["usd"].sum()),
            "n_transactions": int(inner["n"].sum()), "first_seen": pd.Timestamp(inner["first"].min()),
            "last_seen": pd.Timestamp(inner["last"].max()), "n_alerted": int(grp["alerted"].sum()),
            "explanation": _explain(r_ids, s_ids, nodes, inner, top, score),
        })
    if not rows:
        return pd.DataFrame(columns=NETWORK_COLUMNS)
    out = pd.DataFrame(rows).sort_values(["score", "total_usd", "receivers"], ascending=[False, False, True], kind="stable")
    out.insert(0, "network_id", [f"NET-{i:03d}" for i in range(1, len(out) + 1)])
    return out[NETWORK_COLUMNS].reset_index(drop=True)
