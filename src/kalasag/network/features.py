"""Network indicators computed from the transfers alone (run inside `compute_evidence`):
N-01 shared customers, N-02 co-moving bursts, I-23 linkage to a watchlist of known subjects.

All are Ibis expressions (joins, group-bys, plain windows): they run on DuckDB and PySpark.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import Field, PositiveInt

from kalasag.indicators import names as N
from kalasag.indicators.base import DAY, Indicator, Params, finish, graded, integer, num, plural, top_row
from kalasag.indicators.context import Context
from kalasag.network.graph import customer_edges, receiver_pairs

# Sources (research note §1: I-03, I-21, I-23 and the "one offender unravels a network" cases)
AUSTRAC_CASES = "https://www.austrac.gov.au/business/how-comply-guidance-and-resources/guidance-resources/online-transactions-lead-convictions-child-sex-offences"
ENDEAVOUR_ICE = "http://www.ice.gov/news/releases/29-arrested-international-case-involving-live-online-webcam-child-abuse"
AUSTRAC_NETWORK = "https://newsapp.abc.net.au/news/2025-11-19/child-sexual-exploitation-crackdown-online-payments-austrac/106018652"
WU_ENDEAVOUR = "https://preda.org/banks-help-cops-follow-the-hidden-money-trail-to-nab-pedophiles/"
WESTPAC_C1 = "https://newsbite.mooo.com/www.theaustralian.com.au/business/financial-services/austrac-sets-out-case-on-horrors-of-child-abuse/news-story/85b53e61902d3b56472fade3edc20941"
AMLC_RED_FLAGS = "https://www.newswatchplus.ph/2022/02/16/amlc-warns-of-sanctions-if-suspicious-transactions-are-not-reported"


class SharedCustomers(Indicator):
    id, slug, name = "N-01", "n01", "Shared customers"
    sides = ("receiver", "sender")
    description = (
        "Receiver: other receivers are paid by the same unrelated foreign senders (at least "
        "min_shared_customers in common, sender sets overlapping by a Jaccard index of at least "
        "min_jaccard). Sender: the sender is one of the common customers of two such linked receivers."
    )
    source = " ; ".join([AUSTRAC_CASES, ENDEAVOUR_ICE, AUSTRAC_NETWORK])

    class Params(Params):
        max_sender_beneficiaries: PositiveInt
        min_shared_customers: PositiveInt
        min_linked_receivers: PositiveInt
        min_jaccard: float = Field(ge=0, le=1)
        strong_shared_customers: PositiveInt

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        e = customer_edges(ctx, p.max_sender_beneficiaries)
        pr = receiver_pairs(ctx, p.max_sender_beneficiaries)
        q = pr.filter((pr.n_shared >= p.min_shared_customers) & (pr.jaccard >= p.min_jaccard))
        if side == "receiver":
            a = q.group_by("a").aggregate(linked=q.count().cast("int64"), max_shared=q.n_shared.max(), max_jaccard=q.jaccard.max())
            # the example: most customers in common, then the larger overlap, then the smallest id
            best = top_row(q, "a", [(q.n_shared.cast("float64") + q.jaccard / 2, True), (q.b, False)], best=q.b)
            a = a.join(best, "a")
            # own senders who also pay another receiver (any overlap)
            multi = e.filter(e.deg >= 2)
            sc = multi.group_by("receiver_id").aggregate(shared=multi.count().cast("int64"))
            allc = e.group_by("receiver_id").aggregate(senders=e.count().cast("int64"))
            base = allc.left_join(sc.select("receiver_id", "shared"), allc.receiver_id == sc.receiver_id)
            base = base.select(account_id=allc.receiver_id, senders=allc.senders, shared=base.shared.fill_null(0))
            j = base.left_join(a, base.account_id == a.a)
            j = j.select("account_id", "senders", "shared", linked=j.linked.fill_null(0), max_shared=j.max_shared.fill_null(0),
                         max_jaccard=j.max_jaccard.fill_null(0.0), best=j.best)
            fired = j.linked >= p.min_linked_receivers
            return finish(j, self, fired, graded(fired, j.max_shared, p.strong_shared_customers), customers=j.senders,
                          shared_customers=j.shared, linked_receivers=j.linked, max_shared=j.max_shared,
                          max_jaccard=j.max_jaccard, linked_example=j.best, min_shared=ibis.literal(p.min_shared_customers))
        # sender: pays both receivers of a linked pair
        ea, eb = e.view(), e.view()
        j = ea.join(q, ea.receiver_id == q.a).join(eb, (eb.receiver_id == q.b) & (eb.sender_id == ea.sender_id))
        j = j.select(account_id=ea.sender_id, a=q.a, n_shared=q.n_shared)
        a = j.group_by("account_id").aggregate(linked=j.a.nunique().cast("int64"), max_shared=j.n_shared.max())
        fired = a.linked >= 2
        return finish(a, self, fired, graded(fired, a.max_shared, p.strong_shared_customers),
                      linked_beneficiaries=a.linked, max_shared=a.max_shared)

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        if side == "receiver":
            k = integer(row, "n01_linked_receivers")
            return (f"{integer(row, 'n01_shared_customers')} of its {integer(row, 'n01_customers')} unrelated foreign senders "
                    f"also pay other receivers; it shares at least {integer(row, 'n01_min_shared')} customers with "
                    f"{plural(k, 'other receiver')} (up to {integer(row, 'n01_max_shared')} in common, with "
                    f"{row.get('n01_linked_example')}; sender-set overlap {num(row, 'n01_max_jaccard'):.2f})")
        return (f"pays {integer(row, 'n01_linked_beneficiaries')} beneficiaries that share customers with each other "
                f"(up to {integer(row, 'n01_max_shared')} senders in common)")


class CoMovingBursts(Indicator):
    id, slug, name = "N-02", "n02", "Co-moving payment bursts"
    sides = ("receiver",)
    description = (
        "The receiver's weekly series of unrelated foreign inflows correlates (Pearson, every week of the "
        "data counted, quiet weeks as 0) with that of a receiver sharing at least min_shared_customers "
        "customers, and both burst in the same weeks: one operation, several collecting accounts."
    )
    source = " ; ".join([AUSTRAC_CASES, AMLC_RED_FLAGS, ENDEAVOUR_ICE])

    class Params(Params):
        max_sender_beneficiaries: PositiveInt
        min_shared_customers: PositiveInt
        week_days: PositiveInt
        burst_min: PositiveInt
        min_corr: float = Field(ge=-1, le=1)
        min_co_weeks: PositiveInt
        strong_co_weeks: PositiveInt

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        sec = p.week_days * DAY
        t = ctx.tx.filter(ctx.tx.watched & ctx.tx.unrelated.fill_null(False))
        span = ctx.tx.aggregate(_t0=ctx.tx.ts_epoch.min(), _t1=ctx.tx.ts_epoch.max())
        t = t.cross_join(span)
        t = t.mutate(week=((t.ts_epoch - t._t0) // sec).cast("int64"), n_weeks=((t._t1 - t._t0) // sec + 1).cast("int64"))
        wk = t.group_by(["receiver_id", "week", "n_weeks"]).aggregate(c=t.count().cast("int64"))
        wk = ctx.engine.materialize(wk)
        st = wk.group_by("receiver_id").aggregate(sx=wk.c.sum().cast("float64"), sxx=(wk.c * wk.c).sum().cast("float64"),
                                                  nw=wk.n_weeks.max().cast("float64"))
        pr = receiver_pairs(ctx, p.max_sender_beneficiaries)
        pr = pr.filter(pr.n_shared >= p.min_shared_customers).select("a", "b", "n_shared")
        wa, wb = wk.view(), wk.view()
        j = pr.join(wa, pr.a == wa.receiver_id).join(wb, (pr.b == wb.receiver_id) & (wa.week == wb.week))
        j = j.select(a=pr.a, b=pr.b, ca=wa.c, cb=wb.c)
        co = j.group_by(["a", "b"]).aggregate(
            sxy=(j.ca * j.cb).sum().cast("float64"),
            co_weeks=((j.ca >= p.burst_min) & (j.cb >= p.burst_min)).cast("int64").sum())
        sa, sb = st.view(), st.view()
        x = (pr.left_join(co, (pr.a == co.a) & (pr.b == co.b))
             .join(sa, pr.a == sa.receiver_id).join(sb, pr.b == sb.receiver_id))
        x = x.select(a=pr.a, b=pr.b, sxy=x.sxy.fill_null(0.0), co_weeks=x.co_weeks.fill_null(0), n=sa.nw,
                     sxa=sa.sx, sxxa=sa.sxx, sxb=sb.sx, sxxb=sb.sxx)
        va = x.n * x.sxxa - x.sxa * x.sxa
        vb = x.n * x.sxxb - x.sxb * x.sxb
        corr = ibis.ifelse((va > 0) & (vb > 0), (x.n * x.sxy - x.sxa * x.sxb) / (va * vb).sqrt(), ibis.null("float64"))
        x = x.mutate(corr=corr)
        ok = (x.corr >= p.min_corr).fill_null(False) & (x.co_weeks >= p.min_co_weeks)
        x = x.mutate(ok=ok)
        a = x.group_by("a").aggregate(
            comoving=x.ok.cast("int64").sum(),
            max_corr=ibis.ifelse(x.ok, x.corr, ibis.null("float64")).max(),
            co_weeks=ibis.ifelse(x.ok, x.co_weeks, 0).max(),
            any_corr=x.corr.max())
        best = top_row(x, "a", [(ibis.ifelse(x.ok, x.co_weeks.cast("float64") + x.corr.fill_null(0.0) / 2, -1.0), True),
                                (x.b, False)], best=x.b)
        a = a.join(best, "a")
        fired = a.comoving >= 1
        return finish(a.rename(account_id="a"), self, fired, graded(fired, a.co_weeks, p.strong_co_weeks),
                      comoving_receivers=a.comoving, max_corr=a.max_corr, co_burst_weeks=a.co_weeks,
                      comoving_example=ibis.ifelse(fired, a.best, ibis.null("string")), week_days=ibis.literal(p.week_days))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        k = integer(row, "n02_comoving_receivers")
        return (f"its weekly inflows move with those of {plural(k, 'receiver')} sharing its customers "
                f"(correlation up to {num(row, 'n02_max_corr'):.2f}; bursts in the same {integer(row, 'n02_co_burst_weeks')} "
                f"periods of {integer(row, 'n02_week_days')} days, e.g. with {row.get('n02_comoving_example')})")


class WatchlistLinkage(Indicator):
    id, slug, name = "I-23", "i23", "Network linkage to known subjects"
    sides = ("sender", "receiver")
    description = (
        "The account is on the watchlist (account id, name or phone from earlier cases), or within "
        "max_hops of a listed account: one hop = it paid or was paid by the listed account, or shares "
        "its phone number; two hops = it shares a counterparty with the listed account. The explanation "
        "says through whom."
    )
    source = " ; ".join([AUSTRAC_NETWORK, WU_ENDEAVOUR, WESTPAC_C1, AUSTRAC_CASES])

    class Params(Params):
        max_hops: int = Field(ge=0, le=2)
        phone_digits: PositiveInt
        max_via_degree: PositiveInt
        listed_strength: float = Field(ge=0, le=1)
        one_hop_strength: float = Field(ge=0, le=1)
        two_hop_strength: float = Field(ge=0, le=1)

    def _watchlist(self, ctx: Context, p) -> ir.Table:
        wl = ctx.watchlist
        if wl is None:  # no watchlist: an empty one with the same columns
            wl = ctx.tx.select(entry=ibis.literal(0, "int64"), account_id=ibis.null("string"), name=ibis.null("string"),
                               phone=ibis.null("string")).filter(ibis.literal(False))
        norm = N.normalize_name(wl.name.cast("string").nullif(""))
        return wl.select(entry=wl.entry.cast("int64"), w_id=wl.account_id.cast("string").nullif(""), w_key=N.identity_key(norm),
                         w_phone=N.phone_key(wl.phone.cast("string").nullif(""), p.phone_digits))

    def links(self, ctx: Context) -> ir.Table:
        """Every path from a listed account: side, account_id, hops, subject, subject_side, via, link, entry, how."""

        def build() -> ir.Table:
            p = ctx.params(self.id)
            tx = ctx.tx
            if ctx.watchlist is None:  # nothing to link to: an empty table of the same shape, cheaply
                s = ibis.null("string")
                return tx.select(side=s, account_id=s, hops=ibis.null("int64"), subject=s, subject_side=s, via=s, link=s,
                                 entry=ibis.null("int64"), how=s).filter(ibis.literal(False))
            sn = N.name_parts(tx, "sender_name", "s", ctx.engine)
            st = tx.left_join(sn, tx.sender_name == sn.sender_name)
            acct_s = st.select(side=ibis.literal("sender"), account_id=st.sender_id, name_key=st.s_key,
                               phone_key=N.phone_key(st.sender_phone, p.phone_digits))
            acct_r = tx.select(side=ibis.literal("receiver"), account_id=tx.receiver_id, name_key=tx.receiver_key,
                               phone_key=N.phone_key(tx.receiver_phone, p.phone_digits))
            acct = ctx.engine.materialize(acct_s.union(acct_r, distinct=True))
            wl = self._watchlist(ctx, p)
            cols = ["side", "account_id", "entry", "how"]
            m_id = acct.join(wl, acct.account_id == wl.w_id).select(acct.side, acct.account_id, wl.entry, how=ibis.literal("account id"))
            m_nm = acct.join(wl, acct.name_key == wl.w_key).select(acct.side, acct.account_id, wl.entry, how=ibis.literal("name"))
            m_ph = acct.join(wl, acct.phone_key == wl.w_phone).select(acct.side, acct.account_id, wl.entry, how=ibis.literal("phone"))
            subj = ctx.engine.materialize(m_id.select(*cols).union(m_nm.select(*cols), distinct=True).union(m_ph.select(*cols), distinct=True))
            out = [subj.select("side", "account_id", hops=ibis.literal(0, "int64"), subject=subj.account_id,
                               subject_side=subj.side, via=ibis.null("string"), link=ibis.literal("listed"),
                               entry=subj.entry, how=subj.how)]
            # one hop: paid / was paid by a listed account
            pairs = tx.select("sender_id", "receiver_id").distinct()
            ds = pairs.group_by("sender_id").aggregate(deg_s=pairs.count())
            dr = pairs.group_by("receiver_id").aggregate(deg_r=pairs.count())
            pairs = ctx.engine.materialize(pairs.join(ds, "sender_id").join(dr, "receiver_id"))
            ss, sr = subj.filter(subj.side == "sender"), subj.filter(subj.side == "receiver")
            h1s = pairs.join(ss, pairs.sender_id == ss.account_id).select(
                side=ibis.literal("receiver"), account_id=pairs.receiver_id, hops=ibis.literal(1, "int64"), subject=ss.account_id,
                subject_side=ibis.literal("sender"), via=ibis.null("string"), link=ibis.literal("paid"), entry=ss.entry, how=ss.how,
                via_deg=pairs.deg_r)
            h1r = pairs.join(sr, pairs.receiver_id == sr.account_id).select(
                side=ibis.literal("sender"), account_id=pairs.sender_id, hops=ibis.literal(1, "int64"), subject=sr.account_id,
                subject_side=ibis.literal("receiver"), via=ibis.null("string"), link=ibis.literal("paid"), entry=sr.entry, how=sr.how,
                via_deg=pairs.deg_s)
            out += [h1s.drop("via_deg"), h1r.drop("via_deg")]
            # one hop: shares a phone number with a listed account
            sp = subj.join(acct, (subj.side == acct.side) & (subj.account_id == acct.account_id)).select(
                subj.side, subj.account_id, subj.entry, subj.how, acct.phone_key).filter(lambda t: t.phone_key.notnull())
            a2 = acct.filter(acct.phone_key.notnull()).select("side", "account_id", "phone_key").distinct()
            ph = sp.join(a2, (sp.phone_key == a2.phone_key) & ~((sp.side == a2.side) & (sp.account_id == a2.account_id)))
            out.append(ph.select(side=a2.side, account_id=a2.account_id, hops=ibis.literal(1, "int64"), subject=sp.account_id,
                                 subject_side=sp.side, via=ibis.null("string"), link=ibis.literal("phone"), entry=sp.entry, how=sp.how))
            # two hops: shares a counterparty (the one-hop account, not too busy) with the listed account
            if p.max_hops >= 2:
                v = h1s.filter(h1s.via_deg <= p.max_via_degree)  # via = receiver paid by a listed sender
                j = v.join(pairs, (pairs.receiver_id == v.account_id) & (pairs.sender_id != v.subject))
                out.append(j.select(side=ibis.literal("sender"), account_id=pairs.sender_id, hops=ibis.literal(2, "int64"), subject=v.subject,
                                    subject_side=ibis.literal("sender"), via=v.account_id, link=ibis.literal("common"), entry=v.entry, how=v.how))
                v = h1r.filter(h1r.via_deg <= p.max_via_degree)  # via = sender paying a listed receiver
                j = v.join(pairs, (pairs.sender_id == v.account_id) & (pairs.receiver_id != v.subject))
                out.append(j.select(side=ibis.literal("receiver"), account_id=pairs.receiver_id, hops=ibis.literal(2, "int64"), subject=v.subject,
                                    subject_side=ibis.literal("receiver"), via=v.account_id, link=ibis.literal("common"), entry=v.entry, how=v.how))
            allp = out[0]
            for o in out[1:]:
                allp = allp.union(o, distinct=True)
            return allp.filter(allp.hops <= p.max_hops)

        return ctx.cached("i23_links", build)

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        lk = self.links(ctx)
        lk = lk.filter(lk.side == side)
        # the shortest path, ties broken by the smallest (subject side, subject, via, entry): deterministic
        key = (lk.hops.cast("string") + "|" + lk.subject_side + "|" + lk.subject + "|" + lk.via.fill_null("")
               + "|" + lk.entry.cast("string").lpad(9, "0") + "|" + lk.how + "|" + lk.link)
        lk = lk.mutate(_key=key)
        best = lk.group_by("account_id").aggregate(_key=lk._key.min(), n_subjects=lk.subject.nunique().cast("int64"))
        j = best.join(lk, (best.account_id == lk.account_id) & (best._key == lk._key))
        j = j.select(account_id=best.account_id, n_subjects=best.n_subjects, hops=lk.hops, subject=lk.subject,
                     subject_side=lk.subject_side, via=lk.via, link=lk.link, entry=lk.entry, how=lk.how)
        strength = ibis.cases((j.hops == 0, p.listed_strength), (j.hops == 1, p.one_hop_strength), else_=p.two_hop_strength)
        return finish(j, self, j.hops <= p.max_hops, strength.cast("float64"), hops=j.hops, subject=j.subject,
                      subject_side=j.subject_side, via=j.via, link=j.link, entry=j.entry, match=j.how, n_subjects=j.n_subjects)

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        hops, link = integer(row, "i23_hops"), row.get("i23_link")
        subj, sside, via = row.get("i23_subject"), row.get("i23_subject_side"), row.get("i23_via")
        entry = f"watchlist line {integer(row, 'i23_entry')}, matched by {row.get('i23_match')}"
        if hops == 0:
            s = f"is on the watchlist ({entry})"
        elif link == "phone":
            s = f"shares a phone number with {sside} {subj}, who is on the watchlist ({entry})"
        elif hops == 1:
            s = (f"paid receiver {subj}, who is on the watchlist ({entry})" if side == "sender"
                 else f"was paid by sender {subj}, who is on the watchlist ({entry})")
        else:
            s = (f"is two hops from the watchlist: it paid receiver {via}, who was also paid by listed sender {subj} ({entry})"
                 if side == "sender" else
                 f"is two hops from the watchlist: its sender {via} also paid listed receiver {subj} ({entry})")
        k = integer(row, "i23_n_subjects")
        return s + (f"; linked to {k} listed accounts in all" if k > 1 else "")
