"""compute_evidence: one row per account per side with every applicable indicator's columns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir
from rich.progress import Progress

from kalasag.indicators.context import Context
from kalasag.indicators.ops import IBIS
from kalasag.indicators.registry import INDICATORS, for_side
from kalasag.model import KalasagConfig

# The plain published rule (research note §1.4): I-01 AND I-05 AND (I-02 OR I-03 OR I-04), evaluated
# on each side with the indicators as the research note defines them for that side: I-01 and I-05
# exist on both sides; I-02 (frequency from one sender) and I-04 (fan-out) are sender indicators;
# I-03 (fan-in) is a beneficiary indicator. The derived forms Kalasag adds (I-02 and I-04 seen
# from the receiver, I-03 seen from the sender) are evidence for scoring but not part of the
# plain rule. So: senders I-01 ∧ I-05 ∧ (I-02 ∨ I-04); receivers I-01 ∧ I-05 ∧ I-03.
CORE_ALL = ("I-01", "I-05")
CORE_ANY = ("I-02", "I-03", "I-04")
CORE_RULE: dict[str, dict[str, tuple[str, ...]]] = {
    "sender": {"all": ("I-01", "I-05"), "any": ("I-02", "I-04")},
    "receiver": {"all": ("I-01", "I-05"), "any": ("I-03",)},
}


@dataclass
class Evidence:
    sender: ir.Table
    receiver: ir.Table
    # the Context the indicators ran on (prepared transfers and shared intermediates): the network
    # stage reuses it instead of preparing the transfers a second time
    context: Context | None = field(default=None, repr=False, compare=False)

    def side(self, side: str) -> ir.Table:
        return self.sender if side == "sender" else self.receiver


def core_rule(table: Any, side: str, X: Any = IBIS) -> ir.BooleanValue:
    """The plain published rule on one side (see CORE_RULE); never NULL. `table`: an evidence table
    (X = IBIS) or one evidence row as a dict (X = SCALAR, the stream form)."""
    present = set(table.columns) if X is IBIS else table

    def f(ind_id: str) -> ir.BooleanValue:
        col = INDICATORS[ind_id].col("fired")
        return X.fill_null(table[col], False) if col in present else X.lit(False)

    rule = CORE_RULE[side]
    anyof = X.lit(False)
    for i in rule["any"]:
        anyof = X.or_(anyof, f(i))
    out = anyof
    for i in rule["all"]:
        out = X.and_(out, f(i))
    return out


def _base(ctx: Context, side: str) -> ir.Table:
    t = ctx.side_tx(side, watched_only=False)
    return t.group_by("account_id").aggregate(
        n_transactions=t.count().cast("int64"), total_usd=t.amount_usd.sum().cast("float64"),
        first_seen=t.timestamp.min(), last_seen=t.timestamp.max(),
        counterparties=t.counterpart_id.nunique().cast("int64"))


def join_evidence(table: ir.Table, ind: Any, ev: ir.Table) -> ir.Table:
    """Left-join one indicator's evidence onto a per-account table; accounts it has no row for
    get fired = False and strength = 0 (never NULL), other metrics stay NULL."""
    j = table.left_join(ev, table.account_id == ev.account_id)
    extra = {}
    for c in ev.columns:
        if c == "account_id":
            continue
        if c == ind.col("fired"):
            extra[c] = j[c].fill_null(False)
        elif c == ind.col("strength"):
            extra[c] = j[c].fill_null(0.0).cast("float64")
        else:
            extra[c] = j[c]
    return j.select(*[j[c] for c in table.columns], **extra)


JOIN_BATCH = 4  # indicator tables joined per materialization (see join_all_evidence)


def side_evidence(ctx: Context, side: str, progress: Progress | None = None, task: Any = None) -> ir.Table:
    def tick() -> None:
        if progress is not None:
            progress.advance(task)

    return join_all_evidence(ctx, side, _base(ctx, side), for_side(side),
                             finish=lambda out: out.mutate(core_rule=core_rule(out, side)), after_each=tick)


def join_all_evidence(ctx: Context, side: str, table: ir.Table, indicators: Iterable[Any], *,
                      finish: Callable[[ir.Table], ir.Table] | None = None,
                      after_each: Callable[[], None] | None = None) -> ir.Table:
    """`table` with every indicator's evidence left-joined on, materialized (`finish` maps the last
    expression first). A chain of left joins probes every table at once, so all their hash tables
    must fit in memory together (they cannot spill): 17 at once ran out of memory at 10M transfers
    under a 500 MB cap (docs/benchmarks.md, "Session 11"). So the chain is materialized every
    JOIN_BATCH joins, and the tables joined so far are dropped (never `table`, the caller's)."""
    eng = ctx.engine
    spent: list[ir.Table] = []   # tables the next materialization of `out` makes unneeded
    out = table
    for i, ind in enumerate(indicators, 1):
        spent.append(eng.materialize(ind.evidence(ctx, side)))
        out = join_evidence(out, ind, spent[-1])
        if i % JOIN_BATCH == 0:
            out = eng.materialize(out)
            eng.drop(*spent)
            spent = [out]
        if after_each is not None:
            after_each()
    out = eng.materialize(finish(out) if finish is not None else out)
    eng.drop(*spent)
    return out


def compute_evidence(
    engine: Any, transfers: ir.Table, config: KalasagConfig, progress: bool = False, watchlist: ir.Table | None = None
) -> Evidence:
    """Evidence tables for senders and receivers (materialized). `progress` shows a rich bar.
    `watchlist` (kalasag.network.load_watchlist) feeds I-23; without it I-23 never fires."""
    ctx = Context.build(engine, transfers, config, watchlist=watchlist)
    total = len(for_side("sender")) + len(for_side("receiver"))
    if progress:
        with Progress(transient=True) as bar:
            task = bar.add_task("indicators", total=total)
            s = side_evidence(ctx, "sender", bar, task)
            r = side_evidence(ctx, "receiver", bar, task)
    else:
        s, r = side_evidence(ctx, "sender"), side_evidence(ctx, "receiver")
    return Evidence(sender=s, receiver=r, context=ctx)


def explain(indicator_id: str, row: Mapping[str, Any], side: str) -> str:
    """The sentence of one indicator for one evidence row (the scoring room's `explain` callback)."""
    return INDICATORS[indicator_id].explain(row, side)
