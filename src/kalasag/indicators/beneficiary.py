"""Beneficiary-side indicators (research note §1.3): I-19, I-21, I-22 (I-21 also has a sender form,
household fan-out: kalasag.indicators.household).

I-19 has a stream form; I-21 (receivers linked through common senders: a graph) and I-22 (a region
against its own history: a population baseline) are batch only — the real-time service refreshes
them periodically (docs/service.md, "Parity with batch")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir

from pydantic import PositiveFloat, PositiveInt

from kalasag.indicators.base import DAY, Indicator, Params, StreamState, finish, graded, integer, num, plural, ratio
from kalasag.indicators.context import Context
from kalasag.indicators.household import explain_household, household_fanout
from kalasag.indicators.ops import IBIS, SCALAR
from kalasag.indicators.windows import WindowDistinct, distinct_at_rows, trailing

AMLC_MO = "https://newsinfo.inquirer.net/1336670/amlc-kin-victims-of-cybersex-transactions-receive-payments-themselves/amp"


class ForeignMicroInflows(Indicator):
    id, slug, name = "I-19", "i19", "Foreign micro-inflows inconsistent with profile"
    sides = ("receiver",)
    description = (
        "The beneficiary receives many foreign micro payments from unrelated senders within a rolling "
        "month, from at least two different unrelated senders in that same month."
    )
    source = " ; ".join([AMLC_MO, "https://pcij.org/article/6150/the-filipino-mothers-selling-their-children-for-online-sexual-abuse"])

    class Params(Params):
        window_days: PositiveInt
        min_inflows: int
        min_senders: int
        strong_inflows: PositiveInt
        micro_only: bool

    stream = True

    @staticmethod
    def qualified(count: Any, senders: Any, min_senders: int, X: Any) -> Any:
        """The inflows of one window when it holds enough distinct unrelated senders, else 0."""
        return X.ifelse(X.ge(senders, min_senders), count, 0)

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        keep = t.unrelated & t.micro if p.micro_only else t.unrelated
        t = t.filter(keep)
        sec = p.window_days * DAY
        # per inflow: inflows and distinct unrelated senders in the window ending at it (exact)
        t = t.mutate(_count=t.ts_epoch.count().over(trailing(t, ["account_id"], sec)))
        rows = distinct_at_rows(t, ["account_id"], "counterpart_id", sec, "_senders", carry=["_count"])
        return rows.group_by("account_id").aggregate(
            max_inflows=rows._count.max(), max_senders=rows._senders.max(),
            qualified=self.qualified(rows._count, rows._senders, p.min_senders, IBIS).max())

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        fired = X.ge(m["qualified"], p.min_inflows)
        return dict(fired=fired, strength=X.graded(fired, m["qualified"], p.strong_inflows), max_inflows=m["max_inflows"],
                    max_senders=m["max_senders"], qualified_inflows=m["qualified"], window_days=X.lit(p.window_days),
                    min_inflows=X.lit(p.min_inflows), min_senders=X.lit(p.min_senders))

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        p = params[self.id]
        return ForeignMicroInflowsState(p.window_days * DAY, p.min_senders, p.micro_only)

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        d = integer(row, "i19_window_days")
        return (f"received {integer(row, 'i19_qualified_inflows')} foreign micro payments from at least "
                f"{integer(row, 'i19_min_senders')} unrelated senders within {d} days (threshold "
                f"{integer(row, 'i19_min_inflows')}); up to {plural(integer(row, 'i19_max_senders'), 'unrelated sender')} "
                f"within {d} days")


class SeveralAccounts(Indicator):
    id, slug, name = "I-21", "i21", "Several accounts or channels for the same senders"
    sides = ("receiver", "sender")
    description = (
        "The beneficiary's unrelated foreign senders also pay other receiving accounts held under the "
        "same name or phone number (one person, several accounts or MSBs) or, more weakly, accounts of "
        "people with the same surname (a family spreading the payments); optionally, senders pay the "
        "beneficiary through two or more channels. Sender form (household fan-out): the sender pays "
        "several unrelated receiving accounts of one household (same surname and region, or a shared "
        "phone number)."
    )
    source = " ; ".join(["https://www.newswatchplus.ph/2022/02/16/amlc-warns-of-sanctions-if-suspicious-transactions-are-not-reported",
                         "https://icmec.org.au/?p=717", "https://dwiz882am.com/index.php/illegal-recruiter-timbog-sa-paranaque-city",
                         AMLC_MO])  # AMLC "family operations": the sender form (household fan-out)

    class Params(Params):
        use_name: bool
        use_phone: bool
        phone_digits: PositiveInt
        only_unrelated: bool
        max_sender_beneficiaries: PositiveInt
        min_linked_accounts: PositiveInt
        strong_linked_accounts: PositiveInt
        min_family_accounts: int
        family_min_shared_senders: PositiveInt
        family_strength: float
        min_multichannel_senders: int
        multichannel_strength: float
        # sender form (household fan-out, kalasag.indicators.household)
        household_min_accounts: PositiveInt
        household_use_name: bool
        household_use_phone: bool

    @staticmethod
    def _count_linked(shared: ir.Table, keys: ir.Table, name: str) -> ir.Table:
        """Per account: distinct other accounts sharing a sender (`shared`: a, b) and a key."""
        ka, kb = keys, keys.view()
        j = shared.join(ka, shared.a == ka.account_id).join(kb, (shared.b == kb.account_id) & (ka.key == kb.key))
        j = j.select(account_id=shared.a, other=shared.b).distinct()
        return j.group_by("account_id").aggregate(**{name: j.other.nunique().cast("int64")})

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        if side == "sender":
            return household_fanout(self, ctx, p)
        t = ctx.side_tx(side)
        if p.only_unrelated:
            t = t.filter(t.unrelated)
        base = t.group_by("account_id").aggregate(n=t.count())
        # pairs of receiving accounts paid by a common (unrelated, foreign) sender
        edges = t.select("account_id", "counterpart_id").distinct()
        deg = edges.group_by("counterpart_id").aggregate(_deg=edges.account_id.count())
        deg = deg.filter(deg._deg <= p.max_sender_beneficiaries)  # payroll/platform payers: left out
        edges = edges.join(deg, "counterpart_id").select("account_id", "counterpart_id")
        e2 = edges.view()
        shared = edges.join(e2, (edges.counterpart_id == e2.counterpart_id) & (edges.account_id != e2.account_id))
        shared = shared.select(a=edges.account_id, b=e2.account_id, cp=edges.counterpart_id)
        shared = shared.group_by(["a", "b"]).aggregate(n_shared=shared.cp.count())
        # (a) one person, several accounts: same identity key (name) or same phone
        parts = []
        if p.use_name:
            parts.append(t.filter(t.receiver_key.notnull()).select("account_id", key="n:" + t.receiver_key))
        if p.use_phone:
            parts.append(t.filter(t.receiver_phone_key.notnull()).select("account_id", key="p:" + t.receiver_phone_key))
        empty = base.select("account_id", key=ibis.null("string")).filter(ibis.literal(False))
        keys = empty
        for k in parts:
            keys = keys.union(k, distinct=True)
        lk = self._count_linked(shared, keys.distinct(), "linked")
        # (b) a family's accounts: same surname (relatives' accounts spreading the take)
        fam_keys = t.filter(~t.receiver_family.startswith("id:")).select("account_id", key=t.receiver_family).distinct()
        fk = self._count_linked(shared.filter(shared.n_shared >= p.family_min_shared_senders), fam_keys, "family")
        # (c) a sender paying this beneficiary through ≥ 2 distinct channels
        ch = t.filter(t.channel.notnull())
        per = ch.group_by(["account_id", "counterpart_id"]).aggregate(n_ch=ch.channel.nunique())
        mc = per.group_by("account_id").aggregate(multichannel_senders=(per.n_ch >= 2).cast("int64").sum(),
                                                  max_channels=per.n_ch.max().cast("int64"))
        a = (base.left_join(lk, base.account_id == lk.account_id)
             .left_join(fk, base.account_id == fk.account_id)
             .left_join(mc, base.account_id == mc.account_id))
        a = a.select(account_id=base.account_id, linked=a.linked.fill_null(0), family=a.family.fill_null(0),
                     multi=a.multichannel_senders.fill_null(0), max_channels=a.max_channels.fill_null(0))
        f_link = a.linked >= p.min_linked_accounts
        f_family = (a.family >= p.min_family_accounts) & (p.min_family_accounts > 0)  # 0 disables
        f_multi = (a.multi >= p.min_multichannel_senders) & (p.min_multichannel_senders > 0)  # 0 disables
        fired = f_link | f_family | f_multi
        strength = ibis.greatest(graded(f_link, a.linked, p.strong_linked_accounts),
                                 ibis.ifelse(f_family, p.family_strength, 0.0),
                                 ibis.ifelse(f_multi, p.multichannel_strength, 0.0))
        return finish(a, self, fired, strength, linked_accounts=a.linked, family_accounts=a.family,
                      multichannel_senders=a.multi, max_channels=a.max_channels)

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        if side == "sender":
            return explain_household(row, side)
        parts = []
        k = integer(row, "i21_linked_accounts")
        if k:
            parts.append(f"its senders also pay {plural(k, 'other account')} under the same name or phone number")
        f = integer(row, "i21_family_accounts")
        if f:
            parts.append(f"its unrelated foreign senders also pay {plural(f, 'other account')} of people with the same surname")
        m = integer(row, "i21_multichannel_senders")
        if m:
            parts.append(f"{plural(m, 'sender')} paid it through {integer(row, 'i21_max_channels')} different channels")
        return "; ".join(parts) or "no other accounts or channels for the same senders"


class AreaAnomaly(Indicator):
    id, slug, name = "I-22", "i22", "Area anomaly"
    sides = ("receiver",)
    description = (
        "The beneficiary's region shows a sudden rise of foreign micro payments from unrelated "
        "senders in the most recent months against its own earlier monthly average (weak booster)."
    )
    source = "https://radyoagila.com/doj-kinakausap-na-ang-money-services-firms-kaugnay-sa-online-child-exploitation"

    class Params(Params):
        recent_months: PositiveInt
        min_baseline_months: PositiveInt
        min_recent_inflows: int
        baseline_floor_per_month: PositiveFloat
        min_ratio: float
        strong_ratio: PositiveFloat
        micro_only: bool

    def regions(self, ctx: Context) -> ir.Table:
        p = ctx.params(self.id)
        t = ctx.side_tx("receiver")
        t = t.filter(t.receiver_region.notnull())
        t = t.mutate(_m=t.timestamp.year().cast("int64") * 12 + t.timestamp.month().cast("int64") - 1)
        bounds = t.aggregate(first=t._m.min(), last=t._m.max())
        t = t.cross_join(bounds)
        keep = t.unrelated & t.micro if p.micro_only else t.unrelated
        t = t.mutate(_hit=keep.cast("int64"), _recent=t._m > t.last - p.recent_months)
        r = t.group_by(["receiver_region", "first", "last"]).aggregate(
            recent=ibis.ifelse(t._recent, t._hit, 0).sum(), baseline=ibis.ifelse(t._recent, 0, t._hit).sum())
        base_months = r.last - p.recent_months - r.first + 1
        base_rate = ibis.greatest(ratio(r.baseline, base_months).fill_null(0.0), p.baseline_floor_per_month)
        recent_rate = r.recent.cast("float64") / p.recent_months
        growth = ibis.ifelse(base_months >= p.min_baseline_months, recent_rate / base_rate, ibis.null("float64"))
        fired = (growth >= p.min_ratio).fill_null(False) & (r.recent >= p.min_recent_inflows)
        return r.select("receiver_region", recent=r.recent, baseline=r.baseline, base_months=base_months,
                        recent_rate=recent_rate, base_rate=base_rate, growth=growth, fired=fired)

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        reg = self.regions(ctx)
        t = ctx.side_tx(side)
        keep = t.unrelated & t.micro if p.micro_only else t.unrelated
        t = t.filter(keep & t.receiver_region.notnull())
        acc = t.group_by("account_id").aggregate(region=t.receiver_region.max())
        a = acc.join(reg, acc.region == reg.receiver_region)
        return finish(a, self, a.fired, graded(a.fired, a.growth, p.strong_ratio), region=a.region,
                      growth=a.growth, recent_per_month=a.recent_rate, baseline_per_month=a.base_rate,
                      recent_months=ibis.literal(p.recent_months))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        return (f"its region {row.get('i22_region')} received {num(row, 'i22_recent_per_month'):.1f} foreign micro payments "
                f"from unrelated senders per month in the last {integer(row, 'i22_recent_months')} months, "
                f"{num(row, 'i22_growth'):.1f} times its earlier average of {num(row, 'i22_baseline_per_month'):.1f}")


class ForeignMicroInflowsState(StreamState):
    """Unrelated (micro) inflows and distinct senders in the window at every inflow."""

    __slots__ = ("win", "min_senders", "micro_only", "max_inflows", "max_senders", "qualified")

    def __init__(self, span: int, min_senders: int, micro_only: bool) -> None:
        self.win = WindowDistinct(span)
        self.min_senders, self.micro_only = min_senders, micro_only
        self.max_inflows = self.max_senders = self.qualified = 0

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        if not unrelated or (self.micro_only and not tx.micro):
            return False
        count, senders = self.win.add(tx.ts, cp)
        if count > self.max_inflows:
            self.max_inflows = count
        if senders > self.max_senders:
            self.max_senders = senders
        q = ForeignMicroInflows.qualified(count, senders, self.min_senders, SCALAR)
        if q > self.qualified:
            self.qualified = q
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        if not self.max_inflows:
            return None
        return {"max_inflows": self.max_inflows, "max_senders": self.max_senders, "qualified": self.qualified}
