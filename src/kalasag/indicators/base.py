"""The small interface every indicator implements (one object per indicator, like a SignalType)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, ValidationError

from kalasag.indicators.ops import IBIS, SCALAR, IbisOps, ScalarOps
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
    """One published indicator: identity, source, parameters, evidence and explanation.

    Transfer-level indicators are written in three parts (docs/indicators.md, "Two forms"):

    - `decide(m, p, X, side)`: the fired/strength decision and the metrics the explanation quotes,
      written ONCE over the operators of `X` (kalasag.indicators.ops): `m` maps metric names to Ibis
      columns (batch, X = IBIS) or to Python values (stream, X = SCALAR);
    - `aggregate(ctx, side)`: the batch form of the metrics, an Ibis aggregation, one row per account;
    - `new_state(side, p)`: the stream form of the same metrics, an incremental per-account state
      (`add` per transfer, O(1) amortized; `metrics()` → the dict `decide` reads). Indicators with
      `stream = False` (graph and population evidence) have no stream form: the real-time service
      refreshes them periodically with the batch code.

    `evidence(ctx, side)` = aggregate + decide, selected by `finish`.
    """

    stream: ClassVar[bool] = False

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

    def evidence(self, ctx: Context, side: str) -> ir.Table:
        """Per-account evidence: account_id, `<slug>_fired`, `<slug>_strength`, `<slug>_<metric>`…"""
        self.check_side(side)
        a = self.aggregate(ctx, side)
        return finish(a, self, **self.decide(a, ctx.params(self.id), IBIS, side))

    def aggregate(self, ctx: Context, side: str) -> ir.Table:
        """Batch metrics: one row per account with the names `decide` reads."""
        raise NotImplementedError(f"{self.id} computes its evidence directly")

    def decide(self, m: Any, p: Any, X: IbisOps | ScalarOps, side: str) -> dict[str, Any]:
        """{"fired", "strength", metric…} from the metrics `m`, with the operators of `X`."""
        raise NotImplementedError(f"{self.id} computes its evidence directly")

    def new_state(self, side: str, p: Any) -> Any:
        """A fresh per-account stream state for `side` (only when `stream` is True)."""
        raise NotImplementedError(f"{self.id} has no stream form")

    def stream_columns(self, m: Mapping[str, Any] | None, p: Any, side: str) -> dict[str, Any]:
        """The evidence columns of one account from its stream metrics: `decide` over SCALAR, then
        `finish`'s rules (fired never NULL, strength 0 unless fired). None: the account has no rows
        for this indicator (batch: no evidence row) — fired False, strength 0, metrics NULL."""
        f, s = self.col("fired"), self.col("strength")
        if m is None:
            return {f: False, s: 0.0}
        d = self.decide(m, p, SCALAR, side)
        cols = self.__dict__.setdefault("_cols", {})
        out = {}
        for k, v in d.items():
            c = cols.get(k)
            if c is None:
                c = cols[k] = self.col(k)
            out[c] = v
        fired = bool(d["fired"])
        out[f] = fired
        out[s] = float(d["strength"]) if fired and d["strength"] is not None else 0.0
        return out

    @abstractmethod
    def explain(self, row: Mapping[str, Any], side: str) -> str:
        """One sentence with the numbers behind the evidence of one account."""

    def __repr__(self) -> str:
        return f"<{self.id} {self.name}>"


_SHARED: dict[Any, Any] = {}


def shared(value: Any) -> Any:
    """One instance of an equal constant for every state that holds it (a frozenset of channels, a
    table of country weights): per-account states stay small, also after a snapshot is loaded."""
    key = (type(value), tuple(sorted(value.items())) if isinstance(value, dict) else value)
    return _SHARED.setdefault(key, value)


class StreamState:
    """The stream form of one indicator's metrics for one account on one side.

    `add(tx, cp, unrelated, related)` folds in one watched transfer of the account (`tx`: a
    kalasag.indicators.stream.Tx; `cp` the counterpart; the pair's relation flags) in O(1) amortized
    and says whether the metrics may have changed;
    `metrics(world)` returns the dict `decide` reads, or None when batch would have no evidence row
    for the account (`world`: the StreamEvidence, for forms that read a counterpart's evidence);
    `dependants()` the counterparts whose evidence reads this one's (I-03, I-04)."""

    __slots__ = ()

    def add(self, tx: Any, cp: str, unrelated: bool, related: bool | None) -> bool:  # pragma: no cover
        raise NotImplementedError

    def metrics(self, world: Any) -> dict[str, Any] | None:  # pragma: no cover
        raise NotImplementedError

    def dependants(self) -> Any:
        return ()


# ---- small expression helpers shared by the indicator modules ---------------------------------
# `ratio` and `graded` are the IBIS forms of the decision operators (kalasag.indicators.ops)
ratio = IBIS.ratio
graded = IBIS.graded


def top_row(t: ir.Table, by: str, order: list[tuple[ir.Value, bool]], **cols: ir.Value) -> ir.Table:
    """Per `by` value: `cols` of its first row under `order`, a list of (expression, descending).
    One table: `by` and `cols`. Used for the "e.g." accounts an explanation names, instead of argmax,
    whose pick among tied rows is arbitrary (two runs on one input named different accounts) and
    which can take two columns from two different tied rows. Put a unique column last in `order`:
    the pick is then fixed."""
    keys = {f"_top_k{i}": e for i, (e, _) in enumerate(order)}
    t = t.mutate(**keys, **{f"_top_{k}": v for k, v in cols.items()})
    sort = [ibis.desc(t[k]) if desc else t[k] for k, (_, desc) in zip(keys, order)]
    r = t.mutate(_top_rn=ibis.row_number().over(ibis.window(group_by=t[by], order_by=sort)))
    r = r.filter(r._top_rn == 0)
    return r.select(r[by], **{k: r[f"_top_{k}"] for k in cols})


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
