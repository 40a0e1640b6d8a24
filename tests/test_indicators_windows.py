"""The rolling-window helpers on hand cases (window semantics: t − W < ts ≤ t)."""

from __future__ import annotations

import pandas as pd
import pytest

from kalasag.engine import Engine
from kalasag.indicators.windows import distinct_at_rows, max_concurrent_distinct, presence_intervals, rolling_max

W = 10


@pytest.fixture(scope="module")
def engine():
    return Engine()


def _t(engine, rows):
    return engine.from_records(pd.DataFrame(rows, columns=["k", "cp", "ts_epoch", "v"]))


def test_presence_intervals_merge_when_gap_below_window(engine):
    # a: 0, 5, 9 merge (gaps < 10); 19 starts a new island (gap 10 = window: not merged); 25 merges into it
    t = _t(engine, [("x", "a", 0, 1.0), ("x", "a", 5, 1.0), ("x", "a", 9, 1.0), ("x", "a", 19, 1.0), ("x", "a", 25, 1.0)])
    iv = engine.fetch(presence_intervals(t, ["k"], "cp", W)).sort_values("start")
    assert iv[["start", "end"]].values.tolist() == [[0, 19], [19, 35]]


def test_max_concurrent_distinct_hand_cases(engine):
    rows = [
        # x: a@0, b@5, c@9 → 3 distinct within 10 s; d@19 sees only d (a,b,c ended at 10,15,19)
        ("x", "a", 0, 1.0), ("x", "b", 5, 1.0), ("x", "c", 9, 1.0), ("x", "d", 19, 1.0),
        # y: a@0, b@10 exactly one window apart → never together; repeated a's count once
        ("y", "a", 0, 1.0), ("y", "a", 3, 1.0), ("y", "a", 6, 1.0), ("y", "b", 10, 1.0),
        # z: a and b at the same instant → 2
        ("z", "a", 100, 1.0), ("z", "b", 100, 1.0),
    ]
    got = engine.fetch(max_concurrent_distinct(_t(engine, rows), ["k"], "cp", W, "m")).set_index("k")["m"].to_dict()
    # y: a present [0,16) after merging 0,3,6; b present [10,20) → overlap at 10..15 → 2
    assert got == {"x": 3, "y": 2, "z": 2}


def test_max_concurrent_distinct_boundary(engine):
    rows = [("y", "a", 0, 1.0), ("y", "b", 10, 1.0)]  # exactly W apart → 1
    got = engine.fetch(max_concurrent_distinct(_t(engine, rows), ["k"], "cp", W, "m"))["m"].tolist()
    assert got == [1]
    rows = [("y", "a", 0, 1.0), ("y", "b", 9, 1.0)]  # W − 1 apart → 2
    assert engine.fetch(max_concurrent_distinct(_t(engine, rows), ["k"], "cp", W, "m"))["m"].tolist() == [2]


def test_rolling_max_count_and_sum(engine):
    rows = [("x", "a", 0, 1.0), ("x", "a", 9, 2.0), ("x", "a", 10, 4.0), ("x", "a", 30, 5.0)]
    t = _t(engine, rows)
    c = engine.fetch(rolling_max(t, ["k"], W, "m"))["m"].tolist()
    s = engine.fetch(rolling_max(t, ["k"], W, "m", value="v"))["m"].tolist()
    assert c == [2]  # {0,9} or {9,10}; 0 and 10 are exactly W apart
    assert s == [6.0]  # 2 + 4


def test_distinct_at_rows_exact_per_row(engine):
    rows = [("x", "a", 0, 1.0), ("x", "b", 5, 2.0), ("x", "a", 9, 3.0), ("x", "c", 10, 4.0), ("x", "c", 19, 5.0),
            ("x", "d", 19, 6.0)]
    got = engine.fetch(distinct_at_rows(_t(engine, rows), ["k"], "cp", W, "d", carry=["v"])).sort_values("v")
    # windows (t−10, t]: t=0 {a}; 5 {a,b}; 9 {a,b}; 10 {b,a,c} (a@9 still in, a@0 out); 19 {c,d} (b@5, a@9 out; c@10 in)
    assert got["d"].tolist() == [1, 2, 2, 3, 2, 2]
    assert got["ts_epoch"].tolist() == [0, 5, 9, 10, 19, 19]
