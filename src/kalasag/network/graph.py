"""The customer graph as Ibis tables (shared by the network indicators, computed once per scan).

Edge: a receiver and an unrelated (I-05) foreign sender paying it into a target country (a
*watched* payment, see docs/indicators.md). Senders paying more than `max_sender_beneficiaries`
receivers (payroll, platforms) are left out: they would link everybody.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from kalasag.indicators.context import Context


def customer_edges(ctx: Context, max_sender_beneficiaries: int) -> ir.Table:
    """receiver_id, sender_id, n (payments), usd, deg (the sender's receivers in the graph)."""

    def build() -> ir.Table:
        t = ctx.tx.filter(ctx.tx.watched & ctx.tx.unrelated.fill_null(False))
        e = t.group_by(["receiver_id", "sender_id"]).aggregate(n=t.count().cast("int64"), usd=t.amount_usd.sum().cast("float64"))
        d = e.group_by("sender_id").aggregate(deg=e.count().cast("int64"))
        d = d.filter(d.deg <= max_sender_beneficiaries)
        return e.join(d, "sender_id").select("receiver_id", "sender_id", "n", "usd", "deg")

    return ctx.cached(f"network_edges_{max_sender_beneficiaries}", build)


def receiver_pairs(ctx: Context, max_sender_beneficiaries: int) -> ir.Table:
    """Ordered pairs of distinct receivers (a, b) with ≥ 1 common sender: n_shared, deg_a, deg_b, jaccard."""

    def build() -> ir.Table:
        e = customer_edges(ctx, max_sender_beneficiaries)
        e2 = e.view()
        j = e.join(e2, (e.sender_id == e2.sender_id) & (e.receiver_id != e2.receiver_id))
        j = j.select(a=e.receiver_id, b=e2.receiver_id)
        pairs = j.group_by(["a", "b"]).aggregate(n_shared=j.count().cast("int64"))
        deg = e.group_by("receiver_id").aggregate(senders=e.count().cast("int64"))
        da, db = deg.view(), deg.view()
        p = pairs.join(da, pairs.a == da.receiver_id).join(db, pairs.b == db.receiver_id)
        p = p.select("a", "b", "n_shared", deg_a=da.senders, deg_b=db.senders)
        return p.mutate(jaccard=p.n_shared.cast("float64") / (p.deg_a + p.deg_b - p.n_shared).cast("float64"))

    return ctx.cached(f"network_pairs_{max_sender_beneficiaries}", build)


def empty_like(t: ir.Table) -> ir.Table:
    """`t` with no rows (for evidence when a feature has nothing to work on)."""
    return t.filter(ibis.literal(False))
