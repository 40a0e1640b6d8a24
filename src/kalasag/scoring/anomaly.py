"""A-01, the anomaly component: how unusual an account's behaviour is among the accounts of its
population, with no labels at all.

For each account that made or received at least one watched cross-border payment (`i01_n` ≥ 1),
a few behavioural metrics are taken from its evidence row (docs/scoring.md, "The anomaly
component"):

| metric | value |
|---|---|
| `rate` | watched payments per 30 days of the account's active span (span at least 30 days) |
| `counterparties` | distinct unrelated counterparties (I-05's `cp_unrelated`) |
| `micro` | micro payments (I-01) / max(payments, `min_transfers`) |
| `night` | night payments (I-07, sender local time) / max(payments with a local time, `min_transfers`) |
| `irregular` | coefficient of variation of the gaps between payments (I-06), capped at 5 |

Shares are divided by at least `min_transfers` payments, so one night payment is not "100% at
night". Within its population (the whole side, or the accounts of one sending country; groups
smaller than `min_population` are pooled) each metric becomes the account's **top share**: the
share of the population whose value is at least the account's (ties share it; exact ranks, so
DuckDB and Spark agree). Its surprise is −ln(top share); the account's **surprise** is the mean
over the metrics, i.e. −ln of the geometric mean of its top shares. Being unusual in several
metrics at once is what counts: one extreme metric among ordinary ones is diluted.

A-01 fires when the geometric mean of the top shares is at most `fire_top_share` (surprise ≥
−ln fire_top_share); its strength is surprise / −ln(`strong_top_share`), capped at 1. It enters
the logistic score through its weight like any indicator (`[scoring.weights]` "A-01").
Parameters: `[indicators."A-01"]` of the config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator

from kalasag.model import ConfigError, KalasagConfig
from kalasag.scoring.combine import IndicatorRef, attach_evidence, number as _num

ANOMALY_ID = "A-01"
SLUG = "a01"
ANOMALY_REF = IndicatorRef(ANOMALY_ID, SLUG, "Unusual behaviour for its population")
ANOMALY_SOURCE = (
    "Kalasag anomaly component (label-free, docs/scoring.md); the behaviours compared are those of "
    "I-01, I-02, I-05, I-06 and I-07 (AUSTRAC, FATF 2025, ACAMS/Egmont, ECPAT Sweden)"
)
DAY = 86400
MAX_CV = 5.0

# metric -> (evidence columns it reads, words for the explanation)
METRICS: dict[str, tuple[tuple[str, ...], str]] = {
    "rate": (("i01_n",), "payments per 30 days"),
    "counterparties": (("i05_cp_unrelated",), "unrelated counterparties"),
    "micro": (("i01_n", "i01_n_micro"), "micro payments"),
    "night": (("i07_n", "i07_n_night"), "at night (sender time)"),
    "irregular": (("i06_cv",), "irregularity of the gaps between payments (CV)"),
}


class AnomalyParams(BaseModel):
    """`[indicators."A-01"]`: every number of the anomaly component."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender_metrics: list[str] = Field(min_length=1)
    receiver_metrics: list[str] = Field(min_length=1)
    sender_population: Literal["side", "country"]
    receiver_population: Literal["side", "country"]
    min_population: PositiveInt
    min_transfers: PositiveInt
    fire_top_share: float = Field(gt=0, lt=1)
    strong_top_share: float = Field(gt=0, lt=1)

    @field_validator("sender_metrics", "receiver_metrics")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [m for m in v if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)} (choose from {', '.join(METRICS)})")
        if len(set(v)) != len(v):
            raise ValueError("a metric is listed twice")
        return v

    def metrics(self, side: str) -> list[str]:
        return list(self.sender_metrics if side == "sender" else self.receiver_metrics)

    def population(self, side: str) -> str:
        return self.sender_population if side == "sender" else self.receiver_population

    @property
    def min_surprise(self) -> float:
        return -math.log(self.fire_top_share)

    @property
    def strong_surprise(self) -> float:
        return -math.log(self.strong_top_share)


def anomaly_params(config: KalasagConfig) -> AnomalyParams:
    try:
        p = AnomalyParams.model_validate(config.indicator_params(ANOMALY_ID))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"invalid config at 'indicators.\"{ANOMALY_ID}\".{where}': {first['msg']}") from exc
    if p.strong_top_share > p.fire_top_share:
        raise ConfigError(f"invalid config at 'indicators.\"{ANOMALY_ID}\"': strong_top_share must not exceed fire_top_share")
    return p


def account_profile(transfers: ir.Table, side: str) -> ir.Table:
    """Per account of a side: active span in days and sending country (the population key).

    `transfers` are the ingested transfers (`ts_epoch` in seconds). The country is the sending
    country of a sender, the receiving country of a receiver (the largest code if it used several).
    """
    acc = "sender_id" if side == "sender" else "receiver_id"
    t = transfers
    return t.group_by(account_id=t[acc]).aggregate(
        a01_span_days=((t.ts_epoch.max() - t.ts_epoch.min()).cast("float64") / DAY),
        a01_country=(t.sender_country if side == "sender" else t.receiver_country).max(),
    )


def _metric_value(t: ir.Table, name: str, p: AnomalyParams) -> ir.FloatingValue:
    def c(col: str) -> ir.NumericValue:
        return t[col].cast("float64").fill_null(0.0)

    floor = float(p.min_transfers)
    if name == "rate":
        months = ibis.greatest(t.a01_span_days.fill_null(0.0) / 30.0, 1.0)
        return c("i01_n") / months
    if name == "counterparties":
        return c("i05_cp_unrelated")
    if name == "micro":
        return c("i01_n_micro") / ibis.greatest(c("i01_n"), floor)
    if name == "night":
        return c("i07_n_night") / ibis.greatest(c("i07_n"), floor)
    if name == "irregular":
        return ibis.least(c("i06_cv"), MAX_CV)
    raise ValueError(name)  # pragma: no cover - validated by AnomalyParams


def required_columns(config: KalasagConfig, side: str) -> list[str]:
    p = anomaly_params(config)
    return sorted({col for m in p.metrics(side) for col in METRICS[m][0]})


def anomaly_evidence(table: ir.Table, profile: ir.Table, side: str, config: KalasagConfig) -> ir.Table:
    """The evidence table of one side with A-01's columns added.

    `profile` is `account_profile(transfers, side)`. Adds `a01_fired`, `a01_strength` (never NULL),
    `a01_surprise`, `a01_geo_top_share`, `a01_population` (its size) and `a01_group`, and per
    metric `a01_<metric>` (the value) and `a01_<metric>_top` (its top share). Accounts without a
    watched payment are outside every population: not fired, strength 0, metrics NULL.
    """
    p = anomaly_params(config)
    metrics = p.metrics(side)
    missing = [c for c in required_columns(config, side) if c not in table.columns]
    if missing:
        raise ConfigError(f"A-01 ({side}) needs evidence column(s) {', '.join(missing)}; remove the metric from "
                          f"indicators.\"{ANOMALY_ID}\".{side}_metrics or compute its indicator")
    j = table.left_join(profile, table.account_id == profile.account_id)
    j = j.select(*[j[c] for c in table.columns], a01_span_days=j.a01_span_days, a01_country=j.a01_country)
    in_pop = j.i01_n.fill_null(0) > 0

    pop = j.filter(in_pop)
    pop = pop.mutate(**{f"a01_{m}": _metric_value(pop, m, p) for m in metrics})
    if p.population(side) == "country":
        key = pop.a01_country.fill_null("?")
        pop = pop.mutate(_a01_key=key)
        size = pop.account_id.count().over(ibis.window(group_by=pop._a01_key))
        pop = pop.mutate(a01_group=ibis.ifelse(size >= p.min_population, pop._a01_key, "other"))
        pop = pop.drop("_a01_key")
    else:
        pop = pop.mutate(a01_group=ibis.literal("all"))
    n = pop.account_id.count().over(ibis.window(group_by=pop.a01_group))
    pop = pop.mutate(a01_population=n.cast("int64"))
    tops = {}
    for m in metrics:
        # rank() is the 0-based SQL RANK: the number of accounts with a strictly smaller value, so
        # (n − rank) / n is the share with a value at least this one (ties share it)
        r = ibis.rank().over(ibis.window(group_by=pop.a01_group, order_by=pop[f"a01_{m}"]))
        tops[f"a01_{m}_top"] = (pop.a01_population - r).cast("float64") / pop.a01_population.cast("float64")
    pop = pop.mutate(**tops)
    surprise: ir.FloatingValue = ibis.literal(0.0)
    for m in metrics:
        surprise = surprise - pop[f"a01_{m}_top"].ln()
    surprise = surprise / float(len(metrics))
    pop = pop.mutate(a01_surprise=surprise)
    fired = pop.a01_surprise >= p.min_surprise
    strength = ibis.ifelse(fired, ibis.least(pop.a01_surprise / p.strong_surprise, 1.0), 0.0)
    pop = pop.mutate(
        a01_fired=fired, a01_strength=strength.cast("float64"), a01_geo_top_share=(-pop.a01_surprise).exp(),
    )
    a01_cols = ["a01_fired", "a01_strength", "a01_surprise", "a01_geo_top_share", "a01_population", "a01_group",
                *[c for m in metrics for c in (f"a01_{m}", f"a01_{m}_top")]]
    return attach_evidence(table, pop.select("account_id", *a01_cols), "account_id", "a01", a01_cols)


# ---- explanation ---------------------------------------------------------------------------------
def _top(share: float) -> str:
    pct = 100.0 * share
    if pct < 0.1:
        return "top <0.1%"
    if pct < 10:
        return f"top {pct:.1f}%"
    return f"top {pct:.0f}%"


def _value(metric: str, v: float) -> str:
    if metric == "rate":
        return f"{v:.1f} payments per 30 days"
    if metric == "counterparties":
        n = int(round(v))
        return f"{n} unrelated counterpart{'y' if n == 1 else 'ies'}"
    if metric == "micro":
        return f"{round(100 * v)}% micro payments"
    if metric == "night":
        return f"{round(100 * v)}% at night (sender time)"
    return f"gaps between payments with coefficient of variation {v:.1f}"


def explain_anomaly(row: Mapping[str, Any], side: str) -> str:
    """One sentence with the numbers: the population, each metric with its top share."""
    n = _num(row, "a01_population")
    geo = _num(row, "a01_geo_top_share")
    if n is None or geo is None:
        return ""
    parts = []
    metrics = [m for m in METRICS if _num(row, f"a01_{m}_top") is not None]
    # most unusual first
    for m in sorted(metrics, key=lambda m: (_num(row, f"a01_{m}_top"), list(METRICS).index(m))):
        v, top = _num(row, f"a01_{m}"), _num(row, f"a01_{m}_top")
        parts.append(f"{_value(m, v or 0.0)} ({_top(top)})")
    group = row.get("a01_group")
    where = f" in {group}" if group not in (None, "all", "other") else ""
    who = f"the {int(n):,} {side}s{where} of cross-border payments"
    return (f"unusual among {who}: " + ", ".join(parts)
            + f"; geometric mean of the top shares {100 * geo:.1f}%")
