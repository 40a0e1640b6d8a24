"""Sender-side profile indicators the schema can express: I-14 (country weight), I-18 (crypto)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir

from kalasag.indicators.base import Indicator, Params, StreamState, integer, num, pct, plural, shared
from kalasag.indicators.context import Context
from kalasag.indicators.ops import sql_upper
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

    stream = True

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        p = ctx.params(self.id)
        t = ctx.side_tx(side)
        cases = [(t.sender_country.upper() == c.upper(), float(w)) for c, w in p.weights.items()]
        weight = ibis.cases(*cases, else_=0.0) if cases else ibis.literal(0.0)
        t = t.mutate(_w=weight.cast("float64"))
        return t.group_by("account_id").aggregate(weight=t._w.max(), country=t.sender_country.argmax(t._w))

    def decide(self, m: Any, p: Any, X: Any, side: str) -> dict[str, Any]:
        fired = X.ge(m["weight"], p.min_weight)
        return dict(fired=fired, strength=X.graded(fired, m["weight"], 1.0), weight=m["weight"], country=m["country"])

    def new_state(self, side: str, params: Mapping[str, Any]) -> StreamState:
        weights: dict[str, float] = {}
        for c, w in reversed(list(params[self.id].weights.items())):  # the first matching case wins
            weights[c.upper()] = float(w)
        return CountryRiskState(weights)

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


class CountryRiskState(StreamState):
    """The highest country weight among the sender's payments and that country (the first seen on ties)."""

    __slots__ = ("weights", "weight", "country")

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = shared(weights)
        self.weight: float | None = None
        self.country: str | None = None

    def _after_load(self) -> None:
        self.weights = shared(self.weights)

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:
        w = self.weights.get(sql_upper(tx.sender_country), 0.0)
        if self.weight is None or w > self.weight:
            self.weight, self.country = w, tx.sender_country
            return True
        return False

    def metrics(self, world: Any) -> dict[str, Any] | None:
        return None if self.weight is None else {"weight": self.weight, "country": self.country}
