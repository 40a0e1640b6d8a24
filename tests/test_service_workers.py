"""Several workers on one shared store (PostgreSQL, Redis; real servers, skipped when unreachable):
each catches up the transfers the other appended, a transfer is counted once whichever worker gets
it, and the HTTP app's background catch-up makes another worker's transfers visible."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from kalasag.model import load_config
from kalasag.service.app import ServiceSettings, create_app
from kalasag.service.auth import create_api_key
from kalasag.service.scorer import StreamScorer
from service_helpers import open_test_store, transfer, unique

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def n_received(scorer, account):
    acc = scorer.account(account)
    return None if acc is None else acc["receiver"]["metrics"]["n_transactions"]


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_two_scorers_on_one_store_catch_up_each_other(kind, tmp_path):
    cfg = load_config()
    name = unique("w")
    with open_test_store(kind, tmp_path, name) as store1, open_test_store(kind, tmp_path, name) as store2:
        w1 = StreamScorer(cfg, store1, now=lambda: NOW)
        w2 = StreamScorer(cfg, store2, now=lambda: NOW)
        w1.submit([transfer(1, "S1", "R1", "25"), transfer(2, "S2", "R1", "30")])
        assert n_received(w1, "R1") == 2 and n_received(w2, "R1") is None
        # w2's append lands at seq 3 after w1's 1 and 2: it applies the log in order first
        res = w2.submit([transfer(3, "S3", "R1", "45")])
        assert res[0].duplicate is False
        assert n_received(w2, "R1") == 3
        assert n_received(w1, "R1") == 2            # not yet seen by w1 …
        assert w1.catch_up() == 1                    # … until it catches up: exactly one new entry
        assert n_received(w1, "R1") == 3
        assert w1.catch_up() == 0
        # the same transfer sent to the other worker is a duplicate, not a fourth payment
        again = w1.submit([transfer(3, "S3", "R1", "45")])
        assert again[0].duplicate is True
        assert w2.catch_up() == 0
        assert w1.account("R1") == w2.account("R1")
        assert w1.account("R1")["receiver"]["metrics"]["total_usd"] == 100.0
        # a restarted worker rebuilds the same state from the shared log
        w3 = StreamScorer(cfg, store2, now=lambda: NOW)
        assert w3.account("R1") == w1.account("R1")


def test_http_workers_on_postgres_see_each_others_transfers(tmp_path):
    cfg = load_config()
    name = unique("w")
    with open_test_store("postgres", tmp_path, name) as store1, open_test_store("postgres", tmp_path, name) as store2:
        key, _ = create_api_key(store1, "score,read")
        settings = ServiceSettings.from_config(cfg, catch_up_seconds=0.05)
        apps = [create_app(StreamScorer(cfg, s, now=lambda: NOW), s, cfg, settings=settings) for s in (store1, store2)]
        headers = {"Authorization": f"Bearer {key}"}   # one key, stored once, valid on both workers
        with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
            assert one.post("/v1/transactions", json=[transfer(1, "S1", "R7"), transfer(2, "S2", "R7")],
                            headers=headers).json()["applied"] == 2
            assert two.post("/v1/transactions", json=transfer(3, "S3", "R7"), headers=headers).json()["applied"] == 1
            deadline = time.monotonic() + 10
            while True:
                r = one.get("/v1/accounts/R7", headers=headers).json()
                if r["receiver"]["metrics"]["n_transactions"] == 3 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert r["receiver"]["metrics"]["n_transactions"] == 3
            assert two.get("/v1/accounts/R7", headers=headers).json()["receiver"]["metrics"]["n_transactions"] == 3
            dup = one.post("/v1/transactions", json=transfer(3, "S3", "R7"), headers=headers).json()
            assert dup["duplicates"] == 1 and dup["applied"] == 0
