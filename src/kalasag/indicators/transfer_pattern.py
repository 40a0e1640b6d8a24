"""Core transaction-pattern indicators I-01 … I-12 (research note §1.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir

from pydantic import PositiveFloat, PositiveInt

from kalasag.indicators.base import DAY, Indicator, Params, finish, graded, integer, num, pct, plural, ratio, usd
from kalasag.indicators.context import Context
from kalasag.indicators.windows import max_concurrent_distinct, rolling_max, trailing

AUSTRAC_CASES = "https://www.austrac.gov.au/business/how-comply-guidance-and-resources/guidance-resources/online-transactions-lead-convictions-child-sex-offences"
FATF_2025 = "https://financialcrime.lu/2025/03/13/FATF-Online-Child-Sexual-Exploitation/index.html"
WESTPAC_TYPOLOGY = "https://preda.org/legal-breaches-allowed-westpac-customers-to-pay-for-child-sexual-abuse-undetected-austrac-alleges/"
AMLC_2020 = "https://www.bworldonline.com/editors-picks/2020/09/16/317140/online-child-porn-transactions-surge-amid-covid-19-lockdown/"
ACAMS_EGMONT = "https://online.flipbuilder.com/forvy/pink/files/basic-html/page97.html"
WHERE = {"sender": "sent to the Philippines", "receiver": "received from abroad"}


def _cp_word(side: str) -> str:
    return "beneficiaries" if side == "sender" else "senders"


# ---------------------------------------------------------------------------------------------
class LowValue(Indicator):
    id, slug, name = "I-01", "i01", "Low-value cross-border payments"
    sides = ("sender", "receiver")
    description = (
        "Most of the account's cross-border payments to the watched countries are micro payments "
        "(USD 200 or less; the core band of published cases is USD 10–100)."
    )
    source = " ; ".join([AUSTRAC_CASES, FATF_2025, AMLC_2020,
                         "https://polarherald.com/politics/justice-system/financial-watchdog-warns-of-rising-online-child-exploitation.html"])

    class Params(Params):
        max_usd: float
        core_max_usd: float
        min_transfers: int
        min_share: float
        strong_share: PositiveFloat

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        a = t.group_by("account_id").aggregate(
            n=t.count(), n_micro=t.micro.cast("int64").sum(), n_core=t.core_micro.cast("int64").sum(),
            median_usd=t.amount_usd.median(),
        )
        share = ratio(a.n_micro, a.n)
        core_share = ratio(a.n_core, a.n)
        fired = (a.n_micro >= p.min_transfers) & (share >= p.min_share)
        strength = graded(fired, (share + core_share) / 2.0, p.strong_share)
        return finish(a, self, fired, strength, n=a.n, n_micro=a.n_micro, share=share, core_share=core_share,
                      median_usd=a.median_usd, max_usd=ibis.literal(p.max_usd))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        n, m = integer(row, "i01_n"), integer(row, "i01_n_micro")
        return (f"{m} of {plural(n, 'payment')} {WHERE[side]} ({pct(num(row, 'i01_share'))}) were micro payments "
                f"of {usd(num(row, 'i01_max_usd'))} or less (median {usd(num(row, 'i01_median_usd'))})")


# ---------------------------------------------------------------------------------------------
class Frequency(Indicator):
    id, slug, name = "I-02", "i02", "High frequency from one sender"
    sides = ("sender", "receiver")
    description = (
        "Many cross-border payments in a short rolling window: for a sender, its payments to the "
        "watched countries; for a receiver, the payments from its single most frequent foreign sender."
    )
    source = " ; ".join([AUSTRAC_CASES,
                         "https://newsbite.mooo.com/www.theaustralian.com.au/business/financial-services/austrac-sets-out-case-on-horrors-of-child-abuse/news-story/85b53e61902d3b56472fade3edc20941",
                         "https://www.ijmuk.org/news/australian-convicted-for-livestreaming-sexual-abuse-of-filipino-children"])

    class Params(Params):
        long_window_days: PositiveInt
        long_min: int
        short_window_days: PositiveInt
        short_min: int
        strong_count: PositiveInt

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        keys = ["account_id"] if side == "sender" else ["account_id", "counterpart_id"]
        lo = rolling_max(t, keys, p.long_window_days * DAY, "max_long")
        sh = rolling_max(t, keys, p.short_window_days * DAY, "max_short")
        if side == "receiver":
            lo = lo.group_by("account_id").aggregate(max_long=lo.max_long.max())
            sh = sh.group_by("account_id").aggregate(max_short=sh.max_short.max())
        a = lo.join(sh, "account_id")
        fired = (a.max_long >= p.long_min) | (a.max_short >= p.short_min)
        strength = graded(fired, a.max_long, p.strong_count)
        return finish(a, self, fired, strength, max_long=a.max_long, max_short=a.max_short,
                      long_days=ibis.literal(p.long_window_days), short_days=ibis.literal(p.short_window_days),
                      long_min=ibis.literal(p.long_min))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        lo, sh = integer(row, "i02_max_long"), integer(row, "i02_max_short")
        ld, sd = integer(row, "i02_long_days"), integer(row, "i02_short_days")
        what = f"sent {plural(lo, 'payment')}" if side == "sender" else f"received {plural(lo, 'payment')} from a single foreign sender"
        return f"{what} within {ld} days and {sh} within {sd} days (threshold {integer(row, 'i02_long_min')} in {ld} days)"


# ---------------------------------------------------------------------------------------------
class FanIn(Indicator):
    id, slug, name = "I-03", "i03", "Fan-in: many unrelated foreign senders"
    sides = ("receiver", "sender")
    description = (
        "A beneficiary receives from many distinct unrelated foreign senders in a rolling window "
        "(stronger when they are in several countries). Sender form: the sender pays such a beneficiary."
    )
    source = " ; ".join([AUSTRAC_CASES,
                         "https://www.sunstar.com.ph/article/1858490/davao/local-news/philippines-global-hotspot-for-online-sexual-child-exploitation",
                         "http://www.ice.gov/news/releases/29-arrested-international-case-involving-live-online-webcam-child-abuse"])

    class Params(Params):
        window_days: PositiveInt
        min_senders: int
        strong_senders: PositiveInt
        min_countries: int
        country_bonus: float

    def receiver_fanin(self, ctx: Context) -> ir.Table:
        p = ctx.params(self.id)

        def build() -> ir.Table:
            t = ctx.side_tx("receiver")
            t = t.filter(t.unrelated)
            mx = max_concurrent_distinct(t, ["account_id"], "counterpart_id", p.window_days * DAY, "max_senders")
            tot = t.group_by("account_id").aggregate(
                n_senders=t.counterpart_id.nunique().cast("int64"), n_countries=t.sender_country.nunique().cast("int64"))
            a = mx.join(tot, "account_id")
            fired = a.max_senders >= p.min_senders
            bonus = ibis.ifelse(a.n_countries >= p.min_countries, p.country_bonus, 0.0)
            strength = graded(fired, a.max_senders.cast("float64") / p.strong_senders + bonus, 1.0)
            return a.mutate(fired=fired.fill_null(False), strength=strength)

        return ctx.cached("I-03.receiver", build)

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        r = self.receiver_fanin(ctx)
        if side == "receiver":
            return finish(r, self, r.fired, r.strength, max_senders=r.max_senders, n_senders=r.n_senders,
                          n_countries=r.n_countries, window_days=ibis.literal(p.window_days),
                          min_senders=ibis.literal(p.min_senders))
        t = ctx.side_tx("sender")
        t = t.filter(t.unrelated)
        pairs = t.select("account_id", "counterpart_id").distinct()
        j = pairs.join(r, pairs.counterpart_id == r.account_id).select(
            account_id=pairs.account_id, receiver=pairs.counterpart_id, max_senders=r.max_senders,
            n_countries=r.n_countries, fired=r.fired, strength=r.strength)
        a = j.group_by("account_id").aggregate(
            max_senders=j.max_senders.max(), n_fanin_receivers=j.fired.cast("int64").sum(),
            strength=j.strength.max(), n_countries=j.n_countries.max())
        return finish(a, self, a.n_fanin_receivers > 0, a.strength, max_senders=a.max_senders,
                      n_fanin_receivers=a.n_fanin_receivers, n_countries=a.n_countries,
                      window_days=ibis.literal(p.window_days), min_senders=ibis.literal(p.min_senders))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        m, d, c = integer(row, "i03_max_senders"), integer(row, "i03_window_days"), integer(row, "i03_n_countries")
        thr = integer(row, "i03_min_senders")
        if side == "receiver":
            return (f"received from {m} unrelated foreign senders within {d} days (threshold {thr}); "
                    f"{plural(integer(row, 'i03_n_senders'), 'unrelated sender')} in {plural(c, 'country', 'countries')} overall")
        k = integer(row, "i03_n_fanin_receivers")
        who = "who receives" if k == 1 else "who each receive"
        return (f"paid {plural(k, 'beneficiary', 'beneficiaries')} {who} from many unrelated foreign senders "
                f"(up to {m} within {d} days; threshold {thr})")


# ---------------------------------------------------------------------------------------------
class FanOut(Indicator):
    id, slug, name = "I-04", "i04", "Fan-out: one sender to many unrelated beneficiaries"
    sides = ("sender", "receiver")
    description = (
        "A sender pays many distinct unrelated beneficiaries in the watched countries in a rolling "
        "window; beneficiaries sharing a surname count once. Receiver form: paid by such a sender."
    )
    source = " ; ".join([WESTPAC_TYPOLOGY, AMLC_2020])

    class Params(Params):
        window_days: PositiveInt
        min_beneficiaries: int
        strong_beneficiaries: PositiveInt

    def sender_fanout(self, ctx: Context) -> ir.Table:
        p = ctx.params(self.id)

        def build() -> ir.Table:
            t = ctx.side_tx("sender")
            t = t.filter(t.unrelated)
            mx = max_concurrent_distinct(t, ["account_id"], "receiver_family", p.window_days * DAY, "max_beneficiaries")
            tot = t.group_by("account_id").aggregate(n_beneficiaries=t.counterpart_id.nunique().cast("int64"))
            a = mx.join(tot, "account_id")
            fired = a.max_beneficiaries >= p.min_beneficiaries
            return a.mutate(fired=fired.fill_null(False), strength=graded(fired, a.max_beneficiaries, p.strong_beneficiaries))

        return ctx.cached("I-04.sender", build)

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        s = self.sender_fanout(ctx)
        lit = dict(window_days=ibis.literal(p.window_days), min_beneficiaries=ibis.literal(p.min_beneficiaries))
        if side == "sender":
            return finish(s, self, s.fired, s.strength, max_beneficiaries=s.max_beneficiaries,
                          n_beneficiaries=s.n_beneficiaries, **lit)
        t = ctx.side_tx("receiver")
        t = t.filter(t.unrelated)
        pairs = t.select("account_id", "counterpart_id").distinct()
        j = pairs.join(s, pairs.counterpart_id == s.account_id).select(
            account_id=pairs.account_id, max_beneficiaries=s.max_beneficiaries, fired=s.fired, strength=s.strength)
        a = j.group_by("account_id").aggregate(
            max_beneficiaries=j.max_beneficiaries.max(), n_fanout_senders=j.fired.cast("int64").sum(),
            strength=j.strength.max())
        return finish(a, self, a.n_fanout_senders > 0, a.strength, max_beneficiaries=a.max_beneficiaries,
                      n_fanout_senders=a.n_fanout_senders, **lit)

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        m, d, thr = integer(row, "i04_max_beneficiaries"), integer(row, "i04_window_days"), integer(row, "i04_min_beneficiaries")
        if side == "sender":
            return (f"paid {m} unrelated beneficiaries with different surnames within {d} days (threshold {thr}); "
                    f"{plural(integer(row, 'i04_n_beneficiaries'), 'unrelated beneficiary', 'unrelated beneficiaries')} overall")
        k = integer(row, "i04_n_fanout_senders")
        who = "who pays" if k == 1 else "who each pay"
        return (f"paid by {plural(k, 'foreign sender')} {who} many unrelated beneficiaries "
                f"(up to {m} within {d} days; threshold {thr})")


# ---------------------------------------------------------------------------------------------
class Unrelated(Indicator):
    id, slug, name = "I-05", "i05", "No apparent family link"
    sides = ("sender", "receiver")
    description = (
        "Most cross-border payments go between people who share no family name (surname or Filipino "
        "middle name, compared after normalization); the key separator from family remittances."
    )
    source = " ; ".join([WESTPAC_TYPOLOGY, ACAMS_EGMONT])

    class Params(Params):
        use_middle_name: bool
        unknown_counts_as_unrelated: bool
        min_transfers: int
        min_share: float
        strong_share: PositiveFloat

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        cp_unrel = ibis.ifelse(t.unrelated, t.counterpart_id, ibis.null("string"))
        cp_rel = ibis.ifelse(t.related.fill_null(False), t.counterpart_id, ibis.null("string"))
        cp_unk = ibis.ifelse(t.related.isnull(), t.counterpart_id, ibis.null("string"))
        a = t.group_by("account_id").aggregate(
            n=t.count(), n_unrelated=t.unrelated.cast("int64").sum(),
            cp_unrelated=cp_unrel.nunique().cast("int64"), cp_related=cp_rel.nunique().cast("int64"),
            cp_unknown=cp_unk.nunique().cast("int64"), cp=t.counterpart_id.nunique().cast("int64"))
        share = ratio(a.n_unrelated, a.n)
        fired = (a.n_unrelated >= p.min_transfers) & (share >= p.min_share)
        return finish(a, self, fired, graded(fired, share, p.strong_share), n=a.n, n_unrelated=a.n_unrelated,
                      share=share, counterparties=a.cp, cp_unrelated=a.cp_unrelated, cp_related=a.cp_related,
                      cp_unknown=a.cp_unknown)

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        n, u = integer(row, "i05_n"), integer(row, "i05_n_unrelated")
        cp, cu = integer(row, "i05_counterparties"), integer(row, "i05_cp_unrelated")
        return (f"{u} of {plural(n, 'cross-border payment')} ({pct(num(row, 'i05_share'))}) involve counterparties "
                f"sharing no family name with the account ({cu} of {cp} {_cp_word(side)}"
                + (f"; {integer(row, 'i05_cp_unknown')} without usable names" if integer(row, "i05_cp_unknown") else "")
                + ")")


# ---------------------------------------------------------------------------------------------
class Irregular(Indicator):
    id, slug, name = "I-06", "i06", "Irregular rhythm, unlike salary remittances"
    sides = ("sender",)
    description = (
        "Payments are not on a monthly payday rhythm: irregular gaps between payments (coefficient "
        "of variation above a threshold) or repeated bursts of several payments within a week."
    )
    source = ACAMS_EGMONT

    class Params(Params):
        min_transfers: int
        cv_min: float
        cv_strong: PositiveFloat
        burst_window_days: PositiveInt
        burst_period_days: PositiveInt
        min_bursts: int
        strong_bursts: PositiveInt

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        w = ibis.window(group_by=t.account_id, order_by=t.ts_epoch)
        t = t.mutate(_gap=(t.ts_epoch - t.ts_epoch.lag().over(w)).cast("float64") / DAY,
                     _burst=t.ts_epoch.count().over(trailing(t, ["account_id"], p.burst_window_days * DAY)))
        t = t.mutate(_burst=(t._burst >= 2).cast("int64"))
        t = t.mutate(_bursts=t._burst.sum().over(trailing(t, ["account_id"], p.burst_period_days * DAY)))
        a = t.group_by("account_id").aggregate(n=t.count(), gap_mean=t._gap.mean(), gap_std=t._gap.std(),
                                               max_bursts=t._bursts.max())
        cv = ibis.ifelse((a.n >= p.min_transfers) & (a.gap_mean > 0), a.gap_std / a.gap_mean, ibis.null("float64"))
        fired = (cv > p.cv_min).fill_null(False) | (a.max_bursts >= p.min_bursts)
        strength = ibis.greatest(graded(fired, cv.fill_null(0.0), p.cv_strong), graded(fired, a.max_bursts, p.strong_bursts))
        return finish(a, self, fired, strength, n=a.n, cv=cv, mean_gap_days=a.gap_mean, max_bursts=a.max_bursts,
                      burst_days=ibis.literal(p.burst_window_days), period_days=ibis.literal(p.burst_period_days))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        cv = row.get("i06_cv")
        cvs = "n/a" if cv is None or num(row, "i06_cv", -1) < 0 else f"{num(row, 'i06_cv'):.1f}"
        return (f"irregular rhythm: gaps between {plural(integer(row, 'i06_n'), 'payment')} vary with coefficient of "
                f"variation {cvs} (mean {num(row, 'i06_mean_gap_days'):.1f} days), and up to "
                f"{integer(row, 'i06_max_bursts')} payments came within {integer(row, 'i06_burst_days')} days of a previous one "
                f"in {integer(row, 'i06_period_days')} days")


# ---------------------------------------------------------------------------------------------
class Night(Indicator):
    id, slug, name = "I-07", "i07", "Late-night sending in sender local time"
    sides = ("sender", "receiver")
    description = (
        "A large share of the cross-border payments were sent late at night or early in the "
        "morning in the sender's local time (zone derived from the sender's country)."
    )
    source = " ; ".join([FATF_2025, "https://cm1.se/rapport-projekt-indikatorer/"])

    class Params(Params):
        night_start_hour: int
        night_end_hour: int
        min_transfers: int
        min_share: float
        strong_share: PositiveFloat

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        t = t.filter(t.night.notnull())
        a = t.group_by("account_id").aggregate(n=t.count(), n_night=t.night.cast("int64").sum())
        share = ratio(a.n_night, a.n)
        fired = (a.n >= p.min_transfers) & (share >= p.min_share)
        return finish(a, self, fired, graded(fired, share, p.strong_share), n=a.n, n_night=a.n_night, share=share,
                      start_hour=ibis.literal(p.night_start_hour), end_hour=ibis.literal(p.night_end_hour))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        who = "" if side == "sender" else "received "
        return (f"{pct(num(row, 'i07_share'))} of the {integer(row, 'i07_n')} payments {who}were sent between "
                f"{integer(row, 'i07_start_hour'):02d}:00 and {integer(row, 'i07_end_hour'):02d}:00 sender local time "
                f"({integer(row, 'i07_n_night')} payments)")


# ---------------------------------------------------------------------------------------------
class RoundAmounts(Indicator):
    id, slug, name = "I-08", "i08", "Even or round amounts"
    sides = ("sender", "receiver")
    description = "Cross-border payments are exact multiples of 5 in the sending currency, without cents (weak)."
    source = FATF_2025

    class Params(Params):
        multiple: PositiveFloat
        min_transfers: int
        min_share: float
        strong_share: PositiveFloat

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        a = t.group_by("account_id").aggregate(n=t.count(), n_round=t.round_amount.cast("int64").sum())
        share = ratio(a.n_round, a.n)
        fired = (a.n_round >= p.min_transfers) & (share >= p.min_share)
        return finish(a, self, fired, graded(fired, share, p.strong_share), n=a.n, n_round=a.n_round, share=share,
                      multiple=ibis.literal(p.multiple))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        m = num(row, "i08_multiple")
        return (f"{integer(row, 'i08_n_round')} of {plural(integer(row, 'i08_n'), 'payment')} ({pct(num(row, 'i08_share'))}) "
                f"were round multiples of {m:g} in the sending currency")


# ---------------------------------------------------------------------------------------------
class Narrative(Indicator):
    id, slug, name = "I-09", "i09", "Innocuous payment narrative"
    sides = ("sender", "receiver")
    description = (
        "The reference text of payments between unrelated parties uses the innocuous purposes seen "
        "in cases (school fees, gift, medical bills, load, baon…) or a social-media handle."
    )
    source = " ; ".join(["https://austrac.gov.au/node/1087", "https://www.austrac.gov.au/how-austrac-helps-protect-children-and-prevents-sexual-exploitation",
                         FATF_2025, "https://online.flipbuilder.com/forvy/pink/files/basic-html/page95.html",
                         "https://pcij.org/article/6150/the-filipino-mothers-selling-their-children-for-online-sexual-abuse"])

    class Params(Params):
        keywords: list[str]
        handle_pattern: str
        only_unrelated: bool
        min_transfers: int
        min_share: float
        strong_share: PositiveFloat

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        hit = t.keyword.notnull()
        if p.only_unrelated:
            hit = hit & t.unrelated
        a = t.group_by("account_id").aggregate(
            n=t.count(), n_keyword=hit.cast("int64").sum(),
            example=ibis.ifelse(hit, t.keyword, ibis.null("string")).max())
        share = ratio(a.n_keyword, a.n)
        fired = (a.n_keyword >= p.min_transfers) & (share >= p.min_share)
        return finish(a, self, fired, graded(fired, share, p.strong_share), n=a.n, n_keyword=a.n_keyword,
                      share=share, example=a.example)

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        ex = row.get("i09_example") or ""
        return (f"{integer(row, 'i09_n_keyword')} of {plural(integer(row, 'i09_n'), 'payment')} ({pct(num(row, 'i09_share'))}) "
                f"to or from unrelated parties carried an innocuous narrative such as '{ex}'")


# ---------------------------------------------------------------------------------------------
class Escalation(Indicator):
    id, slug, name = "I-10", "i10", "Escalation over time"
    sides = ("sender",)
    description = (
        "The number or total of payments in a rolling 90 days is at least twice that of the 90 days "
        "before, while the average payment stays in the micro band."
    )
    source = "https://austrac.gov.au/node/1087"

    class Params(Params):
        period_days: PositiveInt
        min_previous: int
        min_ratio: float
        strong_ratio: PositiveFloat

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p, p01 = ctx.params(self.id), ctx.params("I-01")
        t = ctx.side_tx(side)
        per = p.period_days * DAY
        w1, w2 = trailing(t, ["account_id"], per), trailing(t, ["account_id"], 2 * per)
        t = t.mutate(c1=t.ts_epoch.count().over(w1), c2=t.ts_epoch.count().over(w2),
                     s1=t.amount_usd.sum().over(w1), s2=t.amount_usd.sum().over(w2))
        t = t.mutate(c0=t.c2 - t.c1, s0=t.s2 - t.s1)
        ok = (t.c0 >= p.min_previous) & (t.c0 > 0) & (ratio(t.s1, t.c1) <= p01.max_usd)
        r = ibis.ifelse(ok, ibis.greatest(ratio(t.c1, t.c0), ratio(t.s1, t.s0)), ibis.null("float64"))
        t = t.mutate(_r=r)
        t = t.filter(t._r.notnull())
        t = t.mutate(_rank=ibis.row_number().over(ibis.window(group_by=t.account_id, order_by=[t._r.desc(), t.ts_epoch])))
        a = t.filter(t._rank == 0)
        fired = a._r >= p.min_ratio
        return finish(a, self, fired, graded(fired, a._r, p.strong_ratio), growth=a._r, count_recent=a.c1,
                      count_previous=a.c0, usd_recent=a.s1, usd_previous=a.s0, period_days=ibis.literal(p.period_days))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        d = integer(row, "i10_period_days")
        return (f"payments escalated {num(row, 'i10_growth'):.1f}-fold: {integer(row, 'i10_count_recent')} payments "
                f"({usd(num(row, 'i10_usd_recent'))}) in {d} days against {integer(row, 'i10_count_previous')} "
                f"({usd(num(row, 'i10_usd_previous'))}) in the {d} days before, all in the micro band on average")


# ---------------------------------------------------------------------------------------------
class LongRunning(Indicator):
    id, slug, name = "I-11", "i11", "Long-running pattern"
    sides = ("sender",)
    description = (
        "Micro payments to unrelated beneficiaries in the watched countries over a year or more, or "
        "a large cumulative total of such payments within any 12 months."
    )
    source = " ; ".join(["https://austrac.gov.au/node/1095", "https://austrac.gov.au/node/1087",
                         "https://newsbite.mooo.com/www.theaustralian.com.au/business/financial-services/austrac-sets-out-case-on-horrors-of-child-abuse/news-story/85b53e61902d3b56472fade3edc20941"])

    class Params(Params):
        min_span_days: PositiveInt
        min_transfers: int
        sum_window_days: PositiveInt
        min_usd: float
        strong_span_days: PositiveInt
        strong_usd: PositiveFloat

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        t = t.filter(t.micro & t.unrelated)
        a = t.group_by("account_id").aggregate(n=t.count(), first=t.ts_epoch.min(), last=t.ts_epoch.max(),
                                               total_usd=t.amount_usd.sum())
        s = rolling_max(t, ["account_id"], p.sum_window_days * DAY, "max_usd_window", value="amount_usd")
        a = a.join(s, "account_id")
        span = (a.last - a.first).cast("float64") / DAY
        fired = ((span >= p.min_span_days) & (a.n >= p.min_transfers)) | (a.max_usd_window >= p.min_usd)
        strength = ibis.greatest(graded(fired, span, p.strong_span_days), graded(fired, a.max_usd_window, p.strong_usd))
        return finish(a, self, fired, strength, n=a.n, span_days=span, total_usd=a.total_usd,
                      max_usd_window=a.max_usd_window, window_days=ibis.literal(p.sum_window_days))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        return (f"{plural(integer(row, 'i11_n'), 'micro payment')} to unrelated beneficiaries over "
                f"{num(row, 'i11_span_days'):.0f} days ({usd(num(row, 'i11_total_usd'))}; up to "
                f"{usd(num(row, 'i11_max_usd_window'))} within {integer(row, 'i11_window_days')} days)")


# ---------------------------------------------------------------------------------------------
class Channel(Indicator):
    id, slug, name = "I-12", "i12", "Money-service or e-wallet channel"
    sides = ("sender", "receiver")
    description = (
        "Most cross-border payments go through money-transfer operators or e-wallets, the channels "
        "that carry most OSEC payments in AMLC data (context, weak)."
    )
    source = " ; ".join([AMLC_2020, "https://mb.com.ph/2021/02/12/online-sexual-exploitation-of-children-the-bad-side-of-internet-connectivity",
                         "https://www.bworldonline.com/top-stories/2023/07/19/534743/amlc-flags-p1-5-billion-transactions-related-to-online-child-sex-abuse/"])

    class Params(Params):
        channels: list[str]
        min_transfers: int
        min_share: float
        strong_share: PositiveFloat

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        t = t.filter(t.channel.notnull())
        hit = t.channel.lower().isin([c.lower() for c in p.channels])
        a = t.group_by("account_id").aggregate(n=t.count(), n_channel=hit.cast("int64").sum())
        share = ratio(a.n_channel, a.n)
        fired = (a.n_channel >= p.min_transfers) & (share >= p.min_share)
        return finish(a, self, fired, graded(fired, share, p.strong_share), n=a.n, n_channel=a.n_channel, share=share,
                      channels=ibis.literal("/".join(p.channels)))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        return (f"{integer(row, 'i12_n_channel')} of {plural(integer(row, 'i12_n'), 'payment')} "
                f"({pct(num(row, 'i12_share'))}) went through {row.get('i12_channels') or 'money-service'} channels")
