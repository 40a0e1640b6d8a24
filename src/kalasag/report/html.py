"""report.html: one self-contained file an analyst reads offline (or prints).

No external CSS, JS, fonts or images: styles and the table-sorting script are inline, plots are
base64 PNGs. Every string that comes from the data (ids, names, references, explanations, notes,
even the run's paths) goes through `html.escape`. The only outbound links are the indicator
sources in the footer (http/https only, shown as plain links).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kalasag.model import QUARANTINE_REASONS, SIDES, ConfigError, load_config
from kalasag.report import plots

# The night window the timeline rings, in sender-local hours [start, end). Taken from, in order:
# the `night_hours=` argument (the pipeline passes the active config's I-07 window), run["night_hours"],
# the default config's [indicators."I-07"] night_start_hour/night_end_hour, and this last resort.
DEFAULT_NIGHT_HOURS: tuple[int, int] = (22, 6)
# Rows of an alert's transfer table shown in the report (the most recent; all are in the data).
MAX_TRANSFER_ROWS = 200
# Rows of the full alert table (highest scores first); beyond this the page points to alerts.csv.
MAX_TABLE_ALERTS = 5000
RISK_LEVELS: tuple[str, ...] = ("high", "medium", "low")

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_LEADING_ID = re.compile(r"^(I-\d+[a-z]?):\s*")
_URL = re.compile(r"https?://[^\s\"'<>]+[^\s\"'<>.,;:)\]]")


# ---- small formatting helpers --------------------------------------------------------------------


def e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    if _isna(value):
        return ""
    return html.escape(str(value), quote=True)


def _isna(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _ts(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if _isna(value):
        return ""
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError):
        return str(value)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime(fmt)


def _num(value: Any, digits: int = 0) -> str:
    if _isna(value):
        return ""
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def _int(value: Any) -> str:
    if _isna(value):
        return ""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def _duration(started: Any, finished: Any) -> str:
    try:
        s = datetime.fromisoformat(str(started))
        f = datetime.fromisoformat(str(finished))
    except ValueError:
        return ""
    secs = (f - s).total_seconds()
    return f"{secs:.1f} s" if secs < 120 else f"{secs / 60:.1f} min"


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], *, cls: str = "", raw: bool = False) -> str:
    """A table from already-escaped cells when raw, else cells are escaped here."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f"<td>{c if raw else e(c)}</td>" for c in row)
        body.append(f"<tr>{cells}</tr>")
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _badge(level: Any) -> str:
    lvl = str(level) if not _isna(level) else ""
    cls = lvl if lvl in RISK_LEVELS else "other"
    return f'<span class="badge {cls}">{e(lvl) or "–"}</span>'


def _split_ids(value: Any) -> list[str]:
    if _isna(value):
        return []
    return [p.strip() for p in str(value).split(";") if p.strip()]


def _sentences(text: Any) -> list[str]:
    if _isna(text):
        return []
    return [s.strip() for s in _SENTENCE_SPLIT.split(str(text).strip()) if s.strip()]


def _sentence_html(sentence: str) -> str:
    m = _LEADING_ID.match(sentence)
    if m:
        return f"<b>{e(m.group(1))}</b>: {e(sentence[m.end():])}"
    return e(sentence)


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{e(alt)}">'


# ---- sections ------------------------------------------------------------------------------------


def _header(run: Mapping[str, Any], subtitle: str) -> str:
    versions = run.get("versions") or {}
    ver = " · ".join(f"{e(k)} {e(v)}" for k, v in versions.items()) if isinstance(versions, Mapping) else e(versions)
    th = run.get("thresholds") or {}
    thresholds = " · ".join(f"{e(k)} ≥ {e(v)}" for k, v in th.items()) if isinstance(th, Mapping) else ""
    items = [
        ("Input", f"<code>{e(run.get('input', ''))}</code>"
                  + (f" ({e(run['input_format'])})" if run.get("input_format") else "")),
        ("Started", e(_ts(run.get("started"), "%Y-%m-%d %H:%M:%S UTC"))),
        ("Finished", e(_ts(run.get("finished"), "%Y-%m-%d %H:%M:%S UTC"))
                     + (f" ({e(_duration(run.get('started'), run.get('finished')))})"
                        if run.get("started") and run.get("finished") else "")),
        ("Engine", e(run.get("engine", ""))),
        ("Config SHA-256", f"<code class=\"hash\">{e(run.get('config_sha256', ''))}</code>"),
        ("Thresholds", thresholds),
        ("FX table", e(run.get("fx_source", ""))),
        ("Versions", ver),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items if v)
    return f'<header><h1>Kalasag report</h1><p class="sub">{e(subtitle)}</p><dl class="meta">{dl}</dl></header>'


def _nav(sections: list[tuple[str, str]]) -> str:
    links = "".join(f'<li><a href="#{sid}">{e(title)}</a></li>' for sid, title in sections)
    return f'<nav aria-label="contents"><ol>{links}</ol></nav>'


def _risk_counts(alerts: pd.DataFrame) -> dict[str, dict[str, int]]:
    out = {side: {lvl: 0 for lvl in RISK_LEVELS} for side in SIDES}
    if len(alerts):
        for (side, lvl), n in alerts.groupby(["side", "risk_level"]).size().items():
            out.setdefault(str(side), {}).setdefault(str(lvl), 0)
            out[str(side)][str(lvl)] += int(n)
    return out


def _summary(run: Mapping[str, Any], alerts: pd.DataFrame, scores: pd.DataFrame | None) -> str:
    counts = run.get("counts") or {}
    rows_in, accepted, quarantined = counts.get("rows_in"), counts.get("accepted"), counts.get("quarantined")
    check = ""
    if None not in (rows_in, accepted, quarantined):
        ok = int(rows_in) == int(accepted) + int(quarantined)
        check = (f'<p class="{"ok" if ok else "warn"}">Rows in {_int(rows_in)} = accepted {_int(accepted)}'
                 f' + quarantined {_int(quarantined)}{"" if ok else " — does NOT reconcile"}.</p>')
    accounts = counts.get("accounts") or {}
    alert_counts = counts.get("alerts") or {}
    cards = [
        ("rows in", _int(rows_in)), ("accepted", _int(accepted)), ("quarantined", _int(quarantined)),
    ]
    for side in SIDES:
        cards.append((f"{side} accounts scored", _int(accounts.get(side))))
    for side in SIDES:
        n = alert_counts.get(side, int((alerts["side"] == side).sum()) if len(alerts) else 0)
        cards.append((f"{side} alerts", _int(n)))
    card_html = "".join(f'<div class="card"><div class="n">{v or "–"}</div><div class="l">{e(k)}</div></div>'
                        for k, v in cards)

    risk = _risk_counts(alerts)
    levels = list(RISK_LEVELS) + sorted({lvl for side in risk.values() for lvl in side} - set(RISK_LEVELS))
    risk_rows = []
    for side in SIDES:
        row = risk.get(side, {})
        risk_rows.append([e(side), *[_int(row.get(lvl, 0)) for lvl in levels], _int(sum(row.values()))])
    risk_table = _table(["side", *[_badge(lvl) for lvl in levels], "total"], risk_rows, raw=True, cls="num")

    reasons = run.get("quarantine_reasons") or {}
    if reasons:
        q_rows = [[f"<code>{e(code)}</code>", e(QUARANTINE_REASONS.get(str(code), "")), _int(n)]
                  for code, n in sorted(reasons.items(), key=lambda kv: -int(kv[1] or 0))]
        q_table = _table(["reason", "meaning", "rows"], q_rows, raw=True, cls="num-last")
    else:
        q_table = "<p>No row was quarantined.</p>"

    notes = run.get("notes") or []
    notes_html = ("<ul class=\"notes\">" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>") if notes else \
        "<p>No notes.</p>"

    timings = run.get("timings") or {}
    t_html = ""
    if timings:
        t_html = "<h3>Timings</h3>" + _table(
            ["stage", "seconds"], [[e(k), _num(v, 2)] for k, v in timings.items()], raw=True, cls="num-last small"
        )

    th = {k: v for k, v in (run.get("thresholds") or {}).items() if isinstance(v, int | float)}
    dist_src = scores if scores is not None and len(scores) else alerts
    if len(dist_src):
        all_accounts = scores is not None and len(scores) > 0
        what = "all scored accounts" if all_accounts else "alerted accounts only"
        plot = (f"<figure>{_img(plots.score_distribution_png(dist_src, th, all_accounts=all_accounts), 'score distribution')}"
                f"<figcaption>Score distribution, {what}, per side; lines mark the alert and risk-level thresholds."
                "</figcaption></figure>")
    else:
        plot = "<p>No scores to plot.</p>"

    return (
        '<section id="summary"><h2>Summary</h2>'
        f'<div class="cards">{card_html}</div>{check}'
        f'<div class="cols"><div><h3>Alerts per side and risk level</h3>{risk_table}</div>'
        f'<div><h3>Quarantine reasons</h3>{q_table}</div></div>'
        f"<h3>Notes</h3>{notes_html}"
        f"<h3>Scores</h3>{plot}{t_html}</section>"
    )


def _metrics(metrics: Mapping[str, Any]) -> str:
    def pct(v: Any) -> str:
        return "" if _isna(v) else f"{float(v):.3f}"

    def ops(found: Any, total: Any) -> str:
        return "" if _isna(found) or _isna(total) else f"{int(found)} / {int(total)}"

    blocks = [(side, (metrics.get("sides") or {}).get(side)) for side in SIDES]
    blocks.append(("overall", metrics.get("overall")))
    rows = []
    for name, b in blocks:
        if not isinstance(b, Mapping):
            continue
        r = b.get("rule") or {}
        rows.append([e(name), _int(b.get("n_accounts")), _int(b.get("n_positive")), _int(b.get("n_alerts")),
                     _int(b.get("tp")), _int(b.get("fp")), _int(b.get("fn")), pct(b.get("precision")),
                     pct(b.get("recall")), pct(b.get("f1")), pct(b.get("average_precision")),
                     ops(b.get("groups_detected"), b.get("n_positive_groups")),
                     _int(r.get("n_alerts")), pct(r.get("precision")), pct(r.get("recall")), pct(r.get("f1")),
                     ops(r.get("groups_detected"), b.get("n_positive_groups"))])
    table = _table(["side", "accounts", "positives", "alerts", "TP", "FP", "FN", "precision", "recall", "F1", "AP",
                    "operations alerted", "rule alerts", "rule precision", "rule recall", "rule F1",
                    "rule operations"], rows, raw=True, cls="num")
    rule = e(metrics.get("rule_text", "I-01 AND I-05 AND (I-02 OR I-03 OR I-04)"))
    notes = "".join(f"<li>{e(n)}</li>" for n in metrics.get("notes") or [])
    src = f"<p>Labels: <code>{e(metrics['labels'])}</code></p>" if metrics.get("labels") else ""
    return (
        '<section id="evaluation"><h2>Evaluation against labels</h2>'
        f"{src}{table}<p class=\"small\">Rule = the plain published rule {rule}. AP = average precision over the "
        "score. Operations = label groups with a positive account; alerted = at least one of them alerted. "
        "Zero divisions count as 0.</p>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + "</section>"
    )


def _key_figures(alert: Mapping[str, Any], d: pd.DataFrame | None, night: tuple[int, int]) -> str:
    figs = [
        ("transfers", _int(alert.get("n_transactions"))),
        ("total USD", _num(alert.get("total_usd"), 2)),
        ("counterparties", _int(alert.get("counterparties"))),
        ("first seen (UTC)", _ts(alert.get("first_seen"))),
        ("last seen (UTC)", _ts(alert.get("last_seen"))),
    ]
    if d is not None and len(d):
        usd = pd.to_numeric(d["amount_usd"], errors="coerce")
        figs.append(("median USD", _num(usd.median(), 2)))
        if "sender_local_hour" in d.columns:
            share = float(plots.is_night(d["sender_local_hour"], night).mean())
            figs.append((f"night share ({night[0]:02d}–{night[1]:02d} sender time)", f"{share:.0%}"))
        if "counterparty_country" in d.columns:
            cc = d["counterparty_country"].dropna().astype(str).value_counts()
            figs.append(("counterparty countries", ", ".join(f"{c} {n}" for c, n in cc.head(6).items())))
        if "channel" in d.columns:
            ch = d["channel"].dropna().astype(str).value_counts()
            figs.append(("channels", ", ".join(f"{c} {n}" for c, n in ch.head(6).items())))
        if "currency" in d.columns:
            cur = d["currency"].dropna().astype(str).value_counts()
            figs.append(("currencies", ", ".join(f"{c} {n}" for c, n in cur.head(6).items())))
    return '<dl class="facts">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in figs if v != "") + "</dl>"


def _transfer_table(d: pd.DataFrame, night: tuple[int, int], max_rows: int) -> str:
    shown = d.tail(max_rows) if len(d) > max_rows else d
    n = len(shown)
    night_mask = plots.is_night(shown["sender_local_hour"], night) if "sender_local_hour" in shown else \
        np.zeros(n, bool)

    def col(name: str) -> list[Any]:
        return shown[name].tolist() if name in shown.columns else [None] * n

    times = plots.to_utc(shown["timestamp"]).dt.strftime("%Y-%m-%d %H:%M").tolist() \
        if "timestamp" in shown.columns else [None] * n
    rows = []
    for t, amt, cur, usd, ch, cp_id, cp_name, cc, ref, hour, is_n in zip(
        times, col("amount"), col("currency"), col("amount_usd"), col("channel"), col("counterparty_id"),
        col("counterparty_name"), col("counterparty_country"), col("reference"), col("sender_local_hour"),
        night_mask, strict=True,
    ):
        hour_txt = "" if _isna(hour) else f"{int(hour):02d}h"
        cp = e(cp_name) if not _isna(cp_name) and str(cp_name).strip() else ""
        cp_html = f'{cp} <span class="id">{e(cp_id)}</span>' if cp else f'<span class="id">{e(cp_id)}</span>'
        cells = (
            e(t), f"{e(_num(amt, 2))} {e(cur)}", e(_num(usd, 2)), e(ch), cp_html, e(cc), e(ref),
            f'<span class="night">{hour_txt} ☾</span>' if is_n else hour_txt,
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("time (UTC)", "amount", "USD", "channel", "counterparty", "country",
                                              "reference", "sender hour"))
    note = (f'<p class="small">Showing the latest {n:,} of {len(d):,} transfers.</p>' if n < len(d) else "")
    return (f'{note}<div class="scroll"><table class="transfers"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _legend(colours: pd.DataFrame, night: tuple[int, int]) -> str:
    items = []
    coloured = colours[colours["colour"] != plots.OTHER_COLOUR]
    for _, row in coloured.iterrows():
        items.append(f'<li><span class="sw" style="background:{e(row["colour"])}"></span>{e(row["label"])}</li>')
    n_other = len(colours) - len(coloured)
    if n_other:
        items.append(f'<li><span class="sw" style="background:{plots.OTHER_COLOUR}"></span>'
                     f"{n_other} other counterpart{'y' if n_other == 1 else 'ies'}</li>")
    items.append(f'<li><span class="sw ring"></span>night, sender time ({night[0]:02d}:00–{night[1]:02d}:00)</li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


def _alert_article(
    rank: int, alert: Mapping[str, Any], d: pd.DataFrame | None, side: str,
    indicators: Mapping[str, Any], night: tuple[int, int], max_rows: int,
) -> str:
    aid = f"alert-{side}-{rank}"
    score = alert.get("score")
    fired = _split_ids(alert.get("indicators"))
    ind_items = []
    for iid in fired:
        meta = indicators.get(iid) or {}
        name = meta.get("name", "") if isinstance(meta, Mapping) else ""
        ind_items.append(f"<li><b>{e(iid)}</b> {e(name)}</li>")
    sentences = _sentences(alert.get("explanation"))
    expl = "".join(f"<li>{_sentence_html(s)}</li>" for s in sentences) or "<li>(no explanation)</li>"
    parts = [
        f'<article class="alert risk-{e(alert.get("risk_level"))}" id="{aid}">',
        f'<h3><span class="rank">#{rank}</span> {e(side)} <code class="acct">{e(alert.get("account_id"))}</code> '
        f'{_badge(alert.get("risk_level"))} <span class="score">score {_num(score, 3)}</span></h3>',
        '<div class="cols"><div>',
        "<h4>Why</h4>", f'<ul class="why">{expl}</ul>',
        "<h4>Indicators fired</h4>", f'<ul class="inds">{"".join(ind_items) or "<li>none</li>"}</ul>',
        "</div><div>", "<h4>Key figures</h4>", _key_figures(alert, d, night), "</div></div>",
    ]
    if d is not None and len(d):
        colours = plots.counterparty_colours(d)
        acct = str(alert.get("account_id"))
        parts += [
            f'<figure>{_img(plots.timeline_png(d, night, colours), "payment timeline of " + acct)}'
            f"{_legend(colours, night)}"
            "<figcaption>Payment timeline: one dot per transfer (USD), coloured by counterparty; ringed dots were "
            f"sent at night in the sender's local time ({night[0]:02d}:00–{night[1]:02d}:00).</figcaption></figure>",
            f'<figure>{_img(plots.counterparties_png(d, colours), "counterparties of " + acct)}'
            "<figcaption>Counterparties: total USD and transfers per counterparty (country in brackets), "
            "same colours as the timeline.</figcaption></figure>",
            "<h4>Transfers</h4>", _transfer_table(d, night, max_rows),
        ]
    else:
        parts.append('<p class="small">No transfer details were provided for this alert.</p>')
    parts.append('<p class="top"><a href="#alerts">all alerts ↓</a> · <a href="#top">top ↑</a></p></article>')
    return "".join(parts)


def _top_alerts(
    side: str, alerts: pd.DataFrame, details: Mapping[tuple[str, str], pd.DataFrame],
    indicators: Mapping[str, Any], night: tuple[int, int], max_rows: int,
) -> tuple[str, list[tuple[int, str]]]:
    keys = {(str(a), str(s)) for a, s in details}
    side_alerts = alerts[alerts["side"].astype(str) == side] if len(alerts) else alerts
    chosen = [r for r in side_alerts.to_dict("records") if (str(r["account_id"]), side) in keys]
    detail_by_key = {(str(a), str(s)): v for (a, s), v in details.items()}
    articles, index = [], []
    for rank, row in enumerate(chosen, start=1):
        d = detail_by_key.get((str(row["account_id"]), side))
        articles.append(_alert_article(rank, row, d, side, indicators, night, max_rows))
        index.append((rank, str(row["account_id"])))
    title = f"Top {side} alerts"
    if not articles:
        body = (f"<p>No {e(side)} account was alerted.</p>" if not len(side_alerts)
                else f"<p>No transfer details were provided for the {len(side_alerts):,} {e(side)} alerts.</p>")
    else:
        n_all = len(side_alerts)
        body = (f'<p class="small">The {len(articles)} highest-scoring of {n_all:,} {e(side)} alerts, '
                "strongest first.</p>" + "".join(articles))
    return f'<section id="top-{side}"><h2>{e(title)}</h2>{body}</section>', index


def _alert_table(alerts: pd.DataFrame, linked: dict[tuple[str, str], str], max_rows: int) -> str:
    if not len(alerts):
        return '<section id="alerts"><h2>All alerts</h2><p>No account was alerted.</p></section>'
    n_all = len(alerts)
    alerts = alerts.head(max_rows)
    head_cells = [("#", "num"), ("account", "text"), ("side", "text"), ("score", "num"), ("risk", "text"),
                  ("indicators", "text"), ("transfers", "num"), ("total USD", "num"), ("first seen", "text"),
                  ("last seen", "text"), ("counterparties", "num"), ("explanation", "text")]
    head = "".join(f'<th data-type="{t}" tabindex="0">{h}</th>' for h, t in head_cells)
    rows = []
    for i, r in enumerate(alerts.to_dict("records"), start=1):
        key = (str(r.get("account_id")), str(r.get("side")))
        acct = e(r.get("account_id"))
        if key in linked:
            acct = f'<a href="#{linked[key]}">{acct}</a>'
        risk = str(r.get("risk_level", ""))
        cells = [
            (str(i), str(i)), (acct, None), (e(r.get("side")), None),
            (_num(r.get("score"), 3), e(r.get("score"))),
            (_badge(risk), str(RISK_LEVELS.index(risk)) if risk in RISK_LEVELS else "9"),
            (e(" ".join(_split_ids(r.get("indicators")))), None),
            (_int(r.get("n_transactions")), e(r.get("n_transactions"))),
            (_num(r.get("total_usd"), 2), e(r.get("total_usd"))),
            (e(_ts(r.get("first_seen"))), None), (e(_ts(r.get("last_seen"))), None),
            (_int(r.get("counterparties")), e(r.get("counterparties"))),
            (e(r.get("explanation")), None),
        ]
        tds = "".join(f'<td data-v="{v}">{c}</td>' if v is not None else f"<td>{c}</td>" for c, v in cells)
        rows.append(f"<tr>{tds}</tr>")
    return (
        '<section id="alerts"><h2>All alerts</h2>'
        f'<p class="small">{n_all:,} alerted accounts, highest score first'
        + (f" (the first {len(alerts):,} here; all are in alerts.csv)" if len(alerts) < n_all else "")
        + '. '
        '<span class="js-only">Click a column header to sort.</span></p>'
        f'<div class="scroll wide"><table class="sortable alerts"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div></section>'
    )


# Extra tables after the alerts: (keyword of render_report, section id, title, what it is)
EXTRA_TABLES: tuple[tuple[str, str, str, str], ...] = (
    ("networks", "networks", "Networks",
     "Facilitator operations found by community detection on the suspicious subgraph (docs/network.md)."),
    ("entities", "entities", "Entities: one person, several accounts",
     "Accounts linked as one person (docs/entities.md), with the fields that drove each link."),
    ("households", "households", "Households and operations",
     "Looser groups of entities (shared phone, region and surname with a common payer, shared foreign payers) — "
     "relatives, not the same person."),
)


def _table_section(df: pd.DataFrame, sid: str, title: str, intro: str, max_rows: int) -> str:
    shown = df.head(max_rows)
    rows = [[("" if _isna(v) else v) for v in r] for r in shown.itertuples(index=False)]
    more = (f'<p class="small">Showing {len(shown):,} of {len(df):,} rows.</p>'
            if len(shown) < len(df) else "")
    return (f'<section id="{e(sid)}"><h2>{e(title)}</h2><p class="small">{e(intro)}</p>{more}<div class="scroll wide">'
            f'{_table([e(c) for c in df.columns], rows)}</div></section>')


def _source_html(source: Any) -> str:
    """The source text, escaped, with its http(s) addresses (and only those) as plain links."""
    text = "" if _isna(source) else str(source).strip()
    out, pos = [], 0
    for m in _URL.finditer(text):
        out.append(e(text[pos:m.start()]))
        out.append(f'<a href="{e(m.group(0))}" rel="noreferrer noopener">{e(m.group(0))}</a>')
        pos = m.end()
    out.append(e(text[pos:]))
    return "".join(out)


def _footer(run: Mapping[str, Any]) -> str:
    indicators = run.get("indicators") or {}
    rows = []
    for iid, meta in indicators.items():
        meta = meta if isinstance(meta, Mapping) else {}
        rows.append([f"<b>{e(iid)}</b>", e(meta.get("name", "")), _source_html(meta.get("source"))])
    table = _table(["id", "indicator", "source"], rows, raw=True) if rows else "<p>No indicator list in run.json.</p>"
    return (
        '<footer id="sources"><h2>Indicator sources</h2>'
        f"{table}<p class=\"small\">Generated by Kalasag from <code>{e(run.get('input', ''))}</code>. Scores rank "
        "accounts for review; an alert is a reason to look, not a finding. All times UTC unless marked "
        "sender time.</p></footer>"
    )


# ---- page ----------------------------------------------------------------------------------------

CSS = """
:root{--fg:#1b1f24;--mut:#5b6470;--line:#d8dde3;--bg:#fff;--soft:#f4f6f8;--high:#b3261e;--medium:#c96a00;--low:#8a7a00}
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;max-width:1180px;padding:0 20px 40px}
h1{font-size:24px;margin:18px 0 2px}h2{font-size:19px;border-bottom:2px solid var(--fg);padding-bottom:3px;margin-top:34px}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:13px;margin:10px 0 4px;color:var(--mut);text-transform:uppercase;
letter-spacing:.04em}
code{font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);padding:1px 4px;
border-radius:3px;word-break:break-all}
.sub{color:var(--mut);margin:0 0 8px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.meta dt,dl.facts dt{color:var(--mut)}dl.meta dd,dl.facts dd{margin:0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:1px 12px;margin:0;font-size:13px}
nav ol{display:flex;flex-wrap:wrap;gap:4px 18px;padding:8px 12px;background:var(--soft);list-style:none;margin:10px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:120px}
.card .n{font-size:20px;font-weight:600}.card .l{color:var(--mut);font-size:12px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:8px 28px}
@media (max-width:800px){.cols{grid-template-columns:1fr}}
table{border-collapse:collapse;font-size:12.5px;margin:4px 0}
th,td{border-bottom:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
table.num td:not(:first-child),table.num-last td:last-child{text-align:right;font-variant-numeric:tabular-nums}
.small{font-size:12px;color:var(--mut)}
.ok{color:#1e6b2f}.warn{color:var(--high);font-weight:600}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:11.5px;font-weight:600;color:#fff;
background:var(--mut)}
.badge.high{background:var(--high)}.badge.medium{background:var(--medium)}.badge.low{background:var(--low)}
article.alert{border:1px solid var(--line);border-left:6px solid var(--mut);border-radius:4px;padding:4px 16px 8px;
margin:18px 0}
article.risk-high{border-left-color:var(--high)}article.risk-medium{border-left-color:var(--medium)}
article.risk-low{border-left-color:var(--low)}
article h3 .rank{color:var(--mut)}article h3 .score{font-weight:400;color:var(--mut);margin-left:6px}
ul.why{margin:0;padding-left:18px}ul.why li{margin:2px 0}ul.inds{margin:0;padding-left:18px}
figure{margin:10px 0}figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:12px;color:var(--mut)}
ul.legend{list-style:none;display:flex;flex-wrap:wrap;gap:2px 14px;padding:0;margin:2px 0 4px;font-size:12px}
.sw{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px;vertical-align:-1px}
.sw.ring{border:1.5px solid #000;background:none;width:12px;height:12px}
.scroll{max-height:340px;overflow:auto;border:1px solid var(--line)}.scroll.wide{max-height:640px}
table.transfers td:nth-child(2),table.transfers td:nth-child(3){text-align:right;white-space:nowrap}
table.transfers td:first-child{white-space:nowrap}
.id{color:var(--mut);font-size:11px}.night{font-weight:600;color:#3b2a8c}
table.sortable th{cursor:pointer;position:sticky;top:0;white-space:nowrap}
table.sortable th[aria-sort=ascending]::after{content:" ▲"}table.sortable th[aria-sort=descending]::after{content:" ▼"}
table.alerts td:last-child{min-width:320px;font-size:12px}
.js-only{display:none}.js .js-only{display:inline}
footer{margin-top:34px}footer td{overflow-wrap:anywhere}footer td:nth-child(2){min-width:180px}
p.top{text-align:right;font-size:12px;margin:4px 0 0}
@page{size:A4;margin:12mm}
@media print{
 body{font-size:10.5pt;max-width:none;padding:0}
 nav,p.top,.js-only{display:none!important}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 a{color:inherit;text-decoration:none}
 h2{break-after:avoid}h3,h4{break-after:avoid}
 article.alert{break-before:page;border-width:0 0 0 4px}
 figure,tr,dl{break-inside:avoid}
 .scroll,.scroll.wide{max-height:none;overflow:visible;border:0}
 table.sortable th{position:static}
 thead{display:table-header-group}
}
"""

SORT_JS = """
document.documentElement.classList.add('js');
document.querySelectorAll('table.sortable').forEach(function(t){
  var ths=t.tHead.rows[0].cells;
  Array.prototype.forEach.call(ths,function(th,i){
    function go(){
      var asc=th.getAttribute('aria-sort')!=='ascending', num=th.dataset.type==='num';
      Array.prototype.forEach.call(ths,function(h){h.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',asc?'ascending':'descending');
      var b=t.tBodies[0], rows=Array.prototype.slice.call(b.rows);
      rows.sort(function(x,y){
        var a=x.cells[i], c=y.cells[i];
        a=a.hasAttribute('data-v')?a.getAttribute('data-v'):a.textContent;
        c=c.hasAttribute('data-v')?c.getAttribute('data-v'):c.textContent;
        if(num){a=parseFloat(a);c=parseFloat(c);a=isNaN(a)?-Infinity:a;c=isNaN(c)?-Infinity:c;}
        var r=a<c?-1:a>c?1:0; return asc?r:-r;});
      rows.forEach(function(r){b.appendChild(r);});
    }
    th.addEventListener('click',go);
    th.addEventListener('keydown',function(ev){if(ev.key==='Enter'||ev.key===' '){ev.preventDefault();go();}});
  });
});
"""


def _night_window(night_hours: Any, run: Mapping[str, Any]) -> tuple[int, int]:
    for candidate in (night_hours, run.get("night_hours")):
        if candidate is not None:
            start, end = (int(h) for h in candidate)
            return start % 24, end % 24
    try:
        params = load_config().indicators.get("I-07", {})
        return int(params["night_start_hour"]) % 24, int(params["night_end_hour"]) % 24
    except (KeyError, TypeError, ValueError, ConfigError):
        return DEFAULT_NIGHT_HOURS


def render_report(
    *,
    run: Mapping[str, Any],
    alerts: pd.DataFrame,
    details: Mapping[tuple[str, str], pd.DataFrame],
    networks: pd.DataFrame | None = None,
    metrics: Mapping[str, Any] | None = None,
    scores: pd.DataFrame | None = None,
    night_hours: tuple[int, int] | None = None,
    max_transfer_rows: int = MAX_TRANSFER_ROWS,
    max_table_alerts: int = MAX_TABLE_ALERTS,
    entities: pd.DataFrame | None = None,
    households: pd.DataFrame | None = None,
) -> str:
    """The report as one HTML string (see `write_report`)."""
    run = run or {}
    alerts = alerts if alerts is not None else pd.DataFrame(columns=["account_id", "side", "score"])
    if len(alerts) and "score" in alerts.columns:
        alerts = alerts.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    night = _night_window(night_hours, run)
    indicators = run.get("indicators") or {}

    title = f"{run.get('input', '')} · {_ts(run.get('started'), '%Y-%m-%d %H:%M UTC')}".strip(" ·")
    sections: list[tuple[str, str]] = [("summary", "Summary")]
    if metrics:
        sections.append(("evaluation", "Evaluation"))
    body = [_summary(run, alerts, scores)]
    if metrics:
        body.append(_metrics(metrics))
    linked: dict[tuple[str, str], str] = {}
    for side in SIDES:
        html_side, index = _top_alerts(side, alerts, details or {}, indicators, night, max_transfer_rows)
        body.append(html_side)
        sections.append((f"top-{side}", f"Top {side} alerts"))
        for rank, acct in index:
            linked[(acct, side)] = f"alert-{side}-{rank}"
    body.append(_alert_table(alerts, linked, max_table_alerts))
    sections.append(("alerts", "All alerts"))
    extra = {"networks": networks, "entities": entities, "households": households}
    for key, sid, title, intro in EXTRA_TABLES:
        df = extra[key]
        if df is not None and len(df):
            body.append(_table_section(df, sid, title, intro, max_transfer_rows))
            sections.append((sid, title.split(":")[0]))
    sections.append(("sources", "Indicator sources"))

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>Kalasag report — {e(title)}</title><style>{CSS}</style></head>"
        f'<body id="top">{_header(run, title)}{_nav(sections)}{"".join(body)}{_footer(run)}'
        f"<script>{SORT_JS}</script></body></html>\n"
    )


def write_report(path: str | Path, **kwargs: Any) -> Path:
    """Write report.html, one self-contained file, and return its path.

    Takes the keyword arguments of `render_report`: `run` (the run.json content), `alerts` (the
    alert table, ALERT_COLUMNS), `details` (the transfers of the top alerts keyed by
    (account_id, side)), and optionally `networks`, `entities`, `households`, `metrics` (an
    `evaluate()` result), `scores` (every account's score, or pre-binned side/bin/n, for the full
    score distribution), `night_hours` (the sender-local night window [start, end) ringed in the
    timelines; default run["night_hours"], else the default config's I-07 window),
    `max_transfer_rows` and `max_table_alerts`.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(**kwargs)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
