"""Shared preparation, computed once per run and materialized: the enriched transfer table.

`Context.tx` holds every transfer with the columns the indicators reuse:

- `foreign` (sender_country ≠ receiver_country), `target` (receiver_country in
  config.target_countries), `watched` = foreign AND target (the cross-border inflows watched);
- `local_hour` (sender local time, NULL if the country is unknown) and `night` (I-07 hours);
- `micro` (amount_usd ≤ I-01 max_usd), `core_micro` (≤ I-01 core_max_usd);
- `round_amount` (I-08), `keyword` (first I-09 keyword or handle in the reference, else NULL);
- `related` (pair-level name relation of sender and receiver, NULL = unknown) and `unrelated`
  (related is false, or unknown when I-05 `unknown_counts_as_unrelated`);
- `receiver_family` (receiver surname, or `id:<receiver_id>` without a usable name: I-04 counts
  beneficiaries sharing a surname once), `receiver_key` (identity key of the name) and
  `receiver_phone_key` (I-21).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from kalasag.indicators import names as N
from kalasag.indicators.ops import IBIS
from kalasag.indicators.timezones import with_local_hour
from kalasag.model import KalasagConfig

BASE_COLUMNS = (
    "txn_id", "timestamp", "ts_epoch", "amount", "currency", "amount_usd", "channel",
    "sender_id", "receiver_id", "sender_name", "receiver_name", "sender_country", "receiver_country",
    "receiver_region", "sender_phone", "receiver_phone", "reference",
)



class IndicatorInputError(ValueError):
    """The transfers table handed to the indicators lacks canonical columns (one-line message)."""


_REGEX_META = re.compile(r"([.^$*+?()\[\]{}|\\])")


def keyword_pattern(keywords: list[str]) -> str:
    """`\\b(kw1|kw2|…)\\b` over lower-cased keywords, longest first, regex characters escaped."""
    kws = sorted({k.strip().lower() for k in keywords if k.strip()}, key=lambda k: (-len(k), k))
    alts = "|".join(_REGEX_META.sub(r"\\\1", k).replace(" ", r"\s+") for k in kws)
    return rf"\b({alts})\b"


# ---- per-transfer flags, written once for the batch table (X = IBIS) and one record (X = SCALAR) --
def pair_flags(pair_rel, unknown_counts_as_unrelated: bool, X=IBIS):
    """(related, unrelated) of a sender–receiver pair from its relation (max over its transfers of
    the name rule: 1 related, 0 not, NULL unknown)."""
    related = X.ifelse(X.isnull(pair_rel), X.null("boolean"), X.eq(pair_rel, 1))
    unrelated = X.ifelse(X.isnull(pair_rel), bool(unknown_counts_as_unrelated), X.eq(pair_rel, 0))
    return related, unrelated


def night_flag(hour, p07, X=IBIS):
    """I-07: the sender local hour lies in the night window; NULL when the hour is unknown."""
    if p07.night_start_hour > p07.night_end_hour:
        night = X.or_(X.ge(hour, p07.night_start_hour), X.lt(hour, p07.night_end_hour))
    else:
        night = X.and_(X.ge(hour, p07.night_start_hour), X.lt(hour, p07.night_end_hour))
    return X.ifelse(X.isnull(hour), X.null("boolean"), night)


def round_flag(amount, multiple: float, X=IBIS):
    """I-08: the amount in the sending currency is an exact multiple of `multiple`, without cents."""
    cents = X.round_int(amount * 100)
    return X.fill_null(X.eq(cents % int(round(multiple * 100)), 0), False)


def keyword_of(reference, pattern: str, handle_pattern: str, X=IBIS):
    """I-09: the first keyword (or social-media handle) in the normalized reference, else NULL.
    `reference`: a string column, or `ops.Text` of one reference; `pattern` from `keyword_pattern`."""
    ref = reference.lower().translate(N.ACCENTED, N.PLAIN).re_replace(r"\s+", " ")
    kw = ref.re_extract(pattern, 1).nullif("")
    if handle_pattern:
        kw = kw.fill_null(ref.re_extract(f"({handle_pattern})", 1).nullif("").fill_null(X.null("string")))
    return X.ifelse(reference.isnull(), X.null("string"), kw)


@dataclass
class Context:
    engine: Any
    config: KalasagConfig
    tx: ir.Table
    cache: dict[str, ir.Table] = field(default_factory=dict)
    # optional watchlist of known subjects (kalasag.network.load_watchlist: entry, account_id, name, phone)
    watchlist: ir.Table | None = None

    def params(self, indicator_id: str):
        from kalasag.indicators.registry import INDICATORS

        return INDICATORS[indicator_id].params(self.config)

    def cached(self, key: str, build) -> ir.Table:
        """Materialize an intermediate table once (e.g. receivers' fan-in reused by senders)."""
        if key not in self.cache:
            self.cache[key] = self.engine.materialize(build())
        return self.cache[key]

    @classmethod
    def build(cls, engine: Any, transfers: ir.Table, config: KalasagConfig, watchlist: ir.Table | None = None) -> Context:
        missing = [c for c in BASE_COLUMNS if c not in transfers.columns]
        if missing:
            raise IndicatorInputError(f"transfers table lacks canonical column(s): {', '.join(missing)}")
        ctx = cls(engine, config, transfers, watchlist=watchlist)
        p01, p05, p07 = ctx.params("I-01"), ctx.params("I-05"), ctx.params("I-07")
        p08, p09, p21 = ctx.params("I-08"), ctx.params("I-09"), ctx.params("I-21")

        t = transfers.select(*[transfers[c] for c in BASE_COLUMNS])
        targets = [c.upper() for c in config.target_countries]
        t = t.mutate(
            foreign=(t.sender_country != t.receiver_country).fill_null(False),
            target=t.receiver_country.isin(targets).fill_null(False),
        )
        t = t.mutate(watched=t.foreign & t.target)

        # names → family names; the relation of a sender–receiver pair is the most related of its
        # transfers' name combinations, computed on the distinct (pair, names) rows (2.5M for 10M
        # transfers) and joined back once. Computing it per transfer and joining the aggregate back
        # to the same per-transfer expression made DuckDB keep a full copy of that wide expression:
        # at 100M transfers it spilled tens of GB (docs/benchmarks.md, "Session 11").
        sn = N.name_parts(t, "sender_name", "s", engine)
        rn = N.name_parts(t, "receiver_name", "r", engine)
        pn = t.select("sender_id", "receiver_id", "sender_name", "receiver_name").distinct()
        pn = pn.left_join(sn, pn.sender_name == sn.sender_name).left_join(rn, pn.receiver_name == rn.receiver_name)
        rel = N.related(pn.s_surname, pn.s_middle, pn.r_surname, pn.r_middle, p05.use_middle_name)
        pair = engine.materialize(
            pn.group_by(["sender_id", "receiver_id"]).aggregate(_pair_rel=rel.cast("int64").max())
        )
        j = t.left_join(rn, t.receiver_name == rn.receiver_name)
        j = j.select(*[j[c] for c in t.columns], r_surname=j.r_surname, receiver_key=j.r_key)
        j = j.left_join(pair, [j.sender_id == pair.sender_id, j.receiver_id == pair.receiver_id])
        related, unrelated = pair_flags(j._pair_rel, p05.unknown_counts_as_unrelated)
        family = j.r_surname.fill_null("id:" + j.receiver_id.cast("string"))
        j = j.select(
            *[j[c] for c in t.columns],
            related=related, unrelated=unrelated, receiver_family=family, receiver_key=j.receiver_key,
        )

        # sender local time and night flag (I-07)
        j = with_local_hour(engine, j, "sender_country", "local_hour")

        # narrative (I-09): the keyword regexes run once per distinct reference (references repeat:
        # 7,175 distinct among 1M simulated transfers), joined back; a NULL reference has no keyword
        refs = t.select("reference").filter(t.reference.notnull()).distinct()
        refs = engine.materialize(refs.select(_ref=refs.reference,
                                              _kw=keyword_of(refs.reference, keyword_pattern(p09.keywords), p09.handle_pattern)))
        j = j.left_join(refs, j.reference == refs._ref)
        j = j.select(*[j[c] for c in j.columns if c not in ("_ref", "_kw")], keyword=j._kw)

        # amounts (I-01, I-08), phone (I-21)
        j = j.mutate(
            night=night_flag(j.local_hour, p07),
            micro=j.amount_usd <= p01.max_usd,
            core_micro=j.amount_usd <= p01.core_max_usd,
            round_amount=round_flag(j.amount, p08.multiple),
            receiver_phone_key=N.phone_key(j.receiver_phone, p21.phone_digits),
        )
        ctx.tx = engine.materialize(j)
        return ctx

    # ---- common slices ------------------------------------------------------------------
    def side_tx(self, side: str, watched_only: bool = True) -> ir.Table:
        """Transfers of the side with the account in `account_id` and the other party in `counterpart_id`."""
        t = self.tx.filter(self.tx.watched) if watched_only else self.tx
        acc, cp = ("sender_id", "receiver_id") if side == "sender" else ("receiver_id", "sender_id")
        return t.mutate(account_id=t[acc], counterpart_id=t[cp])
