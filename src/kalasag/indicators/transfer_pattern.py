"""Core transaction-pattern indicators I-01 … I-12 (research note §1.1), each with its batch
aggregation, its decision (written once, kalasag.indicators.ops) and its stream state."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import PositiveFloat, PositiveInt
from sortedcontainers import SortedList

from kalasag.indicators.base import DAY, Indicator, Params, StreamState, integer, num, pct, plural, shared, usd
from kalasag.indicators.context import Context
from kalasag.indicators.ops import IBIS, compile_scalar
from kalasag.indicators.windows import (
    WindowCount, WindowDistinct, WindowSum, from_exact, max_concurrent_distinct, rolling_max, trailing,
)

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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        t = ctx.side_tx(side)
        counts = t.group_by("account_id").aggregate(
            n=t.count(), n_micro=t.micro.cast("int64").sum(), n_core=t.core_micro.cast("int64").sum(),
        )
        return counts.left_join(sorted_median(t, "amount_usd", "median_usd"), "account_id").drop("account_id_right")

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        share = X.ratio(m["n_micro"], m["n"])
        core_share = X.ratio(m["n_core"], m["n"])
        fired = X.and_(X.ge(m["n_micro"], p.min_transfers), X.ge(share, p.min_share))
        strength = X.graded(fired, (share + core_share) / 2.0, p.strong_share)
        return dict(fired=fired, strength=strength, n=m["n"], n_micro=m["n_micro"], share=share, core_share=core_share,
                    median_usd=m["median_usd"], max_usd=X.lit(p.max_usd))

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        return LowValueState()

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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        keys = ["account_id"] if side == "sender" else ["account_id", "counterpart_id"]
        lo = rolling_max(t, keys, p.long_window_days * DAY, "max_long")
        sh = rolling_max(t, keys, p.short_window_days * DAY, "max_short")
        if side == "receiver":
            lo = lo.group_by("account_id").aggregate(max_long=lo.max_long.max())
            sh = sh.group_by("account_id").aggregate(max_short=sh.max_short.max())
        return lo.join(sh, "account_id")

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        fired = X.or_(X.ge(m["max_long"], p.long_min), X.ge(m["max_short"], p.short_min))
        return dict(fired=fired, strength=X.graded(fired, m["max_long"], p.strong_count), max_long=m["max_long"],
                    max_short=m["max_short"], long_days=X.lit(p.long_window_days), short_days=X.lit(p.short_window_days),
                    long_min=X.lit(p.long_min))

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        p = params[self.id]
        return FrequencyState(p.long_window_days * DAY, p.short_window_days * DAY, per_counterpart=side == "receiver")

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

    stream = True
    dependent_side = {"receiver": "sender"}  # a sender's form reads its beneficiaries' fan-in…
    dependent_reads = ("fired", "strength", "max_senders", "n_countries")  # …these columns of it

    def receiver_fanin(self, ctx: Context) -> ir.Table:
        p = ctx.params(self.id)

        def build() -> ir.Table:
            t = ctx.side_tx("receiver")
            t = t.filter(t.unrelated)
            mx = max_concurrent_distinct(t, ["account_id"], "counterpart_id", p.window_days * DAY, "max_senders")
            tot = t.group_by("account_id").aggregate(
                n_senders=t.counterpart_id.nunique().cast("int64"), n_countries=t.sender_country.nunique().cast("int64"))
            a = mx.join(tot, "account_id")
            d = self.decide(a, p, IBIS, "receiver")
            return a.mutate(fired=d["fired"].fill_null(False), strength=d["strength"])

        return ctx.cached("I-03.receiver", build)

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        r = self.receiver_fanin(ctx)
        if side == "receiver":
            return r
        t = ctx.side_tx("sender")
        t = t.filter(t.unrelated)
        pairs = t.select("account_id", "counterpart_id").distinct()
        j = pairs.join(r, pairs.counterpart_id == r.account_id).select(
            account_id=pairs.account_id, receiver=pairs.counterpart_id, max_senders=r.max_senders,
            n_countries=r.n_countries, fired=r.fired, strength=r.strength)
        return j.group_by("account_id").aggregate(
            max_senders=j.max_senders.max(), n_fanin_receivers=j.fired.cast("int64").sum(),
            strength=j.strength.max(), n_countries=j.n_countries.max())

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        lit = dict(window_days=X.lit(p.window_days), min_senders=X.lit(p.min_senders))
        if side == "receiver":
            fired = X.ge(m["max_senders"], p.min_senders)
            bonus = X.ifelse(X.ge(m["n_countries"], p.min_countries), p.country_bonus, 0.0)
            strength = X.graded(fired, X.tofloat(m["max_senders"]) / p.strong_senders + bonus, 1.0)
            return dict(fired=fired, strength=strength, max_senders=m["max_senders"], n_senders=m["n_senders"],
                        n_countries=m["n_countries"], **lit)
        return dict(fired=X.gt(m["n_fanin_receivers"], 0), strength=m["strength"], max_senders=m["max_senders"],
                    n_fanin_receivers=m["n_fanin_receivers"], n_countries=m["n_countries"], **lit)

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        if side == "receiver":
            return FanInState(params[self.id].window_days * DAY)
        return PaysFanInState()

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

    stream = True
    dependent_side = {"sender": "receiver"}  # a receiver's form reads its senders' fan-out…
    dependent_reads = ("fired", "strength", "max_beneficiaries")  # …these columns of it

    def sender_fanout(self, ctx: Context) -> ir.Table:
        p = ctx.params(self.id)

        def build() -> ir.Table:
            t = ctx.side_tx("sender")
            t = t.filter(t.unrelated)
            mx = max_concurrent_distinct(t, ["account_id"], "receiver_family", p.window_days * DAY, "max_beneficiaries")
            tot = t.group_by("account_id").aggregate(n_beneficiaries=t.counterpart_id.nunique().cast("int64"))
            a = mx.join(tot, "account_id")
            d = self.decide(a, p, IBIS, "sender")
            return a.mutate(fired=d["fired"].fill_null(False), strength=d["strength"])

        return ctx.cached("I-04.sender", build)

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        s = self.sender_fanout(ctx)
        if side == "sender":
            return s
        t = ctx.side_tx("receiver")
        t = t.filter(t.unrelated)
        pairs = t.select("account_id", "counterpart_id").distinct()
        j = pairs.join(s, pairs.counterpart_id == s.account_id).select(
            account_id=pairs.account_id, max_beneficiaries=s.max_beneficiaries, fired=s.fired, strength=s.strength)
        return j.group_by("account_id").aggregate(
            max_beneficiaries=j.max_beneficiaries.max(), n_fanout_senders=j.fired.cast("int64").sum(),
            strength=j.strength.max())

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        lit = dict(window_days=X.lit(p.window_days), min_beneficiaries=X.lit(p.min_beneficiaries))
        if side == "sender":
            fired = X.ge(m["max_beneficiaries"], p.min_beneficiaries)
            return dict(fired=fired, strength=X.graded(fired, m["max_beneficiaries"], p.strong_beneficiaries),
                        max_beneficiaries=m["max_beneficiaries"], n_beneficiaries=m["n_beneficiaries"], **lit)
        return dict(fired=X.gt(m["n_fanout_senders"], 0), strength=m["strength"], max_beneficiaries=m["max_beneficiaries"],
                    n_fanout_senders=m["n_fanout_senders"], **lit)

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        if side == "sender":
            return FanOutState(params[self.id].window_days * DAY)
        return PaidByFanOutState()

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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        t = ctx.side_tx(side)
        # the relation is a property of the sender–receiver pair (Context.build), so the distinct
        # counterparts of each kind are counted on one row per pair: two plain aggregations instead
        # of four COUNT(DISTINCT)s over every transfer, whose hash tables grow with the transfers
        # (docs/benchmarks.md, "Session 11")
        pr = t.group_by(["account_id", "counterpart_id"]).aggregate(
            n=t.count(), n_unrelated=t.unrelated.cast("int64").sum(),
            unrel=t.unrelated.cast("int64").max(), rel=t.related.fill_null(False).cast("int64").max(),
            unk=t.related.isnull().cast("int64").max())
        return pr.group_by("account_id").aggregate(
            n=pr.n.sum(), n_unrelated=pr.n_unrelated.sum(),
            cp_unrelated=pr.unrel.sum().cast("int64"), cp_related=pr.rel.sum().cast("int64"),
            cp_unknown=pr.unk.sum().cast("int64"), cp=pr.counterpart_id.count().cast("int64"))

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        share = X.ratio(m["n_unrelated"], m["n"])
        fired = X.and_(X.ge(m["n_unrelated"], p.min_transfers), X.ge(share, p.min_share))
        return dict(fired=fired, strength=X.graded(fired, share, p.strong_share), n=m["n"], n_unrelated=m["n_unrelated"],
                    share=share, counterparties=m["cp"], cp_unrelated=m["cp_unrelated"], cp_related=m["cp_related"],
                    cp_unknown=m["cp_unknown"])

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        return UnrelatedState()

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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        w = ibis.window(group_by=t.account_id, order_by=t.ts_epoch)
        t = t.mutate(_gap=(t.ts_epoch - t.ts_epoch.lag().over(w)).cast("float64") / DAY,
                     _burst=t.ts_epoch.count().over(trailing(t, ["account_id"], p.burst_window_days * DAY)))
        t = t.mutate(_burst=(t._burst >= 2).cast("int64"))
        t = t.mutate(_bursts=t._burst.sum().over(trailing(t, ["account_id"], p.burst_period_days * DAY)))
        return t.group_by("account_id").aggregate(n=t.count(), gap_mean=t._gap.mean(), gap_std=t._gap.std(),
                                                  max_bursts=t._bursts.max())

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        cv = X.ifelse(X.and_(X.ge(m["n"], p.min_transfers), X.gt(m["gap_mean"], 0)), X.div(m["gap_std"], m["gap_mean"]),
                      X.null("float64"))
        fired = X.or_(X.fill_null(X.gt(cv, p.cv_min), False), X.ge(m["max_bursts"], p.min_bursts))
        strength = X.greatest(X.graded(fired, X.fill_null(cv, 0.0), p.cv_strong), X.graded(fired, m["max_bursts"], p.strong_bursts))
        return dict(fired=fired, strength=strength, n=m["n"], cv=cv, mean_gap_days=m["gap_mean"], max_bursts=m["max_bursts"],
                    burst_days=X.lit(p.burst_window_days), period_days=X.lit(p.burst_period_days))

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        p = params[self.id]
        return IrregularState(p.burst_window_days * DAY, p.burst_period_days * DAY)

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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        t = ctx.side_tx(side)
        t = t.filter(t.night.notnull())
        return t.group_by("account_id").aggregate(n=t.count(), n_night=t.night.cast("int64").sum())

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        share = X.ratio(m["n_night"], m["n"])
        fired = X.and_(X.ge(m["n"], p.min_transfers), X.ge(share, p.min_share))
        return dict(fired=fired, strength=X.graded(fired, share, p.strong_share), n=m["n"], n_night=m["n_night"], share=share,
                    start_hour=X.lit(p.night_start_hour), end_hour=X.lit(p.night_end_hour))

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        return NightState()

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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        t = ctx.side_tx(side)
        return t.group_by("account_id").aggregate(n=t.count(), n_round=t.round_amount.cast("int64").sum())

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        share = X.ratio(m["n_round"], m["n"])
        fired = X.and_(X.ge(m["n_round"], p.min_transfers), X.ge(share, p.min_share))
        return dict(fired=fired, strength=X.graded(fired, share, p.strong_share), n=m["n"], n_round=m["n_round"], share=share,
                    multiple=X.lit(p.multiple))

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        return RoundState()

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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        hit = t.keyword.notnull()
        if p.only_unrelated:
            hit = hit & t.unrelated
        return t.group_by("account_id").aggregate(
            n=t.count(), n_keyword=hit.cast("int64").sum(),
            example=ibis.ifelse(hit, t.keyword, ibis.null("string")).max())

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        share = X.ratio(m["n_keyword"], m["n"])
        fired = X.and_(X.ge(m["n_keyword"], p.min_transfers), X.ge(share, p.min_share))
        return dict(fired=fired, strength=X.graded(fired, share, p.strong_share), n=m["n"], n_keyword=m["n_keyword"],
                    share=share, example=m["example"])

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        return NarrativeState(params[self.id].only_unrelated)

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

    stream = True

    @staticmethod
    def growth(c1: Any, c0: Any, s1: Any, s0: Any, min_previous: int, max_usd: float, X: Any) -> Any:
        """The escalation of one payment's trailing windows (recent c1, s1; the period before c0, s0):
        NULL unless the earlier period has enough payments and the recent average stays micro."""
        ok = X.and_(X.ge(c0, min_previous), X.gt(c0, 0), X.le(X.ratio(s1, c1), max_usd))
        return X.ifelse(ok, X.greatest(X.ratio(c1, c0), X.ratio(s1, s0)), X.null("float64"))

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        p, p01 = ctx.params(self.id), ctx.params("I-01")
        t = ctx.side_tx(side)
        per = p.period_days * DAY
        w1, w2 = trailing(t, ["account_id"], per), trailing(t, ["account_id"], 2 * per)
        t = t.mutate(c1=t.ts_epoch.count().over(w1), c2=t.ts_epoch.count().over(w2),
                     s1=t.amount_usd.sum().over(w1), s2=t.amount_usd.sum().over(w2))
        t = t.mutate(c0=t.c2 - t.c1, s0=t.s2 - t.s1)
        t = t.mutate(_r=self.growth(t.c1, t.c0, t.s1, t.s0, p.min_previous, p01.max_usd, IBIS))
        t = t.filter(t._r.notnull())
        t = t.mutate(_rank=ibis.row_number().over(ibis.window(group_by=t.account_id, order_by=[t._r.desc(), t.ts_epoch])))
        return t.filter(t._rank == 0)

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        fired = X.ge(m["_r"], p.min_ratio)
        return dict(fired=fired, strength=X.graded(fired, m["_r"], p.strong_ratio), growth=m["_r"], count_recent=m["c1"],
                    count_previous=m["c0"], usd_recent=m["s1"], usd_previous=m["s0"], period_days=X.lit(p.period_days))

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        p = params[self.id]
        return EscalationState(p.period_days * DAY, p.min_previous, params["I-01"].max_usd)

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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        t = t.filter(t.micro & t.unrelated)
        a = t.group_by("account_id").aggregate(n=t.count(), first=t.ts_epoch.min(), last=t.ts_epoch.max(),
                                               total_usd=t.amount_usd.sum())
        s = rolling_max(t, ["account_id"], p.sum_window_days * DAY, "max_usd_window", value="amount_usd")
        return a.join(s, "account_id")

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        span = X.tofloat(m["last"] - m["first"]) / DAY
        fired = X.or_(X.and_(X.ge(span, p.min_span_days), X.ge(m["n"], p.min_transfers)), X.ge(m["max_usd_window"], p.min_usd))
        strength = X.greatest(X.graded(fired, span, p.strong_span_days), X.graded(fired, m["max_usd_window"], p.strong_usd))
        return dict(fired=fired, strength=strength, n=m["n"], span_days=span, total_usd=m["total_usd"],
                    max_usd_window=m["max_usd_window"], window_days=X.lit(p.sum_window_days))

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        return LongRunningState(params[self.id].sum_window_days * DAY)

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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        t = t.filter(t.channel.notnull())
        hit = t.channel.lower().isin([c.lower() for c in p.channels])
        return t.group_by("account_id").aggregate(n=t.count(), n_channel=hit.cast("int64").sum())

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        share = X.ratio(m["n_channel"], m["n"])
        fired = X.and_(X.ge(m["n_channel"], p.min_transfers), X.ge(share, p.min_share))
        return dict(fired=fired, strength=X.graded(fired, share, p.strong_share), n=m["n"], n_channel=m["n_channel"],
                    share=share, channels=X.lit("/".join(p.channels)))

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        return ChannelState(frozenset(c.lower() for c in params[self.id].channels))

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        return (f"{integer(row, 'i12_n_channel')} of {plural(integer(row, 'i12_n'), 'payment')} "
                f"({pct(num(row, 'i12_share'))}) went through {row.get('i12_channels') or 'money-service'} channels")


def sorted_median(t: ir.Table, value: str, out: str, key: str = "account_id") -> ir.Table:
    """`key`, `out` = the median of `value` per key, as DuckDB's `median` (quantile_cont 0.5) computes
    it: the middle value, or lo · 0.5 + hi · 0.5 of the two middle ones (its interpolation
    lo · (1 − d) + hi · d at d = 0.5); NULLs ignored.

    Through a sort (a window ranking the values of each key) instead of the `median` aggregate: that
    one keeps every value of every key in its hash table and cannot spill it usefully. Ingesting and
    scanning 10M transfers under a 500 MB cap, it alone spilled 30 GB and then ran out of memory; at
    100M transfers under 5 GB it filled the disk (docs/benchmarks.md, "Session 11"). A sort spills."""
    v = t.filter(t[value].notnull()).select(key, value)
    r = v.mutate(
        _rk=ibis.row_number().over(ibis.window(group_by=v[key], order_by=v[value])),
        _nk=v.count().over(ibis.window(group_by=v[key])),
    )
    mid = r.filter((r._rk == (r._nk - 1) // 2) | (r._rk == r._nk // 2))
    m = mid.group_by(key).aggregate(_lo=mid[value].min(), _hi=mid[value].max())
    return m.select(key, **{out: m._lo * 0.5 + m._hi * 0.5})


# ---- stream forms (kalasag.indicators.base.StreamState): the metrics above, one transfer at a time --
def _median(values: SortedList) -> float:
    """DuckDB's median of doubles (quantile_cont 0.5): the middle value, or lo · 0.5 + hi · 0.5
    (its interpolation lo · (1 − d) + hi · d; lo + (hi − lo) · 0.5 can differ in the last bit)."""
    n = len(values)
    if n % 2:
        return values[n // 2]
    lo, hi = values[n // 2 - 1], values[n // 2]
    return lo * 0.5 + hi * 0.5


class LowValueState(StreamState):
    __slots__ = ("n", "n_micro", "n_core", "amounts")

    def __init__(self) -> None:
        self.n = self.n_micro = self.n_core = 0
        self.amounts = SortedList()

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        self.n += 1
        self.n_micro += tx.micro
        self.n_core += tx.core_micro
        self.amounts.add(tx.amount_usd)
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        if not self.n:
            return None
        return {"n": self.n, "n_micro": self.n_micro, "n_core": self.n_core, "median_usd": _median(self.amounts)}


class FrequencyState(StreamState):
    """Sender: its payments in the long and short windows; receiver: per foreign sender."""

    __slots__ = ("lo", "sh", "windows", "max_long", "max_short")

    def __init__(self, lo: int, sh: int, per_counterpart: bool) -> None:
        self.lo, self.sh = lo, sh
        self.windows: Any = {} if per_counterpart else (WindowCount(lo), WindowCount(sh))
        self.max_long = self.max_short = 0

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        w = self.windows
        if isinstance(w, dict):
            w = self.windows.get(cp)
            if w is None:
                w = self.windows[cp] = (WindowCount(self.lo), WindowCount(self.sh))
        c = w[0].add(tx.ts)
        if c > self.max_long:
            self.max_long = c
        c = w[1].add(tx.ts)
        if c > self.max_short:
            self.max_short = c
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        return {"max_long": self.max_long, "max_short": self.max_short} if self.max_long else None


class FanInState(StreamState):
    """Receiver: distinct unrelated foreign senders in the window (maximum), overall, and countries."""

    __slots__ = ("win", "max_senders", "senders", "countries")

    def __init__(self, span: int) -> None:
        self.win = WindowDistinct(span)
        self.max_senders = 0
        self.senders: set[str] = set()
        self.countries: set[str] = set()

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        if not unrelated:
            return False
        d = self.win.add(tx.ts, cp)[1]
        if d > self.max_senders:
            self.max_senders = d
        self.senders.add(cp)
        self.countries.add(tx.sender_country)
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        if not self.senders:
            return None
        return {"max_senders": self.max_senders, "n_senders": len(self.senders), "n_countries": len(self.countries)}

    def dependants(self) -> set[str]:
        return self.senders


class PaysFanInState(StreamState):
    """Sender form of I-03: read lazily from its unrelated beneficiaries' current fan-in evidence."""

    __slots__ = ("receivers",)

    def __init__(self) -> None:
        self.receivers: set[str] = set()

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        # a known beneficiary changes nothing here; a change of its evidence marks this stale
        if unrelated and cp not in self.receivers:
            self.receivers.add(cp)
            return True
        return False

    def metrics(self, world: Any) -> dict[str, Any] | None:
        if not self.receivers:
            return None
        mx = nf = nc = 0
        st = 0.0
        for r in self.receivers:
            c = world.indicator_columns("receiver", r, "I-03")
            mx = max(mx, c["i03_max_senders"])
            nc = max(nc, c["i03_n_countries"])
            nf += c["i03_fired"]
            st = max(st, c["i03_strength"])
        return {"max_senders": mx, "n_fanin_receivers": nf, "strength": st, "n_countries": nc}


class FanOutState(StreamState):
    """Sender: distinct unrelated beneficiary families in the window (maximum) and beneficiaries."""

    __slots__ = ("win", "max_beneficiaries", "receivers")

    def __init__(self, span: int) -> None:
        self.win = WindowDistinct(span)
        self.max_beneficiaries = 0
        self.receivers: set[str] = set()

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        if not unrelated:
            return False
        d = self.win.add(tx.ts, tx.receiver_family)[1]
        if d > self.max_beneficiaries:
            self.max_beneficiaries = d
        self.receivers.add(cp)
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        if not self.receivers:
            return None
        return {"max_beneficiaries": self.max_beneficiaries, "n_beneficiaries": len(self.receivers)}

    def dependants(self) -> set[str]:
        return self.receivers


class PaidByFanOutState(StreamState):
    """Receiver form of I-04: read lazily from its unrelated senders' current fan-out evidence."""

    __slots__ = ("senders",)

    def __init__(self) -> None:
        self.senders: set[str] = set()

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        if unrelated and cp not in self.senders:
            self.senders.add(cp)
            return True
        return False

    def metrics(self, world: Any) -> dict[str, Any] | None:
        if not self.senders:
            return None
        mx = nf = 0
        st = 0.0
        for s in self.senders:
            c = world.indicator_columns("sender", s, "I-04")
            mx = max(mx, c["i04_max_beneficiaries"])
            nf += c["i04_fired"]
            st = max(st, c["i04_strength"])
        return {"max_beneficiaries": mx, "n_fanout_senders": nf, "strength": st}


class UnrelatedState(StreamState):
    __slots__ = ("n", "n_unrelated", "cps", "cp_unrelated", "cp_related", "cp_unknown")

    def __init__(self) -> None:
        self.n = self.n_unrelated = self.cp_unrelated = self.cp_related = self.cp_unknown = 0
        self.cps: set[str] = set()

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        # the relation is the pair's: constant for cp until it changes (then the account is rebuilt)
        self.n += 1
        self.n_unrelated += unrelated
        if cp not in self.cps:
            self.cps.add(cp)
            self.cp_unrelated += unrelated
            self.cp_related += related is True
            self.cp_unknown += related is None
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        if not self.n:
            return None
        return {"n": self.n, "n_unrelated": self.n_unrelated, "cp_unrelated": self.cp_unrelated,
                "cp_related": self.cp_related, "cp_unknown": self.cp_unknown, "cp": len(self.cps)}


class IrregularState(StreamState):
    """Gaps between payments (exact integer sums of seconds) and bursts (a payment with another in
    the burst window) counted over the trailing period."""

    __slots__ = ("n", "last", "k", "s1", "s2", "w_burst", "period", "p_ts", "p_flag", "head", "bursts", "max_bursts")

    def __init__(self, burst_span: int, period_span: int) -> None:
        self.n = self.k = self.s1 = self.s2 = self.head = self.bursts = self.max_bursts = 0
        self.last = 0
        self.w_burst = WindowCount(burst_span)
        self.period = period_span
        self.p_ts: list[int] = []    # the period window: times…
        self.p_flag: list[int] = []  # …and burst flags

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        t = tx.ts
        if self.n:
            g = t - self.last
            self.k += 1
            self.s1 += g
            self.s2 += g * g
        self.n += 1
        self.last = t
        burst = 1 if self.w_burst.add(t) >= 2 else 0
        ts, flags = self.p_ts, self.p_flag
        ts.append(t)
        flags.append(burst)
        self.bursts += burst
        if burst:  # peers at the same instant share the window: an earlier one alone is a burst now
            i = len(ts) - 2
            while i >= self.head and ts[i] == t and not flags[i]:
                flags[i] = 1
                self.bursts += 1
                i -= 1
        lim = t - self.period
        h = self.head
        while ts[h] <= lim:
            self.bursts -= flags[h]
            h += 1
        if h > 16 and 2 * h > len(ts):
            del ts[:h], flags[:h]
            h = 0
        self.head = h
        if self.bursts > self.max_bursts:
            self.max_bursts = self.bursts
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        if not self.n:
            return None
        k = self.k
        mean = self.s1 / k / DAY if k else None
        std = math.sqrt((k * self.s2 - self.s1 * self.s1) / (k * (k - 1))) / DAY if k >= 2 else None
        return {"n": self.n, "gap_mean": mean, "gap_std": std, "max_bursts": self.max_bursts}


class NightState(StreamState):
    __slots__ = ("n", "n_night")

    def __init__(self) -> None:
        self.n = self.n_night = 0

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        if tx.night is None:
            return False
        self.n += 1
        self.n_night += tx.night
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        return {"n": self.n, "n_night": self.n_night} if self.n else None


class RoundState(StreamState):
    __slots__ = ("n", "n_round")

    def __init__(self) -> None:
        self.n = self.n_round = 0

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        self.n += 1
        self.n_round += tx.round_amount
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        return {"n": self.n, "n_round": self.n_round} if self.n else None


class NarrativeState(StreamState):
    __slots__ = ("only_unrelated", "n", "n_keyword", "example")

    def __init__(self, only_unrelated: bool) -> None:
        self.only_unrelated = only_unrelated
        self.n = self.n_keyword = 0
        self.example: str | None = None

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        self.n += 1
        kw = tx.keyword
        if kw is not None and (unrelated or not self.only_unrelated):
            self.n_keyword += 1
            if self.example is None or kw > self.example:
                self.example = kw
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        return {"n": self.n, "n_keyword": self.n_keyword, "example": self.example} if self.n else None


@functools.lru_cache(maxsize=16)
def _growth_fn(min_previous: int, max_usd: float) -> Any:
    """Escalation.growth over Python values, traced once per parameter pair (ops.compile_scalar)."""
    return compile_scalar(lambda c1, c0, s1, s0, X: Escalation.growth(c1, c0, s1, s0, min_previous, max_usd, X),
                          "c1", "c0", "s1", "s0")


class EscalationState(StreamState):
    """The two trailing periods at every payment; the payment with the highest growth (earliest on
    ties). Payments at one instant share their windows: the instant's value is final only when a
    later instant arrives, so it is held as `pending` until then."""

    __slots__ = ("w1", "w2", "min_previous", "max_usd", "best", "pending")

    def __init__(self, period: int, min_previous: int, max_usd: float) -> None:
        self.w1, self.w2 = WindowSum(period), WindowSum(2 * period)
        self.min_previous, self.max_usd = min_previous, max_usd
        self.best: tuple | None = None      # (r, c1, c0, s1, s0) of the best settled instant
        self.pending: tuple | None = None   # (ts, r, c1, c0, s1, s0) of the latest instant

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        t = tx.ts
        c1, x1 = self.w1.add(t, tx.amount_usd)
        c2, x2 = self.w2.add(t, tx.amount_usd)
        s1, s2 = from_exact(x1), from_exact(x2)
        c0, s0 = c2 - c1, s2 - s1
        pend = self.pending
        if pend is not None and t > pend[0]:
            self.best = self._better(self.best, pend[1:])
        growth = _growth_fn(self.min_previous, self.max_usd)
        self.pending = (t, growth(c1, c0, s1, s0), c1, c0, s1, s0)
        return True

    @staticmethod
    def _better(best: tuple | None, cand: tuple) -> tuple | None:
        if cand[0] is None:
            return best
        return cand if best is None or cand[0] > best[0] else best

    def metrics(self, world: Any) -> dict[str, Any] | None:
        b = self.best if self.pending is None else self._better(self.best, self.pending[1:])
        if b is None:
            return None
        return {"_r": b[0], "c1": b[1], "c0": b[2], "s1": b[3], "s0": b[4]}


class LongRunningState(StreamState):
    __slots__ = ("n", "first", "last", "total", "win", "max_window")

    def __init__(self, span: int) -> None:
        self.n = self.first = self.last = self.total = self.max_window = 0
        self.win = WindowSum(span)

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        if not (tx.micro and unrelated):
            return False
        t = tx.ts
        if not self.n or t < self.first:
            self.first = t
        if not self.n or t > self.last:
            self.last = t
        self.n += 1
        self.total += tx.xusd
        x = self.win.add(t, tx.amount_usd)[1]
        if x > self.max_window:
            self.max_window = x
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        if not self.n:
            return None
        return {"n": self.n, "first": self.first, "last": self.last, "total_usd": from_exact(self.total),
                "max_usd_window": from_exact(self.max_window)}


class ChannelState(StreamState):
    __slots__ = ("channels", "n", "n_channel")

    def __init__(self, channels: frozenset[str]) -> None:
        self.channels = shared(channels)
        self.n = self.n_channel = 0

    def _after_load(self) -> None:
        self.channels = shared(self.channels)

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        if tx.channel is None:
            return False
        self.n += 1
        self.n_channel += tx.channel_lower in self.channels
        return True

    def metrics(self, world: Any) -> dict[str, Any] | None:
        return {"n": self.n, "n_channel": self.n_channel} if self.n else None
