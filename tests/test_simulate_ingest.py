"""Contract between the simulator and ingest: every injected bad row is quarantined for the reason
world.json announces, and every good row is accepted."""

from __future__ import annotations

import json

from kalasag.engine import Engine
from kalasag.ingest import ingest
from kalasag.model import load_config
from kalasag.simulate import simulate_world


def test_ingest_quarantines_exactly_the_injected_rows(tmp_path):
    s = simulate_world(tmp_path, seed=13, scale=0.02, inject_errors=0.02, progress=False)
    doc = json.loads((tmp_path / "world.json").read_text())
    r = ingest(Engine(), tmp_path / "transfers.csv.gz", config=load_config())
    assert r.rows_in == doc["rows_written"] == s.n_transfers + s.injected_errors
    assert r.accepted == s.n_transfers
    assert r.reasons == doc["injected_errors_by_reason"]
    assert r.notes == []          # every currency has a rate in the bundled table for the period


def test_parquet_world_is_accepted_whole(tmp_path):
    s = simulate_world(tmp_path, seed=14, scale=0.02, fmt="parquet", progress=False)
    r = ingest(Engine(), tmp_path / "transfers.parquet", config=load_config())
    assert r.rows_in == r.accepted == s.n_transfers and r.quarantined == 0
