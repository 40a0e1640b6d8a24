"""Rolling-window helpers written with plain windows, joins and aggregates (DuckDB and Spark).

Window semantics used everywhere: a window of `W` seconds ending at a transfer at time t covers
the transfers with t − W < ts ≤ t. Two transfers are "within 30 days" iff they are less than
30·86400 s apart; transfers exactly 30 days apart are not.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir


def trailing(t: ir.Table, keys: Sequence[str], seconds: int, ts: str = "ts_epoch"):
    """RANGE window over `ts` covering (t − seconds, t] per `keys`."""
    return ibis.range_window(preceding=int(seconds) - 1, following=0, group_by=[t[k] for k in keys], order_by=t[ts])


def rolling_max(
    t: ir.Table, keys: Sequence[str], seconds: int, name: str, value: str | None = None, ts: str = "ts_epoch"
) -> ir.Table:
    """Per `keys`: the maximum over the rows of the count (or sum of `value`) in the trailing window."""
    w = trailing(t, keys, seconds, ts)
    agg = t[value].sum() if value else t[ts].count()
    x = t.mutate(_roll=agg.over(w))
    return x.group_by(list(keys)).aggregate(**{name: x._roll.max()})


def presence_intervals(
    t: ir.Table, keys: Sequence[str], counterpart: str, seconds: int, ts: str = "ts_epoch"
) -> ir.Table:
    """Merge each (keys, counterpart) pair's transfers into islands [start, end) with
    end = last transfer + seconds: the pair is "present" in the trailing window during the island.
    Gaps-and-islands: a new island starts when the gap to the previous transfer is ≥ seconds."""
    g = [*keys, counterpart]
    x = t.select(*[t[c] for c in g], _ts=t[ts])
    w = ibis.window(group_by=[x[c] for c in g], order_by=x._ts)
    x = x.mutate(_prev=x._ts.lag().over(w))
    x = x.mutate(_new=ibis.ifelse(x._prev.isnull() | (x._ts - x._prev >= seconds), 1, 0))
    x = x.mutate(_island=x._new.sum().over(ibis.cumulative_window(group_by=[x[c] for c in g], order_by=[x._ts, x._new.desc()])))
    return x.group_by([*g, "_island"]).aggregate(start=x._ts.min(), end=x._ts.max() + seconds).drop("_island")


def max_concurrent_distinct(
    t: ir.Table, keys: Sequence[str], counterpart: str, seconds: int, name: str, ts: str = "ts_epoch"
) -> ir.Table:
    """Per `keys`: the maximum number of distinct `counterpart` values seen in any trailing window
    of `seconds` (COUNT(DISTINCT) OVER a range window, which Spark lacks, done as a sweep):
    presence islands per pair, then +1 at each start and −1 at each end, ends before starts at the
    same instant, and the maximum of the running sum."""
    iv = presence_intervals(t, keys, counterpart, seconds, ts)
    starts = iv.select(*[iv[k] for k in keys], _time=iv.start, _delta=ibis.literal(1, "int64"))
    ends = iv.select(*[iv[k] for k in keys], _time=iv.end, _delta=ibis.literal(-1, "int64"))
    ev = starts.union(ends, distinct=False)
    w = ibis.cumulative_window(group_by=[ev[k] for k in keys], order_by=[ev._time, ev._delta])
    ev = ev.mutate(_level=ev._delta.sum().over(w))
    return ev.group_by(list(keys)).aggregate(**{name: ev._level.max().cast("int64")})


def distinct_at_rows(
    t: ir.Table, keys: Sequence[str], counterpart: str, seconds: int, name: str,
    carry: Sequence[str] = (), ts: str = "ts_epoch",
) -> ir.Table:
    """For every row of `t`: the number of distinct `counterpart` values of its `keys` in the
    trailing window (t − seconds, t] ending at the row, plus the `carry` columns of the row.

    The same sweep as `max_concurrent_distinct`, with one "probe" event per row placed after the
    ends (−1) and starts (+1) of the same instant: the running sum at a probe is the exact
    windowed distinct count at that row."""
    iv = presence_intervals(t, keys, counterpart, seconds, ts)
    nulls = {c: ibis.null(t[c].type()) for c in carry}
    k = [*keys]
    ends = iv.select(*[iv[c] for c in k], _time=iv.end, _kind=ibis.literal(0, "int64"), _delta=ibis.literal(-1, "int64"), **nulls)
    starts = iv.select(*[iv[c] for c in k], _time=iv.start, _kind=ibis.literal(1, "int64"), _delta=ibis.literal(1, "int64"), **nulls)
    probes = t.select(*[t[c] for c in k], _time=t[ts], _kind=ibis.literal(2, "int64"), _delta=ibis.literal(0, "int64"),
                      **{c: t[c] for c in carry})
    ev = ends.union(starts, distinct=False).union(probes, distinct=False)
    w = ibis.cumulative_window(group_by=[ev[c] for c in k], order_by=[ev._time, ev._kind])
    ev = ev.mutate(**{name: ev._delta.sum().over(w).cast("int64")})
    ev = ev.filter(ev._kind == 2)
    return ev.select(*k, *carry, **{ts: ev._time, name: ev[name]})


# ---- the stream forms: the same windows over one account's transfers, as they arrive -------------
# Transfers of one account arrive in time order (the real-time service rebuilds an account's state
# from its log when one arrives late). Each window keeps its items in a list with a head index:
# eviction advances the head (O(1) amortized) and the list is compacted when the head passes half.
# RANGE semantics as above: the window ending at t covers (t − W, t], peers at t included, so a
# maximum over "every row's window" is the maximum over arrivals of the window after the arrival.

EXACT_SHIFT = 64


def exact(x: float) -> int:
    """x as an exact integer multiple of 2**-64 (every USD amount ≥ 2**-11 is represented exactly):
    sliding sums of these never drift; `from_exact` rounds the true sum once."""
    n, d = x.as_integer_ratio()
    k = d.bit_length() - 1
    return n << (EXACT_SHIFT - k) if k <= EXACT_SHIFT else n >> (k - EXACT_SHIFT)


def from_exact(v: int) -> float:
    return v / (1 << EXACT_SHIFT)


class WindowCount:
    """Count of the arrivals in the trailing window (t − span, t]."""

    __slots__ = ("span", "ts", "head")

    def __init__(self, span: int) -> None:
        self.span = span
        self.ts: list[int] = []
        self.head = 0

    def add(self, t: int) -> int:
        ts = self.ts
        ts.append(t)
        lim = t - self.span
        h = self.head
        while ts[h] <= lim:
            h += 1
        if h > 16 and 2 * h > len(ts):
            del ts[:h]
            h = 0
        self.head = h
        return len(ts) - h


class WindowSum:
    """Count and exact sum of the values arriving in the trailing window (t − span, t]."""

    __slots__ = ("span", "ts", "xs", "head", "total")

    def __init__(self, span: int) -> None:
        self.span = span
        self.ts: list[int] = []
        self.xs: list[float] = []
        self.head = 0
        self.total = 0  # exact (see `exact`)

    def add(self, t: int, x: float) -> tuple[int, int]:
        """Add x at t; (count, exact sum) of the window after the arrival."""
        ts, xs = self.ts, self.xs
        ts.append(t)
        xs.append(x)
        total = self.total + exact(x)
        lim = t - self.span
        h = self.head
        while ts[h] <= lim:
            total -= exact(xs[h])
            h += 1
        if h > 16 and 2 * h > len(ts):
            del ts[:h], xs[:h]
            h = 0
        self.head, self.total = h, total
        return len(ts) - h, total


class WindowDistinct:
    """Distinct keys among the arrivals in the trailing window (t − span, t] (e.g. counterparties)."""

    __slots__ = ("span", "ts", "keys", "head", "counts")

    def __init__(self, span: int) -> None:
        self.span = span
        self.ts: list[int] = []
        self.keys: list[str] = []
        self.head = 0
        self.counts: dict[str, int] = {}

    def add(self, t: int, key: str) -> tuple[int, int]:
        """(arrivals, distinct keys) in the window after the arrival."""
        ts, keys, counts = self.ts, self.keys, self.counts
        ts.append(t)
        keys.append(key)
        counts[key] = counts.get(key, 0) + 1
        lim = t - self.span
        h = self.head
        while ts[h] <= lim:
            k = keys[h]
            c = counts[k] - 1
            if c:
                counts[k] = c
            else:
                del counts[k]
            h += 1
        if h > 16 and 2 * h > len(ts):
            del ts[:h], keys[:h]
            h = 0
        self.head = h
        return len(ts) - h, len(counts)
