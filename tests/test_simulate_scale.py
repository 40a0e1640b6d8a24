"""The demo-size world: about 300,000 transfers in under 20 s on the 2-core machine."""

from __future__ import annotations

import time

import pytest

from kalasag.simulate import simulate_world


@pytest.mark.slow
def test_scale_one_is_300k_transfers_in_under_20_seconds(tmp_path):
    t0 = time.perf_counter()
    s = simulate_world(tmp_path, seed=0, scale=1.0, progress=False)
    elapsed = time.perf_counter() - t0
    assert 270_000 <= s.n_transfers <= 330_000
    assert elapsed < 20, elapsed
