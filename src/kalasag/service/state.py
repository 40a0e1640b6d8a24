"""Snapshot encoding of the scorer's state: versioned, JSON (orjson), no pickle.

A snapshot is `MAGIC` + one JSON document. Containers are arrays whose first element is a tag
(`L` list, `T` tuple, `S` set, `F` frozenset, `D` dict as k, v, k, v…, `Q` SortedList, `I` big int as
hex, `N` non-finite float, `O` object); scalars are JSON scalars. An object is written as its class
name, which must be in a whitelist (the stream state classes of kalasag.indicators), and its slot values:
decoding only ever instantiates those classes and sets their slots — a snapshot can hold data,
never code (unlike pickle). The header records the format version and the SHA-256 of the effective
configuration: a snapshot taken under another configuration (other windows, other thresholds) is
refused and the state is rebuilt from the log instead.
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import Any

import orjson
from sortedcontainers import SortedList

from kalasag.indicators import STREAM_CLASSES

MAGIC = b"KALASAG-STATE\n"
FORMAT_VERSION = 3   # 2: the state horizon (AccountSide.cut/seq0, pairs with their last time);
                     # 3: "positions" (account sides saved after the snapshot's start, by sliced snapshots)
READABLE = frozenset({2, 3})   # a format-2 snapshot has no "positions": it loads as it always did
_INT64 = (-(1 << 63), (1 << 63) - 1)


class SnapshotError(ValueError):
    """A snapshot cannot be read (other format, other configuration, corrupt)."""


def _slots(cls: type) -> tuple[str, ...]:
    out: list[str] = []
    for k in reversed(cls.__mro__):
        for s in k.__dict__.get("__slots__", ()):
            if s not in out:
                out.append(s)
    return tuple(out)


_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in STREAM_CLASSES}
# the slots a snapshot keeps (a class may name them in `_persist`; the others are derived caches,
# reset by its `_after_load`)
_SLOTS: dict[type, tuple[str, ...]] = {cls: tuple(cls.__dict__.get("_persist") or _slots(cls)) for cls in STREAM_CLASSES}


_SCALARS = frozenset({str, bool, type(None)})
# per state class: a getter of its snapshot slots' values, as a tuple (operator.attrgetter)
def _getter(slots: tuple[str, ...]) -> Any:
    if not slots:
        return lambda v: ()
    get = attrgetter(*slots)
    return (lambda v: (get(v),)) if len(slots) == 1 else get


_GET: dict[type, Any] = {cls: _getter(slots) for cls, slots in _SLOTS.items()}
_CONTAINER_TAG = {list: "L", set: "S", tuple: "T", frozenset: "F", SortedList: "Q"}


def _plain(v: Any) -> bool:
    """All elements are JSON scalars that decode to themselves (the fast path: no recursion)."""
    kinds = set(map(type, v))
    if kinds <= _SCALARS:
        return True
    if kinds == {int}:
        return _INT64[0] <= min(v) and max(v) <= _INT64[1]
    if kinds == {float}:
        return all(map(math.isfinite, v))
    return False


def _enc(v: Any) -> Any:
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is int:
        return v if _INT64[0] <= v <= _INT64[1] else ["I", format(v, "x")]
    if t is float:
        return v if math.isfinite(v) else ["N", repr(v)]
    tag = _CONTAINER_TAG.get(t)
    if tag is not None:
        if _plain(v):
            return [tag, *v]
        return [tag, *[x if type(x) in _SCALARS else _enc(x) for x in v]]
    if t is dict:
        if _plain(v.keys()) and _plain(v.values()):
            return ["D", *[x for kv in v.items() for x in kv]]
        out: list[Any] = ["D"]
        for k, x in v.items():
            out.append(k if type(k) in _SCALARS else _enc(k))
            out.append(x if type(x) in _SCALARS else _enc(x))
        return out
    get = _GET.get(t)
    if get is not None:
        # the slot values in one call; JSON scalars as they are, the rest encoded (the hot path of
        # a snapshot: about a hundred calls per account)
        return ["O", t.__name__, *[x if type(x) in _SCALARS else _enc(x) for x in get(v)]]
    raise TypeError(f"cannot snapshot a {t.__name__}")


def _dec(v: Any) -> Any:
    if type(v) is not list:
        return v
    tag = v[0]
    flat = list not in set(map(type, v))
    if tag == "L":
        return v[1:] if flat else [_dec(x) for x in v[1:]]
    if tag == "D":
        items = v[1:] if flat else [_dec(x) for x in v[1:]]
        if len(items) % 2:
            raise SnapshotError("odd dict in a snapshot")
        it = iter(items)
        return {_key(k): x for k, x in zip(it, it, strict=True)}
    if tag == "S":
        return set(v[1:]) if flat else {_key(_dec(x)) for x in v[1:]}
    if tag == "T":
        return tuple(v[1:]) if flat else tuple(_dec(x) for x in v[1:])
    if tag == "F":
        return frozenset(v[1:]) if flat else frozenset(_key(_dec(x)) for x in v[1:])
    if tag == "Q":
        return SortedList(v[1:] if flat else (_dec(x) for x in v[1:]))
    if tag == "I":
        return int(v[1], 16)
    if tag == "N":
        return float(v[1])
    if tag == "O":
        cls = _BY_NAME.get(v[1]) if type(v[1]) is str else None
        if cls is None:
            raise SnapshotError(f"class {v[1]!r} is not a state class")
        slots = _SLOTS[cls]
        if len(v) - 2 != len(slots):
            raise SnapshotError(f"{cls.__name__}: {len(v) - 2} values for {len(slots)} slots")
        obj = cls.__new__(cls)
        for s, x in zip(slots, v[2:], strict=True):
            object.__setattr__(obj, s, _dec(x))
        after = getattr(cls, "_after_load", None)
        if after is not None:
            after(obj)
        return obj
    raise SnapshotError(f"unknown tag {tag!r}")


def _key(k: Any) -> Any:
    if isinstance(k, (list, dict, set)):
        raise SnapshotError("unhashable key in a snapshot")
    return k


def encode(state: Any, config_digest: str) -> bytes:
    head = {"format": FORMAT_VERSION, "config": config_digest}
    return MAGIC + orjson.dumps([head, _enc(state)])


def decode(blob: bytes, config_digest: str) -> Any:
    if not blob.startswith(MAGIC):
        raise SnapshotError("not a Kalasag state snapshot")
    try:
        head, body = orjson.loads(blob[len(MAGIC):])
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise SnapshotError(f"corrupt snapshot ({exc})") from exc
    if not isinstance(head, dict) or type(head.get("format")) is not int or head["format"] not in READABLE:
        raise SnapshotError(f"snapshot format {head.get('format') if isinstance(head, dict) else '?'}, "
                            f"this Kalasag reads {', '.join(map(str, sorted(READABLE)))}")
    if head.get("config") != config_digest:
        raise SnapshotError("snapshot taken under another configuration")
    try:
        return _dec(body)
    except (TypeError, ValueError, IndexError) as exc:
        raise SnapshotError(f"corrupt snapshot ({exc})") from exc
