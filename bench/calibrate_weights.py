"""Fit the default scoring weights on *training* simulated worlds (seeds 1-3, every regime).

    .venv/bin/python bench/calibrate_weights.py                        # seeds 1 2 3 x every regime
    .venv/bin/python bench/calibrate_weights.py --seeds 1 2 3 --regimes baseline calm_customers \\
        --exclude-regimes noisy_data --write-toml bench/out/calibration/weights.toml

The procedure (docs/scoring.md, "Where the default weights come from"):

1. Every training world (regime x seed) is simulated, ingested, and its evidence computed exactly
   as `kalasag scan` does: indicators, network evidence (N-03/N-04 use the first-pass weights of the
   config in use), A-01. The features (every `<slug>_strength`, `core_rule`) and the labels are
   cached under --out, keyed by the config's digest.
2. Senders: P-02 (co-payers' scores) is computed as a scan does, from the senders' scores without
   P-02; then an L2-regularised logistic regression with non-negative weights (the config refuses
   negative ones, so they are constrained during the fit rather than zeroed afterwards) and a free
   intercept, on all training worlds pooled. The scores P-02 reads come from the weights being
   fitted, so the fit is repeated with P-02 recomputed from the previous round's weights (the
   first round: the config's), each round's weights damped halfway towards the previous ones
   (--damping; undamped, the rounds oscillate), until no weight moves by more than --tolerance or
   --sender-rounds is reached: a fixed point, printed per round.
3. The senders of every training world are scored with those weights (rounded as in the config);
   P-01 (receivers paid by high-scoring senders) is computed from these scores as a scan does.
4. Receivers: the same fit, P-01 included.
5. Printed: the `[scoring.prior_log_odds]` and `[scoring.weights]` blocks, per feature the rate at
   which it fires among positives and negatives and its marginal weight of evidence
   ln(P(fired | positive) / P(fired | negative)) next to the fitted (conditional) weight, and the
   in-sample F1 per alert threshold. Evaluation never uses these seeds (bench/generalization).

I-23 (watchlist linkage) has no training data in the simulator; its weight stays the configured one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from kalasag import indicators as ind
from kalasag import ingest
from kalasag import network as net
from kalasag import scoring
from kalasag.engine import connect
from kalasag.model import POSITIVE_ROLES, SIDES, KalasagConfig, load_config
from kalasag.pipeline import indicator_refs
from kalasag.simulate import REGIMES, simulate_world

ROOT = Path(__file__).resolve().parents[1]
FIXED = {"I-23"}  # not fitted: no training data (see the docstring)
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


# ---- features of one training world -------------------------------------------------------------
SCORING_ROOM_OWN = ("P-01", "P-02")  # computed here from the cache, not in it


def feature_digest(config: KalasagConfig) -> str:
    """The digest of what the cached features depend on: target countries, ingest, the indicators'
    parameters (without P-01/P-02, computed here) and the prior and weights N-03/N-04's first pass
    reads (without A-01/P-01/P-02). Refitting the scoring room's own evidence, or editing other
    sections (service, report, ...), does not recompute every world."""
    import hashlib

    full = config.model_dump(mode="json")
    d = {k: full[k] for k in ("target_countries", "ingest", "indicators")}
    d["indicators"] = {k: v for k, v in d["indicators"].items() if k not in SCORING_ROOM_OWN}
    d["prior_log_odds"] = full["scoring"]["prior_log_odds"]
    d["weights"] = {k: v for k, v in full["scoring"]["weights"].items()
                    if k.split(".")[0] not in (*SCORING_ROOM_OWN, "A-01")}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def world_features(d: Path, regime: str, seed: int, scale: float, config: KalasagConfig, refresh: bool) -> dict[str, Path]:
    """Cache per world: sender and receiver features (without P-01/P-02) and the payer edges."""
    files = {k: d / f"{k}.parquet" for k in ("sender", "receiver", "edges")}
    stamp = d / "features.json"
    key = {"features_sha256": feature_digest(config), "regime": regime, "seed": seed, "scale": scale}
    if not refresh and stamp.exists() and json.loads(stamp.read_text()) == key and all(p.exists() for p in files.values()):
        return files
    w = d / "world"
    if not (w / "world.json").exists() or json.loads((w / "world.json").read_text()).get("scale") != scale:
        simulate_world(w, seed=seed, scale=scale, regime=regime, progress=False)
    eng = connect()
    res = ingest.ingest(eng, w / "transfers.csv.gz", config=config)
    ev = ind.compute_evidence(eng, res.transfers, config)
    ev = net.network_evidence(eng, res.transfers, ev, config)
    labels = pd.read_csv(w / "labels.csv", dtype=str)
    labels = labels[labels["role"].isin(POSITIVE_ROLES)][["account_id", "side"]].drop_duplicates()
    for side in SIDES:
        t = scoring.anomaly_evidence(ev.side(side), scoring.account_profile(res.transfers, side), side, config)
        # strengths (the features) and fired flags (score_table needs both)
        cols = [c for c in t.columns if c.endswith(("_strength", "_fired"))] + ["core_rule"]
        df = eng.fetch(t.select("account_id", *cols))
        df["account_id"] = df["account_id"].astype(str)
        pos = set(labels.loc[labels["side"] == side, "account_id"])
        df["y"] = df["account_id"].isin(pos).astype(int)
        df.to_parquet(files[side], index=False)
    eng.fetch(scoring.payer_edges(res.transfers, config)).to_parquet(files["edges"], index=False)
    stamp.write_text(json.dumps(key))
    return files


# ---- the fit -------------------------------------------------------------------------------------
def fit_nonnegative(x: np.ndarray, y: np.ndarray, c: float) -> tuple[float, np.ndarray]:
    """min C·Σ log-loss + ½‖w‖², w ≥ 0, intercept free (scikit-learn's objective, with bounds)."""
    n, k = x.shape

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, w = theta[0], theta[1:]
        z = b + x @ w
        # log(1 + e^{-z}) for y=1, log(1 + e^{z}) for y=0, computed stably
        s = np.where(y == 1, -z, z)
        loss = np.logaddexp(0.0, s).sum()
        p = 1.0 / (1.0 + np.exp(-z))
        g = p - y
        grad = np.concatenate([[c * g.sum()], c * (x.T @ g) + w])
        return c * loss + 0.5 * float(w @ w), grad

    theta0 = np.zeros(k + 1)
    theta0[0] = math.log(max(y.mean(), 1e-6) / max(1 - y.mean(), 1e-6))
    bounds = [(None, None)] + [(0.0, None)] * k
    r = minimize(f, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 5000})
    if not r.success:
        print(f"warning: the fit did not converge ({r.message})", file=sys.stderr)
    return float(r.x[0]), r.x[1:]


def feature_ids(columns: list[str]) -> list[tuple[str, str]]:
    """(id, column) of the features present: every evidence strength the scan scores, then core_rule."""
    refs = indicator_refs()
    out = [(r.id, f"{r.slug}_strength") for r in refs if f"{r.slug}_strength" in columns and r.id not in FIXED]
    return out + [("core_rule", "core_rule")]


def fit_side(frames: list[pd.DataFrame], c: float) -> tuple[float, dict[str, float], pd.DataFrame]:
    df = pd.concat(frames, ignore_index=True)
    feats = feature_ids(list(df.columns))
    x = np.column_stack([df[col].astype("float64").fillna(0.0).to_numpy() for _, col in feats])
    y = df["y"].to_numpy(int)
    b, w = fit_nonnegative(x, y, c)
    fired = x > 0
    pos, neg = fired[y == 1], fired[y == 0]
    p_pos, p_neg = pos.mean(0), neg.mean(0)
    # marginal weight of evidence, with half a count added to each cell; undefined (NaN) for
    # evidence that never fires on a positive
    with np.errstate(divide="ignore", invalid="ignore"):
        woe = np.log((p_pos + 0.5 / max(len(pos), 1)) / (p_neg + 0.5 / max(len(neg), 1)))
    woe = np.where(pos.sum(0) > 0, woe, np.nan)
    table = pd.DataFrame({"id": [f for f, _ in feats], "weight": np.round(w, 2), "p_fired_pos": p_pos,
                          "p_fired_neg": p_neg, "marginal_woe": woe})
    return round(b, 2), {f: round(float(v), 2) for (f, _), v in zip(feats, w)}, table


def with_weights(config: KalasagConfig, side: str, prior: float, weights: dict[str, float]) -> KalasagConfig:
    """The config with one side's prior and weights replaced (as `"id.side"` keys)."""
    sc = config.scoring
    new = {k: v for k, v in sc.weights.items() if not k.endswith(f".{side}")}
    new.update({f"{k}.{side}": v for k, v in weights.items()})
    update = sc.model_copy(update={"prior_log_odds": {**sc.prior_log_odds, side: prior}, "weights": new})
    return config.model_copy(update={"scoring": update})


def sender_frames(eng, worlds: list[dict[str, Path]], config: KalasagConfig) -> list[pd.DataFrame]:
    """Senders' features with P-02 from the senders scored with `config` without P-02 (as a scan does)."""
    refs = indicator_refs()
    out = []
    for files in worlds:
        s = eng.from_records(pd.read_parquet(files["sender"]))
        before = scoring.score_table(s.drop("y"), "sender", refs, config).select("account_id", "score")
        e = eng.from_records(pd.read_parquet(files["edges"]))
        out.append(eng.fetch(scoring.copayer_evidence(s, e, before, config).drop(
            "p02_top_copayer", "p02_copayers", "p02_via", "p02_flagged", "p02_top_score", "p02_expected")))
    return out


def receiver_frames(eng, worlds: list[dict[str, Path]], config: KalasagConfig) -> list[pd.DataFrame]:
    """Receivers' features with P-01 from the senders scored with `config` (as a scan does)."""
    refs = indicator_refs()
    out = []
    for files in worlds:
        s = eng.from_records(pd.read_parquet(files["sender"]))
        before = scoring.score_table(s.drop("y"), "sender", refs, config).select("account_id", "score")
        e = eng.from_records(pd.read_parquet(files["edges"]))
        s = scoring.copayer_evidence(s.drop("y"), e, before, config)
        scores = scoring.score_table(s, "sender", refs, config).select("account_id", "score")
        r = eng.from_records(pd.read_parquet(files["receiver"]))
        out.append(eng.fetch(scoring.customer_evidence(r, e, scores, config).drop(
            "p01_top_payer", "p01_payers", "p01_flagged", "p01_top_score", "p01_expected")))
    return out


def f1_by_threshold(eng, frames: list[pd.DataFrame], side: str, config: KalasagConfig) -> dict[float, float]:
    refs = indicator_refs()
    f1s: dict[float, list[float]] = {t: [] for t in THRESHOLDS}
    for df in frames:
        sc = eng.fetch(scoring.score_table(eng.from_records(df), side, refs, config).select("y", "score"))
        for t in THRESHOLDS:
            a = sc["score"] >= t
            tp = int((a & (sc["y"] == 1)).sum())
            p = tp / a.sum() if a.sum() else 0.0
            r = tp / sc["y"].sum() if sc["y"].sum() else 0.0
            f1s[t].append(2 * p * r / (p + r) if p + r else 0.0)
    return {t: float(np.mean(v)) for t, v in f1s.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--regimes", nargs="+", default=list(REGIMES))
    ap.add_argument("--exclude-regimes", nargs="*", default=[], help="leave these regimes out (a held-out-regime check)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--C", type=float, default=0.5, help="inverse L2 strength (scikit-learn's C)")
    ap.add_argument("--sender-rounds", type=int, default=12,
                    help="at most this many sender fits, each with P-02 from the previous round's weights (the first: the config's)")
    ap.add_argument("--damping", type=float, default=0.5, help="share of the previous round's weights kept in each round")
    ap.add_argument("--tolerance", type=float, default=0.05, help="stop when no sender weight moves by more than this")
    ap.add_argument("--config", type=Path, default=None, help="config whose first-pass weights compute N-03/N-04")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "calibration")
    ap.add_argument("--refresh", action="store_true", help="recompute the cached features")
    ap.add_argument("--write-toml", type=Path, default=None, help="write the fitted [scoring] blocks here")
    args = ap.parse_args()
    if bad := [r for r in args.regimes + args.exclude_regimes if r not in REGIMES]:
        sys.exit(f"error: unknown regime(s) {', '.join(bad)} (choose from {', '.join(REGIMES)})")
    if set(args.seeds) & set(range(101, 10_000)):
        print("warning: seeds above 100 are evaluation seeds (bench/generalization); do not fit on them", file=sys.stderr)
    config = load_config(args.config)
    regimes = [r for r in args.regimes if r not in set(args.exclude_regimes)]
    worlds = []
    for regime in regimes:
        for seed in args.seeds:
            t0 = time.perf_counter()
            worlds.append(world_features(args.out / f"{regime}-{seed}", regime, seed, args.scale, config, args.refresh))
            print(f"# features {regime}-{seed} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    eng = connect()
    fitted = config
    prev: tuple[float, dict[str, float]] | None = None
    for rnd in range(max(args.sender_rounds, 1)):
        senders = sender_frames(eng, worlds, fitted)
        s_prior, s_w, s_table = fit_side(senders, args.C)
        raw = max(abs(v - (prev[1].get(k, 0.0) if prev else 0.0)) for k, v in s_w.items())
        if prev is not None:  # damped: a share of the previous round's weights kept
            d = args.damping
            s_prior = round(d * prev[0] + (1 - d) * s_prior, 2)
            s_w = {k: round(d * prev[1].get(k, 0.0) + (1 - d) * v, 2) for k, v in s_w.items()}
        moved = max(abs(v - (prev[1].get(k, 0.0) if prev else 0.0)) for k, v in s_w.items())
        fitted = with_weights(fitted, "sender", s_prior, s_w)
        print(f"# sender round {rnd + 1}: intercept {s_prior}, P-02 {s_w.get('P-02', 0.0)}, largest weight change "
              f"{moved:.2f} (fit against the previous weights: {raw:.2f})", file=sys.stderr, flush=True)
        if prev is not None and moved <= args.tolerance:
            break
        prev = (s_prior, s_w)
    s_table["weight"] = s_table["id"].map(s_w)  # the damped weights
    receivers = receiver_frames(eng, worlds, fitted)
    r_prior, r_w, r_table = fit_side(receivers, args.C)
    fitted = with_weights(fitted, "receiver", r_prior, r_w)

    lines = [f"# fitted by bench/calibrate_weights.py: seeds {args.seeds}, regimes {regimes}, scale {args.scale}, C {args.C}",
             "[scoring.prior_log_odds]", f"sender = {s_prior}", f"receiver = {r_prior}", "", "[scoring.weights]"]
    for side, w in (("sender", s_w), ("receiver", r_w)):
        for k, v in sorted(w.items(), key=lambda kv: -kv[1]):
            lines.append(f'"{k}.{side}" = {v}')
    for k in sorted(FIXED):
        if k in config.scoring.weights:
            lines.append(f'"{k}" = {config.scoring.weights[k]}  # not fitted (no training data)')
    block = "\n".join(lines) + "\n"
    print(block)
    if args.write_toml:
        args.write_toml.parent.mkdir(parents=True, exist_ok=True)
        args.write_toml.write_text(block)
    for side, table, frames in (("sender", s_table, senders), ("receiver", r_table, receivers)):
        n_pos = sum(int(f["y"].sum()) for f in frames)
        n = sum(len(f) for f in frames)
        print(f"\n## {side}: {n_pos} positives of {n:,} accounts in {len(frames)} worlds; intercept "
              f"{s_prior if side == 'sender' else r_prior}")
        print("| evidence | fitted weight | fires on positives | fires on negatives | marginal WoE |")
        print("|---|---:|---:|---:|---:|")
        for row in table.sort_values("weight", ascending=False).itertuples():
            woe = "–" if np.isnan(row.marginal_woe) else f"{row.marginal_woe:+.2f}"
            print(f"| {row.id} | {row.weight:.2f} | {row.p_fired_pos:.3f} | {row.p_fired_neg:.4f} | {woe} |")
        f1 = f1_by_threshold(eng, frames, side, fitted)
        print("in-sample mean F1 by alert threshold: " + ", ".join(f"{t:g}: {v:.3f}" for t, v in f1.items()))


if __name__ == "__main__":
    main()
