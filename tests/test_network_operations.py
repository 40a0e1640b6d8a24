"""Network alerts on a hand-made graph with two known operations, the watchlist loader's one-line
errors, and the [network] config checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "indicators"))
from kalasag_tx_fixtures import config, table, tx  # noqa: E402

from kalasag.engine import Engine  # noqa: E402
from kalasag.model import ConfigError, load_config  # noqa: E402
from kalasag.network import NETWORK_COLUMNS, NetworkError, WatchlistError, detect_operations, read_watchlist  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    return Engine(threads=1)


def p(s, r, day, usd, country="US", **kw):
    return tx(s, r, day, usd, sender_country=country, sender_name="John Smith", receiver_name=kw.pop("rname", "Maria Santos"), **kw)


# Operation A: receivers RA1, RA2 (same phone), customers CA1 (US), CA2 (GB), CA3 (US) pay each 3 × USD 50.
# Operation B: receiver RB1, customers CB1..CB3 (AU) pay 3 × USD 60. CB1 also paid RA1 once (USD 40);
# CA1 paid his sister XR once (weak tie: XR stays out); an OFW pays his family (no seed: out).
ROWS = []
for i, (c, country) in enumerate((("CA1", "US"), ("CA2", "GB"), ("CA3", "US"))):
    for k in range(3):
        ROWS.append(p(c, "RA1", 10 * i + k, 50, country, receiver_phone="+63 917 111 2222"))
        ROWS.append(p(c, "RA2", 10 * i + k + 0.5, 50, country, receiver_phone="09171112222", rname="Luz Cruz"))
for i, c in enumerate(("CB1", "CB2", "CB3")):
    for k in range(3):
        ROWS.append(p(c, "RB1", 40 + 10 * i + k, 60, "AU"))
ROWS += [p("CB1", "RA1", 90, 40, "AU"), p("CA1", "XR", 91, 50), p("O1", "F1", 92, 300, "SA")]
SCORES = {
    "sender": {"CA1": 0.8, "CA2": 0.2, "CA3": 0.2, "CB1": 0.85, "CB2": 0.6, "CB3": 0.1, "O1": 0.0},
    "receiver": {"RA1": 0.95, "RA2": 0.9, "RB1": 0.9, "XR": 0.01, "F1": 0.0},
}


def scored(engine, cfg):
    out = {}
    for side, sc in SCORES.items():
        df = pd.DataFrame({"account_id": list(sc), "score": list(sc.values())})
        df["alerted"] = df["score"] >= cfg.scoring.alert_threshold
        out[side] = engine.from_records(df)
    return out


def test_two_operations_found_scored_and_explained(engine):
    cfg = config()
    ops = detect_operations(engine, table(engine, ROWS), scored(engine, cfg), cfg)
    assert list(ops.columns) == NETWORK_COLUMNS and len(ops) == 2
    a, b = ops.iloc[0], ops.iloc[1]
    assert a.network_id == "NET-001" and a.receivers == "RA1;RA2" and a.senders == "CA1;CA2;CA3"
    assert a.score == pytest.approx((0.95 + 0.9 + 0.8) / 3) and a.risk_level == "medium"  # 0.883: ≥ 0.7, < 0.9
    assert a.n_transactions == 18 and a.total_usd == pytest.approx(900.0) and a.n_alerted == 3
    assert a.first_seen == pd.Timestamp("2025-01-06 12:00") and a.last_seen == pd.Timestamp("2025-01-29 00:00")  # CA3 → RA2 on day 22.5
    assert a.explanation.startswith(
        "A suspected facilitator operation of 2 receiving accounts paid by 3 customers in 2 countries (GB, US), "
        "USD 900 in 18 payments from 2025-01-06 to 2025-01-29.")
    assert "3 customers pay more than one of its receiving accounts. 2 receiving accounts share a phone number." in a.explanation
    assert "3 of its 5 accounts are alerted; its strongest account scores 0.95, 0.90, 0.80 average a network score of 0.88." in a.explanation
    assert b.receivers == "RB1" and b.senders == "CB1;CB2;CB3" and b.n_transactions == 9 and b.total_usd == pytest.approx(540.0)
    assert b.score == pytest.approx((0.9 + 0.85 + 0.6) / 3)
    assert "1 receiving account paid by 3 customers in 1 country (AU)" in b.explanation


def test_thresholds_from_config(engine):
    # stricter ties: CA2 and CA3 (3 payments of USD 50 each with a seed) no longer join
    cfg = load_config(overrides={"network": {"tie_min_transactions": 4}})
    ops = detect_operations(engine, table(engine, ROWS), scored(engine, cfg), cfg)
    assert "CA2" not in ";".join(ops.senders)
    # a network alert needs score ≥ alert_threshold: B (0.783) drops at 0.8
    cfg = load_config(overrides={"network": {"alert_threshold": 0.8}})
    ops = detect_operations(engine, table(engine, ROWS), scored(engine, cfg), cfg)
    assert list(ops.receivers) == ["RA1;RA2"]
    # no seeds at all: an empty frame with the columns
    cfg = load_config(overrides={"network": {"seed_score": 0.99}})
    ops = detect_operations(engine, table(engine, ROWS), scored(engine, cfg), cfg)
    assert ops.empty and list(ops.columns) == NETWORK_COLUMNS


def test_bad_scored_tables_one_line(engine):
    cfg = config()
    sc = scored(engine, cfg)
    with pytest.raises(NetworkError, match="lack the sender side"):
        detect_operations(engine, table(engine, ROWS), {"receiver": sc["receiver"]}, cfg)
    with pytest.raises(NetworkError, match="lacks column"):
        detect_operations(engine, table(engine, ROWS), {**sc, "sender": sc["sender"].drop("alerted")}, cfg)


def test_network_config_checked():
    with pytest.raises(ConfigError, match="risk_medium must not exceed risk_high"):
        load_config(overrides={"network": {"risk_medium": 0.95}})
    with pytest.raises(ConfigError, match="network.max_nodes"):
        load_config(overrides={"network": {"max_nodes": 1}})


# ---- watchlist loader -----------------------------------------------------------------------------
def test_watchlist_reads_any_columns(tmp_path):
    f = tmp_path / "known.csv"
    f.write_text("Name, PHONE ,note\nAna Reyes,,case 12\n\n,+63 917 555 0101,\n")
    df = read_watchlist(f)
    assert list(df.columns) == ["entry", "account_id", "name", "phone"]
    assert df["entry"].tolist() == [2, 4] and df["name"].iloc[0] == "Ana Reyes" and pd.isna(df["account_id"]).all()


@pytest.mark.parametrize("text, message", [
    ("", "line 1: empty watchlist"),
    ("id,who\nA,B\n", "line 1: header has none of account_id, name, phone"),
    ("account_id,account_id\nA,B\n", "line 1: column account_id appears twice"),
    ("account_id,name\nA,Ana\nB\n", "line 3: 1 fields, the header has 2"),
    ("account_id,name\n,\n", None),  # blank-looking row is skipped → no entries
    ("account_id,name,phone\nA,,\n , ,x\n", "line 3: phone 'x' is not a phone number"),
    ("account_id,name,phone\nA,,\n,,12\n", "line 3: phone '12' is not a phone number"),
    ("name\n123\n", "line 2: name '123' has no letters"),
    ("account_id\n", "no entries after the header"),
])
def test_watchlist_errors_are_one_line(tmp_path, text, message):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(WatchlistError) as err:
        read_watchlist(f)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(f))
    assert (message or "no entries after the header") in msg


def test_watchlist_missing_or_binary(tmp_path):
    with pytest.raises(WatchlistError, match="watchlist file not found"):
        read_watchlist(tmp_path / "nope.csv")
    f = tmp_path / "bin.csv"
    f.write_bytes(b"account_id\n\xff\xfe\n")
    with pytest.raises(WatchlistError, match="not UTF-8"):
        read_watchlist(f)


def test_docs_cover_every_network_parameter_and_source():
    import json
    import re

    from kalasag.indicators import INDICATORS

    doc = (Path(__file__).parents[1] / "docs" / "network.md").read_text()
    cfg = load_config()
    for ind_id in ("I-23", "N-01", "N-02", "N-03", "N-04"):
        ind = INDICATORS[ind_id]
        section = doc.split(f"## {ind_id} ")[1].split("\n## ")[0]
        for key, value in cfg.indicator_params(ind_id).items():
            shown = json.dumps(value) if isinstance(value, (bool, str)) else str(value)
            assert re.search(rf"\| `{key}` \| `{re.escape(shown)}` \|", section), (ind_id, key, shown)
        for url in ind.source.split(" ; "):
            assert url.strip() in section, (ind_id, url)
    section = doc.split("## Network alerts")[1]
    for key, value in cfg.network.model_dump().items():
        assert re.search(rf"\| `{key}` \| `{re.escape(str(value))}` \|", section), key
