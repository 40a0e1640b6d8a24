"""The demo-size world: scale 1.0 is about 300,000 transfers (its speed is in docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from kalasag.simulate import simulate_world


@pytest.mark.slow
def test_scale_one_is_about_300k_transfers(tmp_path):
    s = simulate_world(tmp_path, seed=0, scale=1.0, progress=False)
    assert 270_000 <= s.n_transfers <= 330_000
