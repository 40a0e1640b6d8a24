"""Sender-side profile indicators the schema can express: I-14 (country weight), I-18 (crypto)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir

from kalasag.indicators.base import Indicator, Params, finish, graded, integer, num, pct, plural
from kalasag.indicators.context import Context
from kalasag.indicators.transfer_pattern import Channel


class CountryRisk(Indicator):
    id, slug, name = "I-14", "i14", "Sender country risk weight"
    sides = ("sender",)
    description = (
        "A weight for the sender's country from the AMLC ranking of the countries OSAEC-related "
        "remittances come from (the US first, then the UK, Australia, Canada …). A prior, never a trigger."
    )
    source = " ; ".join([
        "https://www.bworldonline.com/top-stories/2023/07/19/534743/amlc-flags-p1-5-billion-transactions-related-to-online-child-sex-abuse/",
        "http://telegraph.co.uk/global-health/terror-and-security/live-streamed-child-abuse-philippines-surges-britain-demand/",
        "https://ijm.org.au/news/media-release-foreign-demand-sees-1-in-100-filipino-children-sexually-exploited-in-livestreams-new-abuse-images-and-videos/",
    ])

    class Params(Params):
        weights: dict[str, float]
        min_weight: float

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        self.check_side(side)
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        cases = [(t.sender_country.upper() == c.upper(), float(w)) for c, w in p.weights.items()]
        weight = ibis.cases(*cases, else_=0.0) if cases else ibis.literal(0.0)
        t = t.mutate(_w=weight.cast("float64"))
        a = t.group_by("account_id").aggregate(weight=t._w.max(), country=t.sender_country.argmax(t._w))
        fired = a.weight >= p.min_weight
        return finish(a, self, fired, graded(fired, a.weight, 1.0), weight=a.weight, country=a.country)

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        return f"sends from {row.get('i14_country')}, a country with risk weight {num(row, 'i14_weight'):.2f} in the AMLC ranking"


class Crypto(Channel):
    """I-18 is I-12's channel-share logic over the crypto channel list: one implementation."""

    id, slug, name = "I-18", "i18", "Crypto rails"
    sides = ("sender", "receiver")
    description = "A large share of the cross-border payments use crypto-asset channels."
    source = " ; ".join([
        "https://quickcen.sanctions.org/QuickCEN/research/fincen-notice-fin-2021-ntc3",
        "https://amlintelligence.com/2024/02/news-surge-in-strs-filed-bank-by-banks-identify-human-trafficking-child-sexual-abuse-crypto-major-enabler-of-crimes",
        "https://polarherald.com/politics/justice-system/financial-watchdog-warns-of-rising-online-child-exploitation.html",
    ])

    def explain(self, row: Mapping[str, Any], side: str) -> str:
        return (f"{integer(row, 'i18_n_channel')} of {plural(integer(row, 'i18_n'), 'payment')} "
                f"({pct(num(row, 'i18_share'))}) used crypto-asset channels")
