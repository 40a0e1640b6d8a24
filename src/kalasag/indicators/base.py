"""The small interface every indicator implements (one object per indicator, like a SignalType)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, ValidationError

from kalasag.model import ConfigError, KalasagConfig

if TYPE_CHECKING:  # pragma: no cover
    from kalasag.indicators.context import Context

ACCOUNT_COLUMN = {"sender": "sender_id", "receiver": "receiver_id"}
COUNTERPART_COLUMN = {"sender": "receiver_id", "receiver": "sender_id"}
DAY = 86400


class Params(BaseModel):
    """Base of every indicator's parameter model: strict, every value comes from config."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Indicator(ABC):
    """One published indicator: identity, source, parameters, batch evidence and explanation."""

    id: ClassVar[str]
    slug: ClassVar[str]
    name: ClassVar[str]
    sides: ClassVar[tuple[str, ...]]
    description: ClassVar[str]
    source: ClassVar[str]
    Params: ClassVar[type[Params]]

    def params(self, config: KalasagConfig) -> Params:
        raw = config.indicator_params(self.id)
        try:
            return self.Params.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f'invalid config at \'indicators."{self.id}".{where}\': {first["msg"]}') from exc

    def col(self, metric: str) -> str:
        return f"{self.slug}_{metric}"

    def check_side(self, side: str) -> None:
        if side not in self.sides:
            raise ValueError(f"{self.id} has no {side} form (sides: {', '.join(self.sides)})")

    @abstractmethod
    def evidence(self, ctx: Context, side: str) -> ir.Table:
        """Per-account evidence: account_id, `<slug>_fired`, `<slug>_strength`, `<slug>_<metric>`…"""

    @abstractmethod
    def explain(self, row: Mapping[str, Any], side: str) -> str:
        """One sentence with the numbers behind the evidence of one account."""

    def __repr__(self) -> str:
        return f"<{self.id} {self.name}>"


# ---- small expression helpers shared by the indicator modules ---------------------------------
def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """num / den as float64, NULL when den is 0 or NULL."""
    return ibis.ifelse(den > 0, num.cast("float64") / den.cast("float64"), ibis.null("float64"))


def graded(fired: ir.BooleanValue, value: ir.NumericValue, strong_at: float) -> ir.FloatingValue:
    """Strength: 0 when not fired, else value / strong_at capped at 1 (1 = "high" level reached)."""
    g = ibis.least(ibis.literal(1.0), value.cast("float64").fill_null(0.0) / float(strong_at))
    return ibis.ifelse(fired.fill_null(False), g, 0.0).cast("float64")


def finish(t: ir.Table, ind: Indicator, fired: ir.BooleanValue, strength: ir.FloatingValue, **metrics: Any) -> ir.Table:
    """Select account_id, fired (never NULL), strength (never NULL, 0 when not fired) and metrics."""
    fired = fired.fill_null(False)
    strength = ibis.ifelse(fired, strength.fill_null(0.0), 0.0).cast("float64")
    cols = {"account_id": t.account_id, ind.col("fired"): fired, ind.col("strength"): strength}
    cols.update({ind.col(k): v for k, v in metrics.items()})
    return t.select(**cols)


# ---- helpers for explanation sentences --------------------------------------------------------
def num(row: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    v = row.get(key)
    if v is None:
        return default
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(f) else f


def integer(row: Mapping[str, Any], key: str) -> int:
    return int(round(num(row, key)))


def pct(x: float) -> str:
    return f"{round(100 * x)}%"


def usd(x: float) -> str:
    return f"USD {x:,.0f}" if abs(x) >= 100 else f"USD {x:,.2f}".replace(".00", "")


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"
