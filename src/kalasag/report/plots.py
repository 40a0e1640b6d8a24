"""The report's pictures: small PNGs rendered with matplotlib's object API (no pyplot state).

Each function returns a `data:image/png;base64,...` URI, so the HTML stays one self-contained file.
Figures are built with `matplotlib.figure.Figure` + the Agg canvas: nothing global to close, no
display needed. Labels come from untrusted files: mathtext is switched off so a `$` in a name is
drawn as text, never parsed.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator
from PIL import Image

DPI = 96
WIDTH_IN = 7.6
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22",
)
OTHER_COLOUR = "#9a9a9a"
MAX_COLOURED = len(PALETTE)  # counterparties beyond this share one grey "others" colour
MAX_BARS = 12
SCORE_BINS = 50  # the score histogram's bins of width 0.02
RC = {
    "text.parse_math": False,
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 7,
}
SIDE_COLOURS = {"sender": "#1f77b4", "receiver": "#d62728"}


def _log_y(ax, lo: float, hi: float) -> None:  # noqa: ANN001 - a matplotlib Axes
    """A log y axis with 1-2-5 ticks (decades only over a wide range) and plain labels (the default labels are mathtext, "$10^{2}$",
    which is switched off; minor ticks are off because they cost a third of the drawing time)."""
    ax.set_yscale("log")
    ax.minorticks_off()
    subs = (1.0, 2.0, 5.0) if hi / max(lo, 1e-9) < 300 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:g}"))


def _png(fig: Figure) -> str:
    """Draw once with Agg and store as a palette PNG (a quarter of the bytes, same picture)."""
    fig.set_dpi(DPI)
    canvas = FigureCanvasAgg(fig)
    with warnings.catch_warnings():  # e.g. AutoDateLocator on a range of a few minutes
        warnings.simplefilter("ignore", UserWarning)
        canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    buf = io.BytesIO()
    image.quantize(colors=128, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _short(text: str, n: int = 26) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def counterparty_labels(details: pd.DataFrame) -> pd.Series:
    """One display label per counterparty id: "name (CC)" or "id (CC)"."""
    name = details.get("counterparty_name", pd.Series(index=details.index, dtype=object))
    country = details.get("counterparty_country", pd.Series(index=details.index, dtype=object))
    ids = details["counterparty_id"].astype(str)
    base = name.where(name.notna() & (name.astype(str).str.strip() != ""), ids).astype(str)
    cc = country.fillna("").astype(str)
    label = [f"{_short(b)} ({c})" if c else _short(b) for b, c in zip(base, cc, strict=True)]
    frame = pd.DataFrame({"id": ids, "label": label})
    first = frame.drop_duplicates("id").set_index("id")["label"]
    return ids.map(first)


def to_utc(ts: pd.Series) -> pd.Series:
    """Timestamps as tz-aware UTC: naive values are read as UTC, offsets are converted, junk is NaT."""
    if pd.api.types.is_datetime64_any_dtype(ts.dtype):
        return pd.to_datetime(ts, utc=True)
    return pd.to_datetime(ts, utc=True, errors="coerce", format="ISO8601")


def _utc_naive(ts: pd.Series) -> pd.Series:
    return to_utc(ts).dt.tz_convert(None)


def is_night(hours: pd.Series, night: tuple[int, int]) -> np.ndarray:
    """True where the hour lies in [start, end) of the night window (which may wrap midnight)."""
    start, end = night
    h = pd.to_numeric(hours, errors="coerce").to_numpy(float)
    if start <= end:
        out = (h >= start) & (h < end)
    else:
        out = (h >= start) | (h < end)
    return np.nan_to_num(out, nan=False).astype(bool)


def counterparty_colours(details: pd.DataFrame) -> pd.DataFrame:
    """One row per counterparty, largest USD first: usd, n, label, colour.

    The same colours are used by the timeline dots, the counterparty bars and the HTML legend, so an
    analyst can follow one counterparty across both pictures.
    """
    d = details.assign(
        _usd=pd.to_numeric(details["amount_usd"], errors="coerce").fillna(0.0),
        _cp=details["counterparty_id"].astype(str),
        _label=counterparty_labels(details),
    )
    agg = d.groupby("_cp").agg(usd=("_usd", "sum"), n=("_usd", "size"), label=("_label", "first"))
    agg = agg.sort_values(["usd", "n"], ascending=False)
    agg["colour"] = [PALETTE[i] if i < MAX_COLOURED else OTHER_COLOUR for i in range(len(agg))]
    agg.index.name = "counterparty_id"
    return agg


def timeline_png(details: pd.DataFrame, night: tuple[int, int], colours: pd.DataFrame | None = None) -> str:
    """Amount in USD over time, one dot per transfer, coloured by counterparty; night ringed.

    The legend is not drawn in the picture (the report prints it in HTML beside it): matplotlib
    legends cost as much as the rest of the plot.
    """
    colours = counterparty_colours(details) if colours is None else colours
    d = details.assign(
        _t=_utc_naive(details["timestamp"]),
        _usd=pd.to_numeric(details["amount_usd"], errors="coerce"),
        _cp=details["counterparty_id"].astype(str),
    ).dropna(subset=["_t", "_usd"])
    d = d.assign(_c=d["_cp"].map(colours["colour"]).fillna(OTHER_COLOUR))
    # grey ("others") first so coloured dots are drawn on top
    d = d.assign(_o=(d["_c"] != OTHER_COLOUR).astype(int)).sort_values(["_o", "_t"], kind="stable")
    with mpl.rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, 2.5))
        fig.subplots_adjust(left=0.085, right=0.985, bottom=0.13, top=0.96)
        ax = fig.add_subplot()
        ax.scatter(d["_t"], d["_usd"], s=18, c=d["_c"].tolist(), zorder=3, linewidths=0)
        if "sender_local_hour" in d.columns:
            nightly = d[is_night(d["sender_local_hour"], night)]
            if len(nightly):
                ax.scatter(nightly["_t"], nightly["_usd"], s=58, facecolors="none", edgecolors="black",
                           linewidths=0.9, zorder=4)
        usd = d["_usd"][d["_usd"] > 0]
        if len(usd) and usd.max() / usd.min() > 50:
            _log_y(ax, float(usd.min()), float(usd.max()))
        ax.set_ylabel("amount (USD)")
        locator = AutoDateLocator(maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.6, zorder=0)
        if not len(d):
            ax.text(0.5, 0.5, "no transfers", ha="center", va="center", transform=ax.transAxes)
        return _png(fig)


def counterparties_png(details: pd.DataFrame, colours: pd.DataFrame | None = None) -> str:
    """Horizontal bars: USD per counterparty (with its country), largest first."""
    agg = counterparty_colours(details) if colours is None else colours
    top = agg.head(MAX_BARS).iloc[::-1]
    n_more = len(agg) - len(top)
    height = 0.2 + 0.24 * max(len(top), 1) + (0.22 if n_more else 0)
    with mpl.rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, height))
        fig.subplots_adjust(left=0.29, right=0.97, bottom=0.08 / height, top=1 - (0.3 if n_more else 0.08) / height)
        ax = fig.add_subplot()
        y = np.arange(len(top))
        ax.barh(y, top["usd"].to_numpy(float), color=top["colour"].tolist(), height=0.7)
        ax.set_yticks(y, labels=top["label"].tolist())
        ax.set_ylim(-0.5, max(len(top), 1) - 0.5)
        xmax = float(top["usd"].max()) if len(top) else 1.0
        for yi, (usd, n) in enumerate(zip(top["usd"], top["n"], strict=True)):
            ax.text(usd + xmax * 0.01, yi, f"${usd:,.0f} · {n} tx", va="center", fontsize=7)
        ax.set_xlim(0, xmax * 1.25 if xmax > 0 else 1)
        # each bar carries its USD total, so the x axis is left out (ticks are the costly part)
        ax.set_xticks([])
        ax.spines["bottom"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        if n_more:
            ax.set_title(f"top {len(top)} of {len(agg)} counterparties", loc="left", fontsize=8)
        return _png(fig)


def score_bins(scores: pd.DataFrame) -> pd.DataFrame:
    """Per-account scores (side, score) → the histogram the plot draws: side, bin, n.

    bin = floor(score * SCORE_BINS), the top edge folded into the last bin. A pipeline with millions
    of accounts can compute the same table in the engine and pass it instead of the scores.
    """
    score = pd.to_numeric(scores["score"], errors="coerce").clip(0, 1)
    b = np.minimum(np.floor(score.to_numpy(float) * SCORE_BINS), SCORE_BINS - 1)
    frame = pd.DataFrame({"side": scores["side"].astype(str).to_numpy(), "bin": b}).dropna()
    frame["bin"] = frame["bin"].astype(int)
    return frame.groupby(["side", "bin"], as_index=False).size().rename(columns={"size": "n"})


def score_distribution_png(
    scores: pd.DataFrame, thresholds: dict[str, float], *, all_accounts: bool
) -> str:
    """Histogram of scores per side with the alert/medium/high thresholds as vertical lines.

    `scores` is either per account (side, score) or already binned (side, bin, n; see `score_bins`).
    """
    hist = scores if {"bin", "n"} <= set(scores.columns) else score_bins(scores)
    width = 1.0 / SCORE_BINS
    with mpl.rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, 2.4))
        fig.subplots_adjust(left=0.08, right=0.76, bottom=0.18, top=0.95)
        ax = fig.add_subplot()
        top = 1.0
        for side, colour in SIDE_COLOURS.items():
            h = hist[hist["side"] == side]
            if len(h):
                counts = h["n"].to_numpy(float)
                top = max(top, float(counts.max()))
                ax.bar(h["bin"].to_numpy(float) * width, counts, width=width, align="edge", color=colour,
                       alpha=0.55, label=f"{side} ({int(counts.sum()):,})", linewidth=0)
        styles: Sequence[tuple[str, str]] = (("alert", "-"), ("medium", "--"), ("high", ":"))
        for key, style in styles:
            if key in thresholds and thresholds[key] is not None:
                ax.axvline(float(thresholds[key]), color="black", linestyle=style, linewidth=0.9,
                           label=f"{key} ≥ {float(thresholds[key]):.2f}")
        if all_accounts:
            _log_y(ax, 1.0, top)
            ax.set_ylim(0.7, max(top, 1.0) * 1.6)  # bars start at 1 account, not at the smallest bar
            ax.set_ylabel("accounts (log)")
        else:
            ax.set_ylabel("alerts")
        ax.set_xlim(0, 1)
        ax.set_xlabel("score")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, borderaxespad=0)
        return _png(fig)
