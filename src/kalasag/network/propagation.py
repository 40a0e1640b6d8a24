"""Network indicators that need a first-pass score (run by `network_evidence`, after the
indicators and before scoring): N-03 links to suspicious receivers, N-04 two-hop risk propagation.

The first pass is the scoring formula of docs/scoring.md applied to the evidence computed so far
(every weight and prior from `[scoring]`; network indicators of this stage excluded), so "strongly
flagged" means exactly what the score would say without network evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import Field, PositiveInt

from kalasag.indicators import names as N
from kalasag.indicators.base import Indicator, Params, finish, graded, integer, num, pct, plural, top_row
from kalasag.indicators.context import Context
from kalasag.model import KalasagConfig
from kalasag.network.features import AMLC_RED_FLAGS, AUSTRAC_CASES, AUSTRAC_NETWORK, ENDEAVOUR_ICE, WU_ENDEAVOUR
from kalasag.network.graph import receiver_pairs

STAGE = "network"


class FirstPassMissing(RuntimeError):
    """A network-stage indicator was run without the first-pass scores (use network_evidence)."""


def first_pass_logit(table: ir.Table, side: str, config: KalasagConfig) -> ir.FloatingValue:
    """prior + Σ weight × strength (+ core_rule) over the evidence columns present, as in scoring."""
    from kalasag.indicators.registry import INDICATORS

    sc = config.scoring
    w = sc.weights
    logit: ir.FloatingValue = ibis.literal(sc.prior_log_odds[side], type="float64")
    for ind in INDICATORS.values():
        if getattr(ind, "stage", "transfers") != "transfers":
            continue
        weight = float(w.get(f"{ind.id}.{side}", w.get(ind.id, 0.0)))
        col = ind.col("strength")
        if weight and col in table.columns:
            logit = logit + table[col].fill_null(0.0).cast("float64") * weight
    cw = float(w.get(f"core_rule.{side}", w.get("core_rule", 0.0)))
    if cw and "core_rule" in table.columns:
        logit = logit + table["core_rule"].fill_null(False).cast("float64") * cw
    return logit


def set_first_pass(ctx: Context, side: str, evidence: ir.Table, config: KalasagConfig) -> ir.Table:
    """Materialize the first-pass scores (account_id, score) of `side` from its evidence table and
    keep them in `ctx` for the network-stage indicators (`first_pass`)."""
    logit = first_pass_logit(evidence, side, config)
    scores = ctx.engine.materialize(evidence.select("account_id", score=(1.0 / (1.0 + (-logit).exp())).cast("float64")))
    ctx.cache[f"network_first_pass_{side}"] = scores
    return scores


def first_pass(ctx: Context, side: str) -> ir.Table:
    key = f"network_first_pass_{side}"
    if key not in ctx.cache:
        raise FirstPassMissing(f"{side} first-pass scores missing: run network indicators through kalasag.network.network_evidence")
    return ctx.cache[key]


class SuspiciousLinks(Indicator):
    id, slug, name = "N-03", "n03", "Linked to suspicious receivers"
    sides = ("receiver",)
    stage = STAGE
    description = (
        "The receiver shares a phone number, or a name (first given name and surname) and a customer, with "
        "another receiver whose first-pass score is at least seed_score; or (weaker) shares a region and a "
        "customer with one."
    )
    source = " ; ".join([AMLC_RED_FLAGS, AUSTRAC_CASES, ENDEAVOUR_ICE])

    class Params(Params):
        seed_score: float = Field(ge=0, le=1)
        phone_digits: PositiveInt
        min_links: PositiveInt
        strong_links: PositiveInt
        region_strength: float = Field(ge=0, le=1)

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        fp = first_pass(ctx, side)
        susp = fp.filter(fp.score >= p.seed_score).select(s_id=fp.account_id)
        tx = ctx.tx
        keys = ctx.engine.materialize(tx.select(
            account_id=tx.receiver_id, phone=N.phone_key(tx.receiver_phone, p.phone_digits), name=tx.receiver_key,
            region=tx.receiver_region).distinct())
        other = keys.join(susp, keys.account_id == susp.s_id).select(o_id=keys.account_id, o_phone=keys.phone,
                                                                    o_name=keys.name, o_region=keys.region)

        pr = receiver_pairs(ctx, ctx.params("N-01").max_sender_beneficiaries)

        def linked(col: str, ocol: str, name: str, with_customer: bool) -> ir.Table:
            if with_customer:
                # common names and regions collide: also a common customer. Start from the pairs
                # with a common customer (`pr`, bounded by the senders' beneficiary cap), not from
                # the pairs of one name or region: those grow with the square of the accounts
                # (every receiver of a region × the suspicious receivers of that region)
                ps = pr.join(susp, pr.b == susp.s_id).select("a", "b")
                ka = keys.filter(keys[col].notnull()).select(a=keys.account_id, v=keys[col]).distinct()
                kb = other.filter(other[ocol].notnull()).select(b=other.o_id, v=other[ocol]).distinct()
                j = ps.join(ka, "a").join(kb, ["b", "v"])
                j = j.select(account_id=j.a, o_id=j.b).distinct()
            else:
                j = keys.join(other, (keys[col] == other[ocol]) & (keys.account_id != other.o_id))
                j = j.select(account_id=keys.account_id, o_id=other.o_id).distinct()
            return j.group_by("account_id").aggregate(**{name: j.o_id.nunique().cast("int64"), f"{name}_ex": j.o_id.min()})

        ph = linked("phone", "o_phone", "phone", False)
        nm = linked("name", "o_name", "name", True)
        rg = linked("region", "o_region", "region", True)
        base = keys.select("account_id").distinct()
        j = base.left_join(ph, base.account_id == ph.account_id).select(base.account_id, ph.phone, ph.phone_ex)
        j = j.left_join(nm, j.account_id == nm.account_id).select(j.account_id, j.phone, j.phone_ex, nm.name, nm.name_ex)
        j = j.left_join(rg, j.account_id == rg.account_id).select(j.account_id, j.phone, j.phone_ex, j.name, j.name_ex, rg.region, rg.region_ex)
        j = j.mutate(phone=j.phone.fill_null(0), name=j.name.fill_null(0), region=j.region.fill_null(0))
        j = j.filter((j.phone + j.name + j.region) > 0)
        ident = j.phone + j.name
        f_id = ident >= p.min_links
        f_rg = (j.region >= 1) & (p.region_strength > 0)
        strength = ibis.greatest(graded(f_id, ident, p.strong_links), ibis.ifelse(f_rg, p.region_strength, 0.0))
        return finish(j, self, f_id | f_rg, strength, phone_links=j.phone, name_links=j.name, region_links=j.region,
                      example=j.phone_ex.fill_null(j.name_ex).fill_null(j.region_ex), seed_score=ibis.literal(p.seed_score))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        parts = []
        for key, what in (("phone", "a phone number"), ("name", "a name and a customer")):
            k = integer(row, f"n03_{key}_links")
            if k:
                parts.append(f"shares {what} with {plural(k, 'suspicious receiver')}")
        k = integer(row, "n03_region_links")
        if k:
            parts.append(f"shares its region and a customer with {plural(k, 'suspicious receiver')}")
        return (" and ".join(parts) + f" (first-pass score ≥ {num(row, 'n03_seed_score'):.2f}, e.g. {row.get('n03_example')})"
                if parts else "no links to suspicious receivers")


class TwoHopExposure(Indicator):
    id, slug, name = "N-04", "n04", "Two-hop exposure to strongly flagged accounts"
    sides = ("sender", "receiver")
    stage = STAGE
    description = (
        "The share of the account's watched USD exchanged with strongly flagged counterparties (first-pass "
        "score ≥ seed_score; one hop), or with counterparties that also deal with a strongly flagged account "
        "of the account's own side (two hops, counted at two_hop_factor)."
    )
    source = " ; ".join([AUSTRAC_NETWORK, WU_ENDEAVOUR, AUSTRAC_CASES])

    class Params(Params):
        seed_score: float = Field(ge=0, le=1)
        max_via_degree: PositiveInt
        min_share: float = Field(ge=0, le=1)
        min_seed_transactions: PositiveInt
        two_hop_factor: float = Field(ge=0, le=1)
        strong_share: float = Field(gt=0, le=1)

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        other = "receiver" if side == "sender" else "sender"
        me, cp = ("sender_id", "receiver_id") if side == "sender" else ("receiver_id", "sender_id")
        t = ctx.tx.filter(ctx.tx.watched)
        w = t.group_by([t[me].name("acc"), t[cp].name("cp")]).aggregate(n=t.count().cast("int64"), usd=t.amount_usd.sum().cast("float64"))
        w = ctx.engine.materialize(w)
        tot = w.group_by("acc").aggregate(usd_total=w.usd.sum(), n_total=w.n.sum())
        fo, fs = first_pass(ctx, other), first_pass(ctx, side)
        seeds_o = fo.filter(fo.score >= p.seed_score).select(seed=fo.account_id)
        seeds_s = fs.filter(fs.score >= p.seed_score).select(seed=fs.account_id)
        # one hop: counterparties that are seeds
        h1 = w.join(seeds_o, w.cp == seeds_o.seed)
        # the counterparty named "mostly …": the largest USD (to the cent: float sums may differ in the
        # last bits between runs and engines), then the smallest id
        via1 = top_row(h1, "acc", [(h1.usd.round(2), True), (h1.cp, False)], via1=h1.cp)
        h1 = h1.group_by("acc").aggregate(usd1=h1.usd.sum(), n1=h1.n.sum(), seeds1=h1.cp.nunique().cast("int64"))
        h1 = h1.join(via1, "acc")
        # two hops: counterparties (not too busy) that also deal with a seed of my own side
        deg = w.group_by("cp").aggregate(deg=w.count())
        wv = w.join(deg, "cp").filter(lambda x: x.deg <= p.max_via_degree)
        cs = wv.join(seeds_s, wv.acc == seeds_s.seed).select(cp2=wv.cp, seed=seeds_s.seed)
        x = w.join(cs, (w.cp == cs.cp2) & (w.acc != cs.seed))
        x = x.group_by(["acc", "cp"]).aggregate(usd=x.usd.max(), n=x.n.max(), seed=x.seed.min())
        # via and seed of the same (largest) two-hop path
        via2 = top_row(x, "acc", [(x.usd.round(2), True), (x.cp, False)], via2=x.cp, seed2=x.seed)
        h2 = x.group_by("acc").aggregate(usd2=x.usd.sum(), n2=x.n.sum())
        h2 = h2.join(via2, "acc")
        j = tot.left_join(h1, tot.acc == h1.acc).select(tot.acc, tot.usd_total, h1.usd1, h1.n1, h1.via1, h1.seeds1)
        j = j.left_join(h2, j.acc == h2.acc).select(j.acc, j.usd_total, j.usd1, j.n1, j.via1, j.seeds1, h2.usd2, h2.n2, h2.via2, h2.seed2)
        j = j.filter(j.usd1.notnull() | j.usd2.notnull())
        s1 = (j.usd1.fill_null(0.0) / j.usd_total).fill_null(0.0)
        s2 = (j.usd2.fill_null(0.0) / j.usd_total).fill_null(0.0)
        j = j.mutate(s1=s1, s2=s2)
        ok1 = (j.s1 >= p.min_share) & (j.n1.fill_null(0) >= p.min_seed_transactions)
        ok2 = (j.s2 >= p.min_share) & (j.n2.fill_null(0) >= p.min_seed_transactions)
        val = ibis.greatest(ibis.ifelse(ok1, j.s1, 0.0), ibis.ifelse(ok2, j.s2 * p.two_hop_factor, 0.0))
        fired = ok1 | ok2
        return finish(j.rename(account_id="acc"), self, fired, graded(fired, val, p.strong_share),
                      share_1hop=j.s1, share_2hop=j.s2, seed_counterparties=j.seeds1.fill_null(0), via_1hop=j.via1,
                      via_2hop=j.via2, seed_2hop=j.seed2, seed_score=ibis.literal(p.seed_score))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        other = "receivers" if side == "sender" else "senders"
        verb = "sent to" if side == "sender" else "received from"
        parts = []
        s1, s2 = num(row, "n04_share_1hop"), num(row, "n04_share_2hop")
        if s1 > 0:
            parts.append(f"{pct(s1)} of its watched USD was {verb} {plural(integer(row, 'n04_seed_counterparties'), 'strongly flagged ' + other[:-1], 'strongly flagged ' + other)} "
                         f"(mostly {row.get('n04_via_1hop')})")
        if s2 > 0:
            mid = "receivers" if side == "sender" else "senders"
            parts.append(f"{pct(s2)} went through {mid} that also deal with a strongly flagged {side} "
                         f"(e.g. {row.get('n04_via_2hop')}, shared with {row.get('n04_seed_2hop')})")
        return "; ".join(parts) + f" (first-pass score ≥ {num(row, 'n04_seed_score'):.2f})"
