"""The generalization suite's machinery: simulate held-out worlds, scan them, measure detection and
calibration. `run.py` is the command line; `bench/detection.py` calls `run_suite` too.

Per world and side: precision, recall, F1 and average precision of `kalasag scan` (default config
unless another is given) next to the plain published rule I-01 AND I-05 AND (I-02 OR I-03 OR I-04),
the ratio of the two F1s, and calibration: the Brier score and a reliability table (score bins
against the observed rate of positives), also pooled over the worlds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kalasag.evaluate import evaluate
from kalasag.model import POSITIVE_ROLES, SIDES, KalasagConfig
from kalasag.pipeline import scan
from kalasag.simulate import REGIMES, simulate_world

# Score bins of the reliability table: fine at the bottom, where almost every account sits.
BIN_EDGES: tuple[float, ...] = (0.0, 0.001, 0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
# The default held-out worlds: every regime once, seeds never used for fitting (training uses 1-3).
DEFAULT_WORLDS: tuple[str, ...] = (
    "baseline:201", "daytime_payers:202", "high_amounts:203", "many_accounts:204",
    "more_lookalikes:205", "calm_customers:206", "noisy_data:207",
)
TARGET_F1 = 0.6
TARGET_RATIO = 5.0


@dataclass(frozen=True)
class World:
    regime: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.regime}-{self.seed}"


def parse_world(text: str) -> World:
    """`regime:seed`, e.g. `calm_customers:206`."""
    regime, sep, seed = text.partition(":")
    if not sep or not seed.strip().isdigit():
        raise ValueError(f"world '{text}' is not regime:seed (e.g. baseline:201)")
    if regime not in REGIMES:
        raise ValueError(f"world '{text}': unknown regime '{regime}' (choose from {', '.join(REGIMES)})")
    return World(regime, int(seed))


def simulate_cached(world: World, scale: float, out: Path) -> tuple[Path, Path, int]:
    """Simulate a world unless `out/world.json` already holds the same seed, regime and scale."""
    meta = out / "world.json"
    if meta.exists():
        d = json.loads(meta.read_text())
        if (d.get("seed"), d.get("regime"), d.get("scale")) == (world.seed, world.regime, scale):
            return out / "transfers.csv.gz", out / "labels.csv", int(d["n_transfers"])
    s = simulate_world(out, seed=world.seed, scale=scale, regime=world.regime, progress=False)
    return s.files["transfers"], s.files["labels"], s.n_transfers


def scored_with_truth(run_dir: Path, labels_path: Path) -> pd.DataFrame:
    """Every scored (account_id, side) with its score and y (1 = a positive role)."""
    p = run_dir / "scores.parquet"
    scores = pd.read_parquet(p)[["account_id", "side", "score"]]
    scores["account_id"] = scores["account_id"].astype(str)
    labels = pd.read_csv(labels_path, dtype=str)
    pos = labels[labels["role"].isin(POSITIVE_ROLES)][["account_id", "side"]].drop_duplicates()
    pos["y"] = 1
    out = scores.merge(pos, on=["account_id", "side"], how="left")
    out["y"] = out["y"].fillna(0).astype(int)
    return out


def reliability(frame: pd.DataFrame, edges: Sequence[float] = BIN_EDGES) -> list[dict[str, Any]]:
    """Per score bin [lo, hi): accounts, positives, mean score, observed positive rate (last bin closed)."""
    s, y = frame["score"].to_numpy(float), frame["y"].to_numpy(int)
    idx = np.clip(np.searchsorted(np.asarray(edges), s, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        m = idx == b
        n = int(m.sum())
        rows.append({
            "lo": edges[b], "hi": edges[b + 1], "n": n, "positives": int(y[m].sum()),
            "mean_score": float(s[m].mean()) if n else None, "observed": float(y[m].mean()) if n else None,
        })
    return rows


def calibration(frame: pd.DataFrame) -> dict[str, Any]:
    """Brier score, the Brier score of always predicting the base rate, skill = 1 − ratio, and
    the expected calibration error over the reliability bins (weighted by accounts)."""
    s, y = frame["score"].to_numpy(float), frame["y"].to_numpy(int)
    if not len(s):
        return {"n": 0}
    base = y.mean()
    brier = float(np.mean((s - y) ** 2))
    ref = float(np.mean((base - y) ** 2))
    bins = reliability(frame)
    ece = sum(b["n"] * abs(b["mean_score"] - b["observed"]) for b in bins if b["n"]) / len(s)
    return {
        "n": int(len(s)), "positives": int(y.sum()), "mean_score": float(s.mean()), "positive_rate": float(base),
        "brier": brier, "brier_base_rate": ref, "brier_skill": 1 - brier / ref if ref else 0.0, "ece": float(ece),
        "reliability": bins,
    }


def run_world(world: World, scale: float, out: Path, config: KalasagConfig | None = None) -> dict[str, Any]:
    d = out / world.name
    t0 = time.perf_counter()
    transfers, labels, n_transfers = simulate_cached(world, scale, d / "world")
    t1 = time.perf_counter()
    scan(transfers, d / "run", config=config, quiet=True, write_report=False)
    t2 = time.perf_counter()
    result = evaluate(d / "run", labels)
    truth = scored_with_truth(d / "run", labels)
    sides = {}
    for side in SIDES:
        b = result["sides"][side]
        rule_f1 = b["rule"]["f1"]
        sides[side] = {
            "accounts": b["n_accounts"], "positives": b["n_positive"], "alerts": b["n_alerts"],
            "precision": b["precision"], "recall": b["recall"], "f1": b["f1"], "average_precision": b["average_precision"],
            "rule_alerts": b["rule"]["n_alerts"], "rule_precision": b["rule"]["precision"],
            "rule_recall": b["rule"]["recall"], "rule_f1": rule_f1,
            "ratio": b["f1"] / rule_f1 if rule_f1 else None,
            "calibration": calibration(truth[truth["side"] == side]),
        }
    return {
        "world": world.name, "regime": world.regime, "seed": world.seed, "scale": scale, "transfers": n_transfers,
        "seconds": {"simulate": round(t1 - t0, 1), "scan": round(t2 - t1, 1)}, "sides": sides,
        "truth_path": str(d / "run" / "scores.parquet"), "labels": str(labels),
    }


def run_suite(worlds: Sequence[World], scale: float, out: Path, config: KalasagConfig | None = None,
              progress: bool = True) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for w in worlds:
        r = run_world(w, scale, out, config)
        rows.append(r)
        if progress:
            cells = [f"{s} F1 {r['sides'][s]['f1']:.3f} (rule {r['sides'][s]['rule_f1']:.3f})" for s in SIDES]
            print(f"{w.name}: " + ", ".join(cells) + f"  [{r['seconds']['scan']:.0f} s scan]", flush=True)
    pooled = {}
    for side in SIDES:
        frames = [scored_with_truth(Path(r["truth_path"]).parent, Path(r["labels"])) for r in rows]
        frame = pd.concat([f[f["side"] == side] for f in frames], ignore_index=True)
        pooled[side] = calibration(frame)
    summary = {"worlds": rows, "pooled_calibration": pooled, "scale": scale,
               "targets": {"f1": TARGET_F1, "ratio": TARGET_RATIO}}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary


# ---- markdown ------------------------------------------------------------------------------------
def _f(x: Any, nd: int = 3) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def markdown(summary: dict[str, Any]) -> str:
    """The tables recorded in docs/detection.md."""
    lines = [
        "| world | transfers | side | positives | alerts | precision | recall | F1 | AP | rule alerts | rule F1 "
        "| F1 / rule F1 | Brier | targets |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in summary["worlds"]:
        transfers = f"{r['transfers']:,}"
        for side in SIDES:
            s = r["sides"][side]
            ok_f1 = s["f1"] >= TARGET_F1
            ok_ratio = s["ratio"] is not None and s["ratio"] >= TARGET_RATIO
            mark = "met" if ok_f1 and ok_ratio else "missed: " + ", ".join(
                x for x, ok in (("F1", ok_f1), ("ratio", ok_ratio)) if not ok)
            lines.append(
                f"| {r['world'] if side == 'sender' else ''} | {transfers if side == 'sender' else ''} | {side} | {s['positives']} | "
                f"{s['alerts']} | {_f(s['precision'])} | {_f(s['recall'])} | {_f(s['f1'])} | "
                f"{_f(s['average_precision'])} | {s['rule_alerts']:,} | {_f(s['rule_f1'])} | "
                f"{_f(s['ratio'], 1)}× | {s['calibration']['brier']:.5f} | {mark} |")
    if not summary.get("pooled_calibration"):
        return "\n".join(lines) + "\n"
    lines += ["", "Calibration pooled over the worlds (reliability: accounts per score bin and the observed "
              "share of positives among them):", ""]
    for side in SIDES:
        c = summary["pooled_calibration"][side]
        lines += [
            f"**{side}s**: {c['n']:,} accounts, {c['positives']} positives (rate {c['positive_rate']:.4f}, mean score "
            f"{c['mean_score']:.4f}); Brier {c['brier']:.5f} against {c['brier_base_rate']:.5f} for the base rate "
            f"(skill {c['brier_skill']:.2f}); expected calibration error {c['ece']:.5f}.",
            "",
            "| score bin | accounts | positives | mean score | observed rate |",
            "|---|---:|---:|---:|---:|",
        ]
        for b in c["reliability"]:
            hi = "]" if b["hi"] == 1.0 else ")"
            lines.append(f"| [{b['lo']:g}, {b['hi']:g}{hi} | {b['n']:,} | {b['positives']} | "
                         f"{_f(b['mean_score'], 4)} | {_f(b['observed'], 4)} |")
        lines.append("")
    return "\n".join(lines)
