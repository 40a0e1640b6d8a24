"""The HTTP API contract, against the real StreamScorer on a SQLite store: every 4xx, all-or-nothing
batches, duplicates, the reading endpoints, metrics, OpenAPI, and group commit's equivalence with
one-by-one submission."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kalasag.model import REQUIRED_COLUMNS, load_config
from kalasag.service.app import ServiceSettings, create_app
from kalasag.service.auth import create_api_key, revoke_api_key
from kalasag.service.gate import Gate, Rejection
from kalasag.service.scorer import StreamScorer
from kalasag.service.sqlite_store import SQLiteStore
from kalasag.service.stores import StoreError
from service_helpers import transfer

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ISO_DIR = Path(__file__).parent / "data" / "iso20022"


class Service:
    def __init__(self, tmp_path: Path, overrides: dict | None = None, **settings) -> None:
        self.config = load_config(overrides=overrides)
        self.store = SQLiteStore(tmp_path / "state")
        self.key, _ = create_api_key(self.store, "score,read")
        self.score_key, _ = create_api_key(self.store, "score")
        self.read_key, _ = create_api_key(self.store, "read")
        self.revoked_key, rec = create_api_key(self.store, "score,read")
        revoke_api_key(self.store, rec.key_id)
        self.scorer = StreamScorer(self.config, self.store, now=lambda: NOW)
        self.app = create_app(self.scorer, self.store, self.config, background=False,
                              settings=ServiceSettings.from_config(self.config, **settings))
        self.client = TestClient(self.app)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def post(self, body, key: str | None = None, **kw):
        return self.client.post("/v1/transactions", json=body, headers=self.auth(key), **kw)

    def get(self, path: str, key: str | None = None):
        return self.client.get(path, headers=self.auth(key))


@pytest.fixture
def svc(tmp_path):
    s = Service(tmp_path)
    with s.client:
        yield s
    s.store.close()


def error(resp) -> dict:
    body = resp.json()
    assert set(body) == {"error"}, body
    return body["error"]


# -- authentication ----------------------------------------------------------------------------
ENDPOINTS = [("POST", "/v1/transactions"), ("POST", "/v1/iso20022"), ("GET", "/v1/alerts"),
             ("GET", "/v1/accounts/R1"), ("GET", "/metrics")]


def test_healthz_answers_without_a_key(svc):
    r = svc.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def wait_ready(client, seconds: float = 30.0):
    import time

    deadline = time.monotonic() + seconds
    while True:
        r = client.get("/readyz")
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.02)


def test_readyz_answers_once_the_warm_up_ran_without_touching_the_state(svc):
    r = wait_ready(svc.client)
    assert r.status_code == 200 and r.json()["status"] == "ready" and r.json()["warm_up_seconds"] > 0
    # the warm-up scored its synthetic transfers on a scratch scorer: nothing in the log or the state
    assert svc.store.last_seq() == 0 and svc.scorer.applied_seq == 0
    assert not any(svc.scorer.evidence.accounts[s] for s in ("sender", "receiver"))
    assert svc.scorer.counters["submitted"] == 0
    assert svc.post(transfer(1)).status_code == 200 and svc.store.last_seq() == 1


def test_readyz_is_503_until_the_warm_up_has_run_while_healthz_is_200(tmp_path):
    import threading

    release = threading.Event()
    s = Service(tmp_path)
    real = s.scorer.warm_up
    s.scorer.warm_up = lambda n, tail: (release.wait(30), real(n, tail))[1]
    with s.client:
        assert s.client.get("/healthz").status_code == 200
        r = s.client.get("/readyz")
        assert r.status_code == 503 and r.json() == {"status": "starting"}
        release.set()
        assert wait_ready(s.client).status_code == 200
    s.store.close()


def test_no_warm_up_when_configured_off(tmp_path):
    s = Service(tmp_path, warm_up_transfers=0, warm_up_log_transfers=0)
    with s.client:
        r = wait_ready(s.client)
        assert r.status_code == 200 and r.json()["warm_up_seconds"] is None
    s.store.close()


@pytest.mark.parametrize("method, path", ENDPOINTS)
@pytest.mark.parametrize("header, fragment", [
    (None, "missing API key"),
    ("Basic dXNlcjpwYXNz", "expected 'Bearer <key>'"),
    ("Bearer not-a-key", "invalid API key"),
    ("Bearer ksg_0000000000_" + "A" * 43, "invalid API key"),  # well-formed, unknown id
])
def test_every_endpoint_but_healthz_needs_a_valid_key(svc, method, path, header, fragment):
    headers = {"Authorization": header} if header else {}
    r = svc.client.request(method, path, headers=headers, json=transfer(1))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    e = error(r)
    assert e["code"] == "unauthorized" and fragment in e["message"]


def test_a_forged_secret_and_a_revoked_key_are_401(svc):
    forged = svc.key[:-2] + ("AA" if not svc.key.endswith("AA") else "BB")
    assert svc.post(transfer(1), key=forged).status_code == 401
    r = svc.post(transfer(1), key=svc.revoked_key)
    assert r.status_code == 401 and "revoked" in error(r)["message"]
    assert svc.store.last_seq() == 0


@pytest.mark.parametrize("method, path, key_attr, scope", [
    ("POST", "/v1/transactions", "read_key", "score"),
    ("POST", "/v1/iso20022", "read_key", "score"),
    ("GET", "/v1/alerts", "score_key", "read"),
    ("GET", "/v1/accounts/R1", "score_key", "read"),
    ("GET", "/metrics", "score_key", "read"),
])
def test_a_key_without_the_scope_is_403(svc, method, path, key_attr, scope):
    r = svc.client.request(method, path, headers=svc.auth(getattr(svc, key_attr)), json=transfer(1))
    assert r.status_code == 403
    e = error(r)
    assert e["code"] == "forbidden" and f"lacks scope '{scope}'" in e["message"]
    assert svc.store.last_seq() == 0


# -- scoring -----------------------------------------------------------------------------------
def test_one_transfer_is_scored_and_a_resend_is_a_duplicate_not_counted_again(svc):
    r = svc.post(transfer(1, "S1", "R1"))
    assert r.status_code == 200
    body = r.json()
    assert body["applied"] == 1 and body["duplicates"] == 0 and len(body["results"]) == 1
    res = body["results"][0]
    assert res["txn_id"] == "T000001" and res["duplicate"] is False
    assert res["sender"]["account_id"] == "S1" and res["receiver"]["account_id"] == "R1"
    for side in ("sender", "receiver"):
        assert 0.0 <= res[side]["score"] <= 1.0
        assert res[side]["risk_level"] in ("low", "medium", "high")
        assert isinstance(res[side]["indicators"], list)
    again = svc.post(transfer(1, "S1", "R1")).json()
    assert again["applied"] == 0 and again["duplicates"] == 1
    assert again["results"][0]["duplicate"] is True
    assert again["results"][0]["receiver"] == res["receiver"]          # nothing changed
    assert svc.store.last_seq() == 1
    acc = svc.get("/v1/accounts/R1").json()
    assert acc["receiver"]["metrics"]["n_transactions"] == 1           # counted once


def test_hold_follows_the_configured_threshold(tmp_path):
    # score is a logistic value strictly between 0 and 1: threshold 0 holds everything, 1 nothing
    for threshold, expected in ((0.0, True), (1.0, False)):
        s = Service(tmp_path / str(threshold), overrides={"service": {"hold_threshold": threshold}})
        with s.client:
            res = s.post({"transfers": [transfer(1), transfer(2, "S2", "R2")]}).json()["results"]
        assert [x["hold"] for x in res] == [expected, expected]
        s.store.close()


def test_a_batch_is_all_or_nothing_and_the_error_names_index_field_and_reason(svc):
    batch = [transfer(1, "S1", "R1"), transfer(2, "S2", "R1"), transfer(3, "S3", "R1", amount="-5"),
             transfer(4, "S4", "R1")]
    r = svc.post({"transfers": batch})
    assert r.status_code == 422
    e = error(r)
    assert (e["code"], e["index"], e["field"], e["txn_id"]) == ("non_positive_amount", 2, "amount", "T000003")
    assert "transfers[2]" in e["message"] and "nothing" in e["message"]
    assert svc.store.last_seq() == 0
    assert svc.get("/v1/accounts/R1").status_code == 404      # the valid transfers were not applied either
    batch[2]["amount"] = "5"
    ok = svc.post({"transfers": batch}).json()
    assert ok["applied"] == 4
    assert [x["txn_id"] for x in ok["results"]] == ["T000001", "T000002", "T000003", "T000004"]
    assert svc.get("/v1/accounts/R1").json()["receiver"]["metrics"]["n_transactions"] == 4


@pytest.mark.parametrize("change, code, field", [
    ({"receiver_id": None}, "missing_required_field", "receiver_id"),
    ({"timestamp": "yesterday"}, "unparseable_timestamp", "timestamp"),
    ({"timestamp": "2026-02-01T00:00:00Z"}, "future_timestamp", "timestamp"),   # after NOW
    ({"amount": "twelve"}, "non_numeric_amount", "amount"),
    ({"amount": "0"}, "non_positive_amount", "amount"),
    ({"currency": "XYZ"}, "unknown_currency", "currency"),
    ({"receiver_country": "ZZ"}, "invalid_country_code", "receiver_country"),
    ({"channel": "pigeon"}, "invalid_channel", "channel"),
    ({"amount": [25]}, "malformed_row", "amount"),
])
def test_each_validation_reason_is_a_422_with_index_and_field(svc, change, code, field):
    bad = transfer(2, "S2", "R2")
    bad.update(change)
    if change.get("receiver_id", "") is None:
        del bad["receiver_id"]
    r = svc.post([transfer(1), bad])
    assert r.status_code == 422
    e = error(r)
    assert (e["code"], e["index"], e["field"], e["txn_id"]) == (code, 1, field, "T000002")
    assert svc.store.last_seq() == 0


@pytest.mark.parametrize("content, ctype, status, code", [
    (b'{"txn_id": ', "application/json", 400, "invalid_json"),
    (b'"a string"', "application/json", 422, "invalid_body"),
    (b'{"transfers": {"txn_id": "T1"}}', "application/json", 422, "invalid_body"),
    (b'{"transfers": [], "extra": 1}', "application/json", 422, "invalid_body"),
    (b'{"transfers": []}', "application/json", 422, "empty_batch"),
    (b'[]', "application/json", 422, "empty_batch"),
    (b'{"transfers": [1]}', "application/json", 422, "invalid_transfer"),
    (b'txn_id,amount\nT1,5', "text/csv", 415, "unsupported_media_type"),
])
def test_malformed_bodies(svc, content, ctype, status, code):
    r = svc.client.post("/v1/transactions", content=content, headers={**svc.auth(), "Content-Type": ctype})
    assert r.status_code == status
    assert error(r)["code"] == code


def test_oversized_requests_are_413(tmp_path):
    s = Service(tmp_path, max_batch=3, max_body_bytes=2000)
    with s.client:
        r = s.post({"transfers": [transfer(i, f"S{i}") for i in range(4)]})
        assert r.status_code == 413 and error(r)["code"] == "batch_too_large"
        assert "4 transfers" in error(r)["message"] and "limit is 3" in error(r)["message"]
        r = s.post({"transfers": [transfer(1, reference="x" * 3000)]})
        assert r.status_code == 413 and error(r)["code"] == "payload_too_large"
        # without Content-Length (chunked upload) the limit still holds
        r = s.client.post("/v1/transactions", content=iter([b'{"transfers": [', b" " * 2500, b"]}"]),
                          headers={**s.auth(), "Content-Type": "application/json"})
        assert r.status_code == 413 and error(r)["code"] == "payload_too_large"
        assert s.post({"transfers": [transfer(i, f"S{i}") for i in range(3)]}).json()["applied"] == 3
    s.store.close()


@pytest.mark.parametrize("failure", [StoreError("PostgreSQL error: connection lost"),
                                     sqlite3.OperationalError("disk I/O error")])
def test_store_failure_is_503_and_nothing_is_applied(svc, monkeypatch, failure):
    def broken(transfers):
        raise failure

    monkeypatch.setattr(svc.store, "append", broken)
    r = svc.post(transfer(1))
    assert r.status_code == 503 and error(r)["code"] == "store_unavailable"
    assert r.headers["retry-after"] == "1"
    monkeypatch.undo()
    assert svc.store.last_seq() == 0
    assert svc.get("/v1/accounts/R1").status_code == 404
    assert svc.post(transfer(1)).json()["applied"] == 1


# -- reading -----------------------------------------------------------------------------------
def test_account_endpoint_shows_hand_computable_metrics(svc):
    svc.post([transfer(1, "S1", "R1", "25"), transfer(2, "S2", "R1", "30"), transfer(3, "S3", "R1", "45"),
              transfer(4, "S1", "R2", "10")])
    acc = svc.get("/v1/accounts/R1").json()
    assert acc["account_id"] == "R1" and "sender" not in acc
    m = acc["receiver"]["metrics"]
    assert (m["n_transactions"], m["total_usd"], m["counterparties"]) == (3, 100.0, 3)
    assert isinstance(acc["receiver"]["explanation"], str)
    s1 = svc.get("/v1/accounts/S1").json()
    assert "receiver" not in s1
    assert (s1["sender"]["metrics"]["n_transactions"], s1["sender"]["metrics"]["total_usd"]) == (2, 35.0)
    r = svc.get("/v1/accounts/nobody")
    assert r.status_code == 404
    assert error(r)["code"] == "unknown_account" and "'nobody'" in error(r)["message"]


def test_alerts_endpoint_orders_filters_and_limits(tmp_path):
    # alert threshold 0: every scored account is alerted, so the expected set is known by hand
    s = Service(tmp_path, overrides={"scoring": {"alert_threshold": 0.0}})
    with s.client:
        s.post([transfer(1, "S1", "R1"), transfer(2, "S2", "R1", "400"), transfer(3, "S3", "R2", "60")])
        alerts = s.get("/v1/alerts").json()["alerts"]
        assert sorted((a["side"], a["account_id"]) for a in alerts) == [
            ("receiver", "R1"), ("receiver", "R2"), ("sender", "S1"), ("sender", "S2"), ("sender", "S3")]
        scores = [a["score"] for a in alerts]
        assert scores == sorted(scores, reverse=True)
        senders = s.get("/v1/alerts?side=sender").json()["alerts"]
        assert sorted(a["account_id"] for a in senders) == ["S1", "S2", "S3"]
        assert len(s.get("/v1/alerts?limit=2").json()["alerts"]) == 2
        r1 = next(a for a in alerts if a["account_id"] == "R1")
        assert (r1["n_transactions"], r1["total_usd"], r1["counterparties"]) == (2, 425.0, 2)
        for bad, field in (("limit=0", "query.limit"), ("limit=x", "query.limit"), ("side=both", "query.side")):
            r = s.get(f"/v1/alerts?{bad}")
            assert r.status_code == 422
            assert error(r)["code"] == "invalid_parameter" and error(r)["field"] == field
    s.store.close()


def test_metrics_count_what_happened(svc):
    svc.post([transfer(1), transfer(2, "S2", "R2")])
    svc.post(transfer(1))                                  # duplicate
    svc.post([transfer(3, amount="-1")])                   # rejected
    svc.post(transfer(4), key=svc.read_key)                # 403
    text = svc.get("/metrics").text

    def value(name: str, **labels: str) -> float:
        lab = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pat = re.escape(name + (f"{{{lab}}}" if lab else "")) + r" (\S+)"
        m = re.search("^" + pat + "$", text, re.M)
        assert m, f"{name} {labels} not in /metrics"
        return float(m.group(1))

    assert value("kalasag_transfers_applied_total", source="http") == 2
    assert value("kalasag_transfers_duplicate_total", source="http") == 1
    assert value("kalasag_transfers_rejected_total", reason="non_positive_amount", source="http") == 1
    assert value("kalasag_http_requests_total", method="POST", route="/v1/transactions", status="200") == 2
    assert value("kalasag_http_requests_total", method="POST", route="/v1/transactions", status="422") == 1
    assert value("kalasag_http_requests_total", method="POST", route="/v1/transactions", status="403") == 1
    assert value("kalasag_http_request_seconds_count", route="/v1/transactions") == 4
    assert value("kalasag_scorer_transfers_applied") == 2
    assert value("kalasag_scorer_accounts_receiver") == 2
    assert value("kalasag_request_transfers_sum") == 3          # 2 + 1 transfers in accepted requests


def test_openapi_documents_every_endpoint_auth_and_the_transfer_schema(svc):
    spec = svc.client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/v1/transactions", "/v1/iso20022", "/v1/alerts", "/v1/accounts/{account_id}",
                                  "/metrics", "/healthz", "/readyz"}
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/transactions"]["post"]["security"] == [{"ApiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert "security" not in spec["paths"]["/readyz"]["get"]
    transfer_schema = spec["components"]["schemas"]["Transfer"]
    assert sorted(transfer_schema["required"]) == sorted(REQUIRED_COLUMNS)
    assert "422" in spec["paths"]["/v1/transactions"]["post"]["responses"]


# -- ISO 20022 ---------------------------------------------------------------------------------
ISO_OK = {"single.xml": 1, "batch.xml": 3, "minimal.xml": 1, "accounts.xml": 3}       # CdtTrfTxInf count
ISO_BAD = ("bad_amount.xml", "billion_laughs.xml", "malformed.xml", "missing_ccy.xml", "not_pacs008.xml", "xxe.xml")


def iso_post(svc, xml: bytes, ctype: str = "application/xml"):
    return svc.client.post("/v1/iso20022", content=xml, headers={**svc.auth(), "Content-Type": ctype})


@pytest.mark.parametrize("name, n", sorted(ISO_OK.items()))
def test_iso20022_sample_messages_are_scored_like_the_same_transfers_in_json(svc, tmp_path, name, n):
    from kalasag.service.iso20022 import parse_pacs008

    xml = (ISO_DIR / name).read_bytes()
    records = parse_pacs008(xml)
    r = iso_post(svc, xml)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] == n and len(body["results"]) == n
    assert [x["txn_id"] for x in body["results"]] == [rec["txn_id"] for rec in records]
    assert [x["receiver"]["account_id"] for x in body["results"]] == [rec["receiver_id"] for rec in records]
    # the same records posted as JSON to a fresh service score identically
    other = Service(tmp_path / "json")
    with other.client:
        as_json = other.post({"transfers": records}).json()
    other.store.close()
    assert as_json["results"] == body["results"]
    assert iso_post(svc, xml).json()["duplicates"] == n          # a resent message counts nothing twice


@pytest.mark.parametrize("name", ISO_BAD)
def test_iso20022_bad_sample_messages_are_400_naming_the_problem(svc, name):
    from kalasag.service.iso20022 import Iso20022Error, parse_pacs008

    xml = (ISO_DIR / name).read_bytes()
    with pytest.raises(Iso20022Error) as exc:
        parse_pacs008(xml)
    r = iso_post(svc, xml)
    assert r.status_code == 400
    assert error(r)["code"] == "invalid_iso20022" and error(r)["message"] == str(exc.value)
    assert svc.store.last_seq() == 0


def test_iso20022_wrong_content_type_and_broken_xml(svc):
    r = svc.client.post("/v1/iso20022", content=b"<Document/>", headers={**svc.auth(), "Content-Type": "application/json"})
    assert r.status_code == 415 and error(r)["code"] == "unsupported_media_type"
    r = svc.client.post("/v1/iso20022", content=b"<Document><unclosed>", headers={**svc.auth(), "Content-Type": "application/xml"})
    assert r.status_code == 400 and error(r)["code"] == "invalid_iso20022"
    r = svc.client.post("/v1/iso20022", content=b"<NotPacs/>", headers={**svc.auth(), "Content-Type": "text/xml"})
    assert r.status_code == 400 and error(r)["code"] == "invalid_iso20022"
    assert svc.store.last_seq() == 0


# -- group commit ------------------------------------------------------------------------------
def test_group_commit_gives_the_results_of_one_by_one_submission(tmp_path):
    """Requests arriving together are submitted as one batch; a bad request is peeled off and the
    others get exactly what sequential submission gives (duplicates across requests included)."""
    requests = [
        [transfer(1, "S1", "R1"), transfer(2, "S2", "R1")],
        [transfer(3, "S3", "R1", amount="-1")],                 # rejected: nothing of it applied
        [transfer(2, "S2", "R1"), transfer(4, "S1", "R2")],      # T000002 repeats request 0
        [transfer(5, "S4", "R1", "300")],
        [transfer(6, "S5", "R3", currency="ABC")],               # rejected
        [transfer(5, "S4", "R1", "300")],                        # duplicate of request 3
    ]
    cfg = load_config()

    def fresh(name):
        store = SQLiteStore(tmp_path / name)
        return store, StreamScorer(cfg, store, now=lambda: NOW)

    seq_store, seq_scorer = fresh("sequential")
    expected = []
    from kalasag.service.scorer import TransferRejected

    for req in requests:
        try:
            expected.append(seq_scorer.submit(req))
        except TransferRejected as exc:
            expected.append(("rejected", exc.index, exc.reason))

    grp_store, grp_scorer = fresh("grouped")
    gate = Gate(grp_scorer)

    async def run():
        return await asyncio.gather(*(gate.submit(r) for r in requests))

    got = asyncio.run(run())
    gate.close()
    normalized = [("rejected", g.index, g.reason) if isinstance(g, Rejection) else g for g in got]
    assert normalized == expected
    assert [type(g).__name__ for g in got] == ["list", "Rejection", "list", "list", "Rejection", "list"]
    assert gate.requests == 6 and gate.submits == 3     # one combined batch + one retry per bad request
    assert [r["txn_id"] for _, r in grp_store.read_since(0)] == [r["txn_id"] for _, r in seq_store.read_since(0)]
    assert grp_scorer.account("R1") == seq_scorer.account("R1")
    seq_store.close()
    grp_store.close()
