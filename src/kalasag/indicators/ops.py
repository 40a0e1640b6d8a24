"""Two evaluators of one decision: `IBIS` (columns, batch) and `SCALAR` (Python values, stream).

Every indicator writes its fired/strength decision and the metrics its explanation quotes ONCE, as
`decide(m, p, X, side)`: `m` maps metric names to values — columns of an Ibis table in batch, plain
Python values in the stream — and `X` is one of the two namespaces below, which have the same
functions with SQL semantics: `None` is SQL NULL, comparisons with NULL are NULL, `and_`/`or_` are
three-valued, `ifelse` takes the else branch on NULL, `least`/`greatest` skip NULLs (DuckDB, Spark).

`Text` does the same for the string pipelines of the name rule (kalasag.indicators.names): it wraps
a Python string and offers the Ibis string methods those functions use, with DuckDB's semantics
(RE2 regexes: ASCII `\\b`, `\\s` = [\\t\\n\\f\\r ]; global REGEXP_REPLACE; REGEXP_EXTRACT gives '' when
nothing matches; simple one-to-one lower-casing), so `normalize_name(Text(raw))` runs the batch code.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import ibis
import ibis.expr.types as ir


# ---------------------------------------------------------------------------------------------
class IbisOps:
    """Decision operators over Ibis columns (the batch form)."""

    kind = "ibis"

    @staticmethod
    def lit(value: Any, type: str | None = None) -> ir.Value:
        return ibis.literal(value, type=type) if type else ibis.literal(value)

    @staticmethod
    def null(type: str) -> ir.Value:
        return ibis.null(type)

    @staticmethod
    def ifelse(cond: Any, a: Any, b: Any) -> ir.Value:
        return ibis.ifelse(cond, a, b)

    @staticmethod
    def least(*xs: Any) -> ir.Value:
        return ibis.least(*xs)

    @staticmethod
    def greatest(*xs: Any) -> ir.Value:
        return ibis.greatest(*xs)

    @staticmethod
    def fill_null(v: ir.Value, default: Any) -> ir.Value:
        return v.fill_null(default)

    @staticmethod
    def isnull(v: ir.Value) -> ir.BooleanValue:
        return v.isnull()

    @staticmethod
    def notnull(v: ir.Value) -> ir.BooleanValue:
        return v.notnull()

    @staticmethod
    def eq(a: Any, b: Any) -> ir.BooleanValue:
        return a == b

    @staticmethod
    def ge(a: Any, b: Any) -> ir.BooleanValue:
        return a >= b

    @staticmethod
    def gt(a: Any, b: Any) -> ir.BooleanValue:
        return a > b

    @staticmethod
    def le(a: Any, b: Any) -> ir.BooleanValue:
        return a <= b

    @staticmethod
    def lt(a: Any, b: Any) -> ir.BooleanValue:
        return a < b

    @staticmethod
    def round_int(v: Any) -> ir.IntegerValue:
        """Round half away from zero to an int64 (SQL ROUND)."""
        return v.round().cast("int64")

    @staticmethod
    def and_(*xs: Any) -> ir.BooleanValue:
        out = xs[0]
        for x in xs[1:]:
            out = out & x
        return out

    @staticmethod
    def or_(*xs: Any) -> ir.BooleanValue:
        out = xs[0]
        for x in xs[1:]:
            out = out | x
        return out

    @staticmethod
    def div(a: Any, b: Any) -> ir.Value:
        return a / b

    @staticmethod
    def tofloat(v: Any) -> ir.FloatingValue:
        return v.cast("float64")

    @staticmethod
    def toint(v: Any) -> ir.IntegerValue:
        return v.cast("int64")

    @staticmethod
    def ratio(num: Any, den: Any) -> ir.FloatingValue:
        """num / den as float64, NULL when den is 0 or NULL."""
        return ibis.ifelse(den > 0, num.cast("float64") / den.cast("float64"), ibis.null("float64"))

    @staticmethod
    def graded(fired: Any, value: Any, strong_at: float) -> ir.FloatingValue:
        """Strength: 0 when not fired, else value / strong_at capped at 1 (1 = "high" level reached)."""
        g = ibis.least(ibis.literal(1.0), value.cast("float64").fill_null(0.0) / float(strong_at))
        return ibis.ifelse(fired.fill_null(False), g, 0.0).cast("float64")


# ---------------------------------------------------------------------------------------------
def _float(v: Any) -> float | None:
    return None if v is None else float(v)


class ScalarOps:
    """The same operators over Python values (the stream form); None is SQL NULL."""

    kind = "scalar"

    @staticmethod
    def lit(value: Any, type: str | None = None) -> Any:
        return value

    @staticmethod
    def null(type: str) -> None:
        return None

    @staticmethod
    def ifelse(cond: Any, a: Any, b: Any) -> Any:
        return a if cond else b  # CASE WHEN cond THEN a ELSE b: NULL takes the else branch

    @staticmethod
    def least(*xs: Any) -> Any:
        vals = [x for x in xs if x is not None]
        return min(vals) if vals else None

    @staticmethod
    def greatest(*xs: Any) -> Any:
        vals = [x for x in xs if x is not None]
        return max(vals) if vals else None

    @staticmethod
    def fill_null(v: Any, default: Any) -> Any:
        return default if v is None else v

    @staticmethod
    def isnull(v: Any) -> bool:
        return v is None

    @staticmethod
    def notnull(v: Any) -> bool:
        return v is not None

    @staticmethod
    def eq(a: Any, b: Any) -> bool | None:
        return None if a is None or b is None else a == b

    @staticmethod
    def ge(a: Any, b: Any) -> bool | None:
        return None if a is None or b is None else a >= b

    @staticmethod
    def gt(a: Any, b: Any) -> bool | None:
        return None if a is None or b is None else a > b

    @staticmethod
    def le(a: Any, b: Any) -> bool | None:
        return None if a is None or b is None else a <= b

    @staticmethod
    def lt(a: Any, b: Any) -> bool | None:
        return None if a is None or b is None else a < b

    @staticmethod
    def round_int(v: Any) -> int | None:
        if v is None:
            return None
        f = math.floor(abs(v))
        r = f + 1 if abs(v) - f >= 0.5 else f
        return int(r if v >= 0 else -r)

    @staticmethod
    def and_(*xs: Any) -> bool | None:
        out: bool | None = True
        for x in xs:
            if x is False:
                return False
            if x is None:
                out = None
        return out

    @staticmethod
    def or_(*xs: Any) -> bool | None:
        out: bool | None = False
        for x in xs:
            if x is True:
                return True
            if x is None:
                out = None
        return out

    @staticmethod
    def div(a: Any, b: Any) -> float | None:
        # both branches of an ifelse are evaluated in Python: a guarded division must not raise
        return None if a is None or b is None or b == 0 else a / b

    @staticmethod
    def tofloat(v: Any) -> float | None:
        return _float(v)

    @staticmethod
    def toint(v: Any) -> int | None:
        return None if v is None else int(v)

    @staticmethod
    def ratio(num: Any, den: Any) -> float | None:
        if den is None or num is None or not den > 0:
            return None
        return float(num) / float(den)

    @staticmethod
    def graded(fired: Any, value: Any, strong_at: float) -> float:
        if not fired:
            return 0.0
        v = 0.0 if value is None else float(value)
        return min(1.0, v / float(strong_at))


IBIS = IbisOps()
SCALAR = ScalarOps()


# ---------------------------------------------------------------------------------------------
_LOWER_SPECIAL = {"İ": "i"}
_UPPER_SPECIAL = {"ß": "ẞ"}


def sql_upper(s: str) -> str:
    """DuckDB's upper(): Unicode simple case mapping (one code point to one)."""
    if s.isascii():
        return s.upper()
    out = []
    for ch in s:
        up = _UPPER_SPECIAL.get(ch) or ch.upper()
        out.append(up if len(up) == 1 else ch)
    return "".join(out)


def sql_lower(s: str) -> str:
    """DuckDB's lower(): Unicode simple case mapping (one code point to one)."""
    if s.isascii():
        return s.lower()
    out = []
    for ch in s:
        low = _LOWER_SPECIAL.get(ch) or ch.lower()
        out.append(low if len(low) == 1 else ch)
    return "".join(out)


@lru_cache(maxsize=512)
def re2(pattern: str) -> re.Pattern[str]:
    """A Python regex with RE2's meaning for the constructs the indicators use (ASCII classes and
    word boundaries, `\\s` without `\\v`, `$` only at the very end)."""
    p = pattern.replace(r"\s", r"[\t\n\f\r ]")
    p = re.sub(r"(?<!\\)\$", r"\\Z", p)
    return re.compile(p, re.ASCII)


@lru_cache(maxsize=64)
def _translation(src: str, dst: str) -> dict[int, int | None]:
    table: dict[int, int | None] = {}
    for i, ch in enumerate(src):
        if ord(ch) not in table:
            table[ord(ch)] = ord(dst[i]) if i < len(dst) else None
    return table


_TRIM = " \t\n\r\x0b\x0c"


class Text:
    """A string value (or NULL) with the Ibis string methods the name rule uses, DuckDB semantics."""

    __slots__ = ("v",)

    def __init__(self, v: str | None) -> None:
        self.v = v

    def lower(self) -> Text:
        return Text(None if self.v is None else sql_lower(self.v))

    def translate(self, src: str, dst: str) -> Text:
        return Text(None if self.v is None else self.v.translate(_translation(src, dst)))

    def re_replace(self, pattern: str, repl: str) -> Text:
        return Text(None if self.v is None else re2(pattern).sub(repl.replace("\\", "\\\\"), self.v))

    def re_extract(self, pattern: str, index: int) -> Text:
        if self.v is None:
            return Text(None)
        m = re2(pattern).search(self.v)
        return Text((m.group(index) or "") if m else "")

    def nullif(self, other: str) -> Text:
        return Text(None if self.v == other else self.v)

    def fill_null(self, other: Any) -> Text:
        return self if self.v is not None else (other if isinstance(other, Text) else Text(other))

    def strip(self) -> Text:
        return Text(None if self.v is None else self.v.strip(_TRIM))

    def length(self) -> int | None:
        return None if self.v is None else len(self.v)

    def right(self, n: int) -> Text:
        return Text(None if self.v is None else (self.v[-n:] if n > 0 else ""))

    def isnull(self) -> bool:
        return self.v is None

    def notnull(self) -> bool:
        return self.v is not None

    def __add__(self, other: Any) -> Text:
        o = other.v if isinstance(other, Text) else other
        return Text(None if self.v is None or o is None else self.v + o)

    def __radd__(self, other: Any) -> Text:
        o = other.v if isinstance(other, Text) else other
        return Text(None if self.v is None or o is None else o + self.v)

    def __repr__(self) -> str:
        return f"Text({self.v!r})"


def finite(v: Any) -> Any:
    """NaN (pandas' missing) → None; everything else unchanged."""
    return None if isinstance(v, float) and math.isnan(v) else v


# ---------------------------------------------------------------------------------------------
# The stream's fast path: `decide` traced once into plain Python.
#
# Calling SCALAR's functions costs a Python call per operator; the real-time service evaluates every
# decision of an account at every transfer. `compile_decide` runs an indicator's `decide` ONCE with
# symbolic metrics and the operators below, which write the SQL semantics of each operator as a line
# of Python instead of computing it; the lines become one function of the metrics dict that returns
# the evidence columns with `finish`'s rules. The decision is still written once — the compiled
# function is `decide` itself, specialized to one side and one set of parameters — and a test holds
# it equal to `decide` over SCALAR on random metrics.

class _Sym:
    """A symbolic value of the traced decision (the name of a local variable)."""

    __slots__ = ("b", "name")

    def __init__(self, b: _Builder, name: str) -> None:
        self.b, self.name = b, name

    def _bin(self, other: Any, op: str, rev: bool = False) -> _Sym:
        x, y = (other, self) if rev else (self, other)
        return self.b.emit(f"{self.b.val(x)} {op} {self.b.val(y)}", x, y)

    def __add__(self, o: Any) -> _Sym:
        return self._bin(o, "+")

    def __radd__(self, o: Any) -> _Sym:
        return self._bin(o, "+", True)

    def __sub__(self, o: Any) -> _Sym:
        return self._bin(o, "-")

    def __rsub__(self, o: Any) -> _Sym:
        return self._bin(o, "-", True)

    def __mul__(self, o: Any) -> _Sym:
        return self._bin(o, "*")

    def __rmul__(self, o: Any) -> _Sym:
        return self._bin(o, "*", True)

    def __truediv__(self, o: Any) -> _Sym:
        return self._bin(o, "/")

    def __mod__(self, o: Any) -> _Sym:
        return self._bin(o, "%")

    def __rtruediv__(self, o: Any) -> _Sym:
        return self._bin(o, "/", True)

    def __bool__(self) -> bool:
        raise TypeError("a traced decision used a value in Python control flow (use X.ifelse)")


class _Builder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: list[Any] = []
        self.metrics: dict[str, _Sym] = {}

    def val(self, x: Any) -> str:
        if isinstance(x, _Sym):
            return x.name
        if x is None or isinstance(x, bool) or type(x) is int or (type(x) is float and math.isfinite(x)):
            return repr(x)
        self.consts.append(x)
        return f"K[{len(self.consts) - 1}]"

    def nulls(self, *xs: Any) -> str | None:
        """The condition "one of xs is NULL" ('' when none can be, None when one always is)."""
        conds = []
        for x in xs:
            if x is None:
                return None
            if isinstance(x, _Sym):
                conds.append(f"{x.name} is None")
        return " or ".join(conds)

    def emit(self, expr: str, *null_if: Any) -> _Sym:
        """A new variable = expr, NULL when one of `null_if` is NULL (SQL's strictness)."""
        cond = self.nulls(*null_if)
        if cond is None:
            expr = "None"
        elif cond:
            expr = f"None if {cond} else {expr}"
        name = f"v{len(self.lines)}"
        self.lines.append(f"    {name} = {expr}")
        return _Sym(self, name)

    def raw(self, expr: str) -> _Sym:
        name = f"v{len(self.lines)}"
        self.lines.append(f"    {name} = {expr}")
        return _Sym(self, name)


class _Metrics:
    def __init__(self, b: _Builder) -> None:
        self.b = b

    def __contains__(self, key: str) -> bool:  # every key the traced code asks for will be there
        return True

    def __getitem__(self, key: str) -> _Sym:
        if key not in self.b.metrics:
            self.b.metrics[key] = self.b.raw(f"m[{key!r}]")
        return self.b.metrics[key]


class TraceOps:
    """The operators of ScalarOps, written out as Python source (see compile_decide)."""

    kind = "scalar"

    def __init__(self, b: _Builder) -> None:
        self.b = b

    def lit(self, value: Any, type: str | None = None) -> Any:
        return value

    def null(self, type: str) -> None:
        return None

    def ifelse(self, cond: Any, a: Any, b: Any) -> Any:
        if not isinstance(cond, _Sym):
            return a if cond else b
        v = self.b.val
        return self.b.raw(f"{v(a)} if {v(cond)} else {v(b)}")

    def _extreme(self, xs: tuple[Any, ...], op: str) -> Any:
        vals = [x for x in xs if x is not None]
        if not vals:
            return None
        out = vals[0]
        for x in vals[1:]:
            a, c = self.b.val(out), self.b.val(x)
            cond_a = f"{a} is None" if isinstance(out, _Sym) else "False"
            cond_c = f"{c} is None" if isinstance(x, _Sym) else "False"
            out = self.b.raw(f"{c} if {cond_a} else {a} if {cond_c} else ({a} if {a} {op} {c} else {c})")
        return out

    def least(self, *xs: Any) -> Any:
        return self._extreme(xs, "<=")

    def greatest(self, *xs: Any) -> Any:
        return self._extreme(xs, ">=")

    def fill_null(self, v: Any, default: Any) -> Any:
        if not isinstance(v, _Sym):
            return default if v is None else v
        return self.b.raw(f"{self.b.val(default)} if {v.name} is None else {v.name}")

    def isnull(self, v: Any) -> Any:
        return self.b.raw(f"{v.name} is None") if isinstance(v, _Sym) else v is None

    def notnull(self, v: Any) -> Any:
        return self.b.raw(f"{v.name} is not None") if isinstance(v, _Sym) else v is not None

    def _cmp(self, a: Any, c: Any, op: str) -> Any:
        return self.b.emit(f"{self.b.val(a)} {op} {self.b.val(c)}", a, c)

    def eq(self, a: Any, c: Any) -> Any:
        return self._cmp(a, c, "==")

    def ge(self, a: Any, c: Any) -> Any:
        return self._cmp(a, c, ">=")

    def gt(self, a: Any, c: Any) -> Any:
        return self._cmp(a, c, ">")

    def le(self, a: Any, c: Any) -> Any:
        return self._cmp(a, c, "<=")

    def lt(self, a: Any, c: Any) -> Any:
        return self._cmp(a, c, "<")

    def _logic(self, xs: tuple[Any, ...], absorbing: bool) -> Any:
        out = xs[0]
        for x in xs[1:]:
            syms = [y for y in (out, x) if isinstance(y, _Sym)]
            consts = [y for y in (out, x) if not isinstance(y, _Sym)]
            if any(c is absorbing for c in consts):
                out = absorbing
                continue
            if not syms:
                out = None if any(c is None for c in consts) else (not absorbing)
                continue
            names = [s.name for s in syms]
            hit = " or ".join(f"{n} is {absorbing!r}" for n in names)
            null = any(c is None for c in consts)
            nul = "True" if null else " or ".join(f"{n} is None" for n in names)
            out = self.b.raw(f"{absorbing!r} if {hit} else (None if {nul} else {(not absorbing)!r})")
        return out

    def and_(self, *xs: Any) -> Any:
        return self._logic(xs, False)

    def or_(self, *xs: Any) -> Any:
        return self._logic(xs, True)

    def tofloat(self, v: Any) -> Any:
        return self.b.emit(f"float({self.b.val(v)})", v) if isinstance(v, _Sym) else _float(v)

    def toint(self, v: Any) -> Any:
        return self.b.emit(f"int({self.b.val(v)})", v) if isinstance(v, _Sym) else (None if v is None else int(v))

    def round_int(self, v: Any) -> Any:
        if not isinstance(v, _Sym):
            return SCALAR.round_int(v)
        return self.b.emit(f"_round_int({v.name})", v)

    def div(self, a: Any, c: Any) -> Any:
        cv = self.b.val(c)
        cond = self.b.nulls(a, c)
        if cond is None:
            return None
        zero = f"{cv} == 0"
        return self.b.raw(f"None if {cond + ' or ' if cond else ''}{zero} else {self.b.val(a)} / {cv}")

    def ratio(self, num: Any, den: Any) -> Any:
        cond = self.b.nulls(num, den)
        if cond is None:
            return None
        d = self.b.val(den)
        return self.b.raw(f"None if {cond + ' or ' if cond else ''}not {d} > 0 else float({self.b.val(num)}) / float({d})")

    def graded(self, fired: Any, value: Any, strong_at: float) -> Any:
        v = self.b.val(value)
        fv = f"(0.0 if {v} is None else float({v}))" if isinstance(value, _Sym) else repr(float(0.0 if value is None else value))
        g = f"min(1.0, {fv} / {float(strong_at)!r})"
        if not isinstance(fired, _Sym):
            return self.b.raw(g) if fired else 0.0
        return self.b.raw(f"{g} if {fired.name} else 0.0")


def compile_scalar(fn: Any, *names: str) -> Any:
    """`fn(*args, X)` (a per-transfer rule written once over X) traced into a plain Python function
    of `names` (e.g. Context's `night_flag` of the sender's local hour)."""
    b = _Builder()
    args = [b.raw(n) for n in names]
    out = fn(*args, TraceOps(b))
    src = f"def _traced({', '.join(names)}, K=K):\n" + "\n".join(b.lines) + f"\n    return {b.val(out)}\n"
    scope: dict[str, Any] = {"K": tuple(b.consts), "_round_int": SCALAR.round_int}
    exec(compile(src, "<traced rule>", "exec"), scope)  # noqa: S102 - our own traced rule
    f = scope["_traced"]
    f.source = src
    return f


def compile_mapping(fn: Any) -> Any:
    """`fn(m, X)` over a mapping of values traced into a plain function of the mapping."""
    b = _Builder()
    out = fn(_Metrics(b), TraceOps(b))
    src = "def _traced(m, K=K):\n" + "\n".join(b.lines) + f"\n    return {b.val(out)}\n"
    scope: dict[str, Any] = {"K": tuple(b.consts), "_round_int": SCALAR.round_int}
    exec(compile(src, "<traced rule>", "exec"), scope)  # noqa: S102 - our own traced rule
    f = scope["_traced"]
    f.source = src
    return f


def compile_decide(decide: Any, p: Any, side: str, column: Any = str, only: tuple[str, ...] | None = None) -> Any:
    """`decide(m, p, X, side)` traced into `f(m) -> {column: value}` with finish's rules (fired
    never NULL, strength 0 unless fired). `column(key)` names the column of one of decide's keys.
    `only=("fired", "strength")`: `f(m) -> (fired, strength)` instead (what scoring needs)."""
    b = _Builder()
    out = decide(_Metrics(b), p, TraceOps(b), side)
    items = []
    f = out["fired"]
    fired = f"(False if {f.name} is None else bool({f.name}))" if isinstance(f, _Sym) else repr(bool(f))
    b.lines.append(f"    _f = {fired}")
    s = out["strength"]
    if isinstance(s, _Sym):
        b.lines.append(f"    _s = float({s.name}) if _f and {s.name} is not None else 0.0")
    else:
        b.lines.append(f"    _s = {float(s)!r} if _f and {s is not None!r} else 0.0")
    for k, v in out.items():
        col = column(k)
        if k == "fired":
            items.append(f"{col!r}: _f")
        elif k == "strength":
            items.append(f"{col!r}: _s")
        else:
            items.append(f"{col!r}: {b.val(v)}")
    if only is not None:
        ret = "(" + ", ".join({"fired": "_f", "strength": "_s"}.get(k) or b.val(out[k]) for k in only) + ",)"
    else:
        ret = "{" + ", ".join(items) + "}"
    src = "def _decided(m, K=K):\n" + "\n".join(b.lines) + "\n    return " + ret + "\n"
    scope: dict[str, Any] = {"K": tuple(b.consts), "_round_int": SCALAR.round_int}
    exec(compile(src, f"<decide {side}>", "exec"), scope)  # noqa: S102 - our own traced decision
    fn = scope["_decided"]
    fn.source = src
    return fn
