"""report.html: summary numbers, every alert explained with its plots, escaping, no outside resources."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from kalasag.report import render_report, write_report
from kalasag.report import plots

EVIL = "<script>alert('x')</script>"

EXPLANATIONS = {
    "S-1": "I-01: Sent 41 payments under USD 50 in 90 days (+1.40 log-odds). I-05: Paid 3 unrelated receivers "
           "in the Philippines (+2.10 log-odds).",
    "S-2": "I-07: Sent 12 payments between 22:00 and 06:00 sender time (+0.90 log-odds).",
    "R-1": "I-03: Received from 7 unrelated foreign senders in 90 days; 82% of their payments were sent between "
           "22:00 and 06:00 sender time (+2.50 log-odds).",
}


def _alerts() -> pd.DataFrame:
    ts = pd.Timestamp
    rows = [
        ("R-1", "receiver", 0.97, "high", "I-03;I-05", 40, 1510.25, 9),
        ("S-1", "sender", 0.91, "high", "I-01;I-05", 41, 820.5, 3),
        ("S-2", "sender", 0.70, "medium", "I-07", 12, 300.0, 2),
        ("S-3" + EVIL, "sender", 0.55, "low", "I-02", 5, 99.0, 1),  # no details: table only
    ]
    return pd.DataFrame(
        [
            {
                "account_id": a, "side": s, "score": sc, "risk_level": lvl, "indicators": ind,
                "explanation": EXPLANATIONS.get(a, "I-02: Sent 5 payments in one day (+0.50 log-odds)."),
                "n_transactions": n, "total_usd": usd, "first_seen": ts("2025-01-05", tz="UTC"),
                "last_seen": ts("2025-11-30", tz="UTC"), "counterparties": cps,
            }
            for a, s, sc, lvl, ind, n, usd, cps in rows
        ]
    )


def _details(n: int, n_cp: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2025-01-05", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, 320 * 86400, n)), unit="s")
    cp = rng.integers(0, n_cp, n)
    usd = np.round(rng.uniform(5, 60, n), 2)
    return pd.DataFrame(
        {
            "timestamp": ts, "amount": usd * 56.0, "currency": "PHP", "amount_usd": usd, "channel": "ewallet",
            "counterparty_id": [f"C{c}" for c in cp],
            "counterparty_name": [EVIL if c == 0 else f"Maria $Dela$ Cruz {c}" for c in cp],
            "counterparty_country": "US", "reference": "school fees <b>bold</b>",
            "sender_local_hour": rng.integers(0, 24, n),
        }
    )


def _run(**over) -> dict:
    run = {
        "input": "/data/export <q>.csv", "engine": "duckdb",
        "started": "2026-11-26T10:00:00+00:00", "finished": "2026-11-26T10:00:42+00:00",
        "timings": {"ingest": 1.25, "scoring": 0.5},
        "counts": {"rows_in": 12345, "accepted": 12300, "quarantined": 45,
                   "accounts": {"sender": 4321, "receiver": 987}, "alerts": {"sender": 3, "receiver": 1}},
        "quarantine_reasons": {"unknown_currency": 40, "duplicate_txn_id": 5},
        "notes": ["FX: 2026-11 outside the bundled table, nearest month 2026-10 used <i>"],
        "versions": {"kalasag": "0.1.0", "duckdb": "2.0.1"},
        "config_sha256": "f" * 64,
        "thresholds": {"alert": 0.5, "high": 0.8, "medium": 0.65},
        "indicators": {
            "I-01": {"name": "Low-value payments", "source": "https://www.austrac.gov.au/example"},
            "I-03": {"name": "Many foreign senders", "source": "IJM 2020, p. 12 ; https://example.org/a?x=1&y=2."},
            "I-05": {"name": "Unrelated parties", "source": "javascript:alert(1)"},
            "I-07": {"name": "Night-time payments", "source": "FATF report <b>2023</b>"},
        },
    }
    run.update(over)
    return run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("report")
    details = {("R-1", "receiver"): _details(40, 9, 1), ("S-1", "sender"): _details(41, 3, 2),
               ("S-2", "sender"): _details(12, 2, 3)}
    path = write_report(tmp_path / "out" / "report.html", run=_run(), alerts=_alerts(), details=details)
    return path, path.read_text(encoding="utf-8")


def test_one_self_contained_file(report):
    path, _ = report
    assert path.name == "report.html"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]  # no side files, no tmp left


def test_summary_numbers(report):
    _, page = report
    assert "Rows in 12,345 = accepted 12,300 + quarantined 45." in page
    assert "<td><code>unknown_currency</code></td><td>the currency is not an ISO 4217 code</td><td>40</td>" in page
    assert "<td><code>duplicate_txn_id</code></td>" in page
    assert "nearest month 2026-10 used &lt;i&gt;" in page
    assert '<div class="n">4,321</div><div class="l">sender accounts scored</div>' in page
    assert '<div class="n">987</div><div class="l">receiver accounts scored</div>' in page
    assert '<div class="n">3</div><div class="l">sender alerts</div>' in page
    # alerts per side and risk level (high, medium, low, total)
    assert "<tr><td>sender</td><td>1</td><td>1</td><td>1</td><td>3</td></tr>" in page
    assert "<tr><td>receiver</td><td>1</td><td>0</td><td>0</td><td>1</td></tr>" in page
    assert "f" * 64 in page and "duckdb 2.0.1" in page and "(42.0 s)" in page


def test_each_top_alert_explained_with_two_plots(report):
    _, page = report
    articles = re.findall(r'<article class="alert[^"]*" id="(alert-[a-z]+-\d)">(.*?)</article>', page, re.S)
    assert [a for a, _ in articles] == ["alert-sender-1", "alert-sender-2", "alert-receiver-1"]
    by_id = dict(articles)
    assert "S-1" in by_id["alert-sender-1"] and "R-1" in by_id["alert-receiver-1"]
    assert "Paid 3 unrelated receivers in the Philippines (+2.10 log-odds)." in by_id["alert-sender-1"]
    assert "82% of their payments were sent between 22:00 and 06:00" in by_id["alert-receiver-1"]
    assert "<li><b>I-07</b>: Sent 12 payments between 22:00" in by_id["alert-sender-2"]
    assert "<li><b>I-01</b> Low-value payments</li>" in by_id["alert-sender-1"]
    for _, body in articles:
        images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', body)
        assert len(images) == 2  # timeline + counterparties
        for b64 in images:
            assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    # the alert without details is in the full table only
    assert "S-3&lt;script&gt;" in page and "alert-sender-3" not in page


def test_score_distribution_plot(report):
    _, page = report
    summary = page[page.index('<section id="summary">'):page.index('<section id="top-sender">')]
    assert summary.count('<img src="data:image/png;base64,') == 1
    assert "alerted accounts only" in summary  # no `scores` given


def test_untrusted_strings_are_escaped(report):
    _, page = report
    assert page.count("<script") == 1  # only the report's own sorting script
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "school fees &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert "/data/export &lt;q&gt;.csv" in page
    assert "FATF report &lt;b&gt;2023&lt;/b&gt;" in page
    assert 'href="javascript' not in page and "javascript:alert(1)" in page  # shown as text, not a link


def test_no_outside_resources(report):
    _, page = report
    assert not re.search(r'\bsrc="(?!data:image/png;base64,)', page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    footer_at = page.index('<footer id="sources">')
    hrefs = [(m.start(), m.group(1)) for m in re.finditer(r'href="([^"]*)"', page)]
    for pos, href in hrefs:
        if pos < footer_at:
            assert href.startswith("#"), href  # in-page anchors only
        else:
            assert href.startswith("https://") or href.startswith("http://")
    assert [h for p, h in hrefs if p > footer_at] == [
        "https://www.austrac.gov.au/example", "https://example.org/a?x=1&amp;y=2"]
    assert 'IJM 2020, p. 12 ; <a href="https://example.org/a?x=1&amp;y=2" rel="noreferrer noopener">' in page


def test_full_alert_table_sorted_and_sortable(report):
    _, page = report
    table = page[page.index('<table class="sortable alerts">'):]
    table = table[: table.index("</table>")]
    cells = re.findall(r'<tr><td data-v="\d+">\d+</td><td>(.*?)</td>', table)
    ids = [re.sub(r"<[^>]+>", "", c) for c in cells]
    assert ids == ["R-1", "S-1", "S-2", "S-3&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"]
    assert '<a href="#alert-sender-2">S-2</a>' in table  # links to the detailed alert
    assert '<th data-type="num" tabindex="0">score</th>' in table
    assert '<td data-v="0.97">0.970</td>' in table


def test_night_window_and_counterparty_colours():
    hours = pd.Series([21, 22, 23, 0, 5, 6, None])
    assert plots.is_night(hours, (22, 6)).tolist() == [False, True, True, True, True, False, False]
    assert plots.is_night(hours, (1, 6)).tolist() == [False, False, False, False, True, False, False]
    d = pd.DataFrame({
        "counterparty_id": ["a", "b", "a", "c"], "counterparty_name": ["Ana", None, "Ana", "Cy"],
        "counterparty_country": ["US", "GB", "US", None], "amount_usd": [10.0, 50.0, 15.0, 1.0],
    })
    c = plots.counterparty_colours(d)
    assert c.index.tolist() == ["b", "a", "c"]
    assert c["usd"].tolist() == [50.0, 25.0, 1.0] and c["n"].tolist() == [1, 2, 1]
    assert c["label"].tolist() == ["b (GB)", "Ana (US)", "Cy"]
    assert c["colour"].tolist() == list(plots.PALETTE[:3])


def test_empty_run_and_reconcile_warning(tmp_path):
    empty = pd.DataFrame(columns=["account_id", "side", "score", "risk_level", "indicators", "explanation"])
    run = _run(counts={"rows_in": 10, "accepted": 7, "quarantined": 2}, quarantine_reasons={}, notes=[])
    page = write_report(tmp_path / "r.html", run=run, alerts=empty, details={}).read_text()
    assert "No account was alerted." in page and "No row was quarantined." in page
    assert "does NOT reconcile" in page
    assert "<article" not in page
    # a bare run dict still renders
    assert "Kalasag report" in render_report(run={}, alerts=empty, details={})


def test_metrics_and_networks_sections(tmp_path):
    metrics = {
        "labels": "labels.csv", "rule_text": "I-01 AND I-05 AND (I-02 OR I-03 OR I-04)", "notes": ["2 unlabelled"],
        "sides": {"sender": {"n_accounts": 5, "n_positive": 4, "n_alerts": 3, "tp": 2, "fp": 1, "fn": 2,
                             "precision": 2 / 3, "recall": 0.5, "f1": 4 / 7, "average_precision": 0.604,
                             "n_positive_groups": 4, "groups_detected": 2,
                             "rule": {"n_alerts": 2, "precision": 1.0, "recall": 0.5, "f1": 2 / 3,
                                      "groups_detected": 2}}},
        "overall": {"n_accounts": 5, "n_positive": 4, "n_alerts": 3, "tp": 2, "fp": 1, "fn": 2,
                    "precision": 2 / 3, "recall": 0.5, "f1": 4 / 7, "average_precision": 0.604,
                    "rule": {"n_alerts": 2, "precision": 1.0, "recall": 0.5, "f1": 2 / 3}},
    }
    nets = pd.DataFrame({"network": [1], "members": ["S-1;R-1" + EVIL]})
    page = render_report(run=_run(), alerts=_alerts(), details={}, metrics=metrics, networks=nets)
    ev = page[page.index('<section id="evaluation">'):]
    ev = ev[: ev.index("</section>")]
    assert ("<tr><td>sender</td><td>5</td><td>4</td><td>3</td><td>2</td><td>1</td><td>2</td><td>0.667</td>"
            "<td>0.500</td><td>0.571</td><td>0.604</td><td>2 / 4</td><td>2</td><td>1.000</td><td>0.500</td><td>0.667</td>"
            "<td>2 / 4</td></tr>") in ev
    assert '<section id="networks">' in page and "S-1;R-1&lt;script&gt;" in page
    assert page.count("<script") == 1
    assert '<section id="evaluation">' not in render_report(run=_run(), alerts=_alerts(), details={})


def test_full_score_distribution_when_scores_given(tmp_path):
    scores = pd.DataFrame({"account_id": list("abcd"), "side": ["sender", "sender", "receiver", "receiver"],
                           "score": [0.1, 0.6, 0.2, 0.9]})
    page = render_report(run=_run(), alerts=_alerts(), details={}, scores=scores)
    assert "Score distribution, all scored accounts" in page


def test_transfer_table_capped_to_latest_rows(tmp_path):
    d = _details(30, 3, 5)
    page = render_report(run=_run(), alerts=_alerts(), details={("S-1", "sender"): d}, max_transfer_rows=10)
    assert "Showing the latest 10 of 30 transfers." in page
    last = d["timestamp"].iloc[-1].strftime("%Y-%m-%d %H:%M")
    first = d["timestamp"].iloc[0].strftime("%Y-%m-%d %H:%M")
    assert f"<td>{last}</td>" in page and f"<td>{first}</td>" not in page


def test_every_top_alert_gets_its_two_plots(tmp_path):
    # speed is measured in bench/, not here; this checks one timeline + one counterparty plot per alert
    rows, details = [], {}
    for i in range(12):
        side = "sender" if i % 2 else "receiver"
        acc = f"A{i}"
        rows.append({"account_id": acc, "side": side, "score": 0.99 - i / 100, "risk_level": "high",
                     "indicators": "I-01;I-05", "explanation": f"I-01: Sent {i} small payments (+1.00 log-odds).",
                     "n_transactions": 150, "total_usd": 3000.0, "first_seen": pd.Timestamp("2025-01-01", tz="UTC"),
                     "last_seen": pd.Timestamp("2025-12-01", tz="UTC"), "counterparties": 20})
        details[(acc, side)] = _details(150, 20, i)
    page = write_report(tmp_path / "r.html", run=_run(), alerts=pd.DataFrame(rows), details=details).read_text()
    assert page.count('<img src="data:image/png;base64,') == 2 * 12 + 1  # + the score distribution


def test_night_window_from_argument_or_config():
    d = {("S-1", "sender"): _details(20, 2, 9)}
    page = render_report(run=_run(), alerts=_alerts(), details=d, night_hours=(1, 5))
    assert "night, sender time (01:00–05:00)" in page and "22:00–06:00" not in page.split("<article")[1]
    page = render_report(run=_run(), alerts=_alerts(), details=d)  # default config's I-07 window
    assert "night, sender time (22:00–06:00)" in page


def test_tags_balanced(report):
    from html.parser import HTMLParser

    class Checker(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.errors = [], []

        def handle_starttag(self, tag, attrs):
            if tag not in {"meta", "img", "br"}:
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if self.stack and self.stack[-1] == tag:
                self.stack.pop()
            else:
                self.errors.append(tag)

    checker = Checker()
    checker.feed(report[1])
    assert checker.errors == [] and checker.stack == []


def test_gaps_in_details_are_tolerated():
    d = pd.DataFrame({
        "timestamp": ["2025-03-01T23:10:00", "2025-03-02T01:00:00+02:00", None],
        "amount": [10.0, None, 5.0], "currency": ["EUR", "EUR", None], "amount_usd": [11.0, 22.0, 5.5],
        "channel": [None, "mto", "bank"], "counterparty_id": ["x", "y", "x"],
        "counterparty_name": [None, "", "Ana"], "counterparty_country": [None, "PH", "PH"],
        "reference": [None, None, "load"], "sender_local_hour": [23, None, 3],
    })
    page = render_report(run=_run(), alerts=_alerts(), details={("S-1", "sender"): d})
    article = page[page.index('id="alert-sender-1"'):page.index("</article>")]
    assert article.count('<img src="data:image/png;base64,') == 2
    assert "<td>2025-03-01 23:10</td>" in article  # a naive timestamp is read as UTC
    assert "<td>2025-03-01 23:00</td>" in article  # +02:00 converted to UTC
    assert article.count('class="night"') == 2  # hours 23 and 3; the unknown hour is not night


def test_score_bins_hand_computed():
    scores = pd.DataFrame({"side": ["sender", "sender", "sender", "receiver", "receiver"],
                           "score": [0.0, 0.019, 0.02, 0.999, 1.0]})
    bins = plots.score_bins(scores).sort_values(["side", "bin"]).values.tolist()
    assert bins == [["receiver", 49, 2], ["sender", 0, 2], ["sender", 1, 1]]
    # a pre-binned table (what an engine-side histogram would give) is drawn the same way
    page = render_report(run=_run(), alerts=_alerts(), details={}, scores=plots.score_bins(scores))
    assert "Score distribution, all scored accounts" in page


def test_alert_table_cap_points_to_csv():
    page = render_report(run=_run(), alerts=_alerts(), details={}, max_table_alerts=2)
    table = page[page.index('<section id="alerts">'):]
    assert "4 alerted accounts, highest score first (the first 2 here; all are in alerts.csv)." in table
    assert table.count('<tr><td data-v=') == 2
    assert "No transfer details were provided for the 3 sender alerts." in page
