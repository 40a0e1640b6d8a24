"""The report room: report.html, one self-contained file with the run summary, the top alerts with
their plots (payment timeline, counterparties), the full alert table and the indicator sources.

Entry points: `write_report(path, *, run, alerts, details, networks=None, metrics=None, ...)`
and `render_report(...)` (the same page as a string). `scores=` (optional) draws the score
distribution of every scored account: per account (side, score) or pre-binned (side, bin, n) with
bin = floor(score * SCORE_BINS) — `score_bins()` does it in pandas, an engine can do it at scale.
"""

from kalasag.report.html import DEFAULT_NIGHT_HOURS, render_report, write_report
from kalasag.report.plots import SCORE_BINS, score_bins

__all__ = ["DEFAULT_NIGHT_HOURS", "SCORE_BINS", "render_report", "score_bins", "write_report"]
