"""A synthetic year of remittances into the Philippines, with planted OSEC customers and
facilitators among realistic look-alikes, and its ground truth (see docs/simulator.md).

    from kalasag.simulate import simulate_world
    summary = simulate_world("world/", seed=1, scale=1.0)   # ~300,000 transfers

Writes `transfers.csv.gz` (or `transfers.parquet`), `labels.csv`, `operations.csv` (the OSEC
accounts and the payments each received or sent in the operations) and `world.json` into the folder.
The simulator produces data only; it imports no detector and no engine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kalasag.simulate import _world as W
from kalasag.simulate._errors import ERROR_WEIGHTS, inject
from kalasag.simulate._params import DEFAULT_PARAMS, REGIMES, SimulationError, resolve_regime
from kalasag.simulate._table import assemble, write_csv_gz, write_parquet

__all__ = ["DEFAULT_PARAMS", "ERROR_WEIGHTS", "FORMATS", "REGIMES", "SimulationError", "WorldSummary",
           "simulate_world"]

FORMATS = ("csv.gz", "parquet")
SIMULATOR_VERSION = "1"


@dataclass
class WorldSummary:
    out_dir: Path
    seed: int
    scale: float
    n_transfers: int
    n_accounts: dict
    roles: dict[str, int]
    period_start: date
    period_end: date
    files: dict[str, Path]
    injected_errors: int
    regime: str = "baseline"
    injected_errors_by_reason: dict[str, int] = field(default_factory=dict)
    osec: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["files"] = {k: str(v) for k, v in self.files.items()}
        d["period_start"] = self.period_start.isoformat()
        d["period_end"] = self.period_end.isoformat()
        return d


class _Phases:
    """One rich progress bar per phase of the simulator (silent when disabled)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = None
        self.task = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("[bold]simulate[/] {task.description:<24}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn())
            self.progress.__enter__()
        return self

    def phase(self, name: str, total: int = 1) -> None:
        self._finish()
        if self.progress is not None:
            self.task = self.progress.add_task(name, total=total)

    def advance(self, description: str | None = None) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=1)

    def _finish(self) -> None:
        if self.progress is not None and self.task is not None:
            t = self.progress.tasks[-1]
            self.progress.update(self.task, completed=t.total)
            self.task = None

    def __exit__(self, *exc):
        self._finish()
        if self.progress is not None:
            self.progress.__exit__(*exc)


# one world (or one part of a partitioned world) is built in memory: at most scale 100 (≈ 30M transfers)
MAX_SCALE_PER_PART = 100.0


def _check(out_dir, seed, scale, fmt, start, months, inject_errors, parts=1) -> None:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SimulationError(f"--seed must be a non-negative integer, got {seed!r}")
    if not isinstance(parts, int) or parts < 1:
        raise SimulationError(f"--parts must be a positive integer, got {parts!r}")
    if not (isinstance(scale, (int, float)) and 0 < scale <= MAX_SCALE_PER_PART * parts):
        limit = "(0, 100]" if parts == 1 else f"(0, {MAX_SCALE_PER_PART * parts:g}] (100 per part, {parts} parts)"
        raise SimulationError(f"--scale must be a number in {limit}, got {scale!r}")
    if fmt not in FORMATS:
        raise SimulationError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not isinstance(months, int) or not 1 <= months <= 60:
        raise SimulationError(f"--months must be an integer between 1 and 60, got {months!r}")
    if not isinstance(start, date) or start.day != 1:
        raise SimulationError(f"start must be the first day of a month, got {start!r}")
    if not (0.0 <= inject_errors <= 0.5):
        raise SimulationError(f"--inject-errors must be a fraction between 0 and 0.5, got {inject_errors!r}")
    if inject_errors > 0 and fmt != "csv.gz":
        raise SimulationError("--inject-errors is for CSV output only (Parquet columns are typed)")
    p = Path(out_dir)
    if p.exists() and not p.is_dir():
        raise SimulationError(f"--out {p} exists and is not a directory")


def _build(seed_seq, params, scale, start, months, ph):
    rng_world, rng_table = (np.random.default_rng(s) for s in seed_seq.spawn(2))
    w = W.World(rng_world, params, float(scale), start, months)
    builders = (W.build_ofw, W.build_spouses, W.build_romance, W.build_freelance, W.build_charity,
                W.build_shops, W.build_tourists, W.build_domestic)
    ph.phase("legitimate populations", len(builders))
    for build in builders:
        build(w)
        ph.advance()
    ph.phase("OSEC operations")
    osec = W.build_osec(w)
    ph.phase("transfers table", 5)
    w.rng = rng_table
    cols, labels, stats = assemble(w, tick=ph.advance)
    return cols, labels, osec, stats["operations"]


def simulate_world(out_dir, *, seed: int = 0, scale: float = 1.0, fmt: str = "csv.gz",
                   regime: str | dict = "baseline", start: date = date(2025, 10, 1), months: int = 12,
                   inject_errors: float = 0.0, progress: bool = True, parts: int = 1) -> WorldSummary:
    """Simulate a world and write transfers, labels.csv, operations.csv and world.json into `out_dir`.

    scale=1.0 gives about 300,000 transfers over 12 months. Deterministic for a seed: the same
    arguments write byte-identical files. `regime` is a name of REGIMES or a dict of parameter
    overrides (optionally with "regime": base name). `inject_errors` is the fraction of extra bad
    rows (CSV only), each with one defect whose quarantine reason is counted in world.json.
    `parts` > 1 (Parquet only, for benchmarks at 10M-100M transfers) builds that many independent
    sub-worlds of scale/parts each, in bounded memory, into `transfers/part-NNNNN.parquet`.
    """
    _check(out_dir, seed, scale, fmt, start, months, inject_errors, parts)
    if parts > 1 and fmt != "parquet":
        raise SimulationError("--parts needs --format parquet (a partitioned Parquet directory)")
    regime_name, params = resolve_regime(regime)
    t0 = datetime.now(timezone.utc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    by_reason: dict[str, int] = {}

    with _Phases(progress) as ph:
        if parts == 1:
            ss = np.random.SeedSequence(int(seed))
            ss_world, ss_err = ss.spawn(2)
            cols, labels, osec, operations = _build(ss_world, params, scale, start, months, ph)
            n_good = len(cols["txn_id"])
            malformed = None
            if inject_errors > 0:
                ph.phase("bad rows")
                cols, malformed, by_reason = inject(np.random.default_rng(ss_err), cols, inject_errors)
            ph.phase("write " + fmt)
            if fmt == "csv.gz":
                files["transfers"] = out / "transfers.csv.gz"
                write_csv_gz(files["transfers"], cols, malformed)
            else:
                files["transfers"] = out / "transfers.parquet"
                write_parquet(files["transfers"], cols)
        else:
            files["transfers"] = out / "transfers"
            files["transfers"].mkdir(exist_ok=True)
            for old in files["transfers"].glob("part-*.parquet"):
                old.unlink()
            ph.phase(f"{parts} parts", parts)
            all_labels, all_ops, osec, n_good = [], [], {}, 0
            for i in range(parts):
                with _Phases(False) as quiet:
                    cols, lab, o, ops = _build(np.random.SeedSequence([int(seed), i + 1]), params, scale / parts,
                                               start, months, quiet)
                write_parquet(files["transfers"] / f"part-{i:05d}.parquet", cols)
                n_good += len(cols["txn_id"])
                all_labels.append(lab)
                all_ops.append(ops)
                osec = {k: osec.get(k, 0) + v for k, v in o.items()}
                del cols
                ph.advance()
            labels = pd.concat(all_labels, ignore_index=True).sort_values(["side", "account_id"], kind="stable")
            operations = pd.concat(all_ops, ignore_index=True).sort_values(["group", "side", "account_id"], kind="stable")
        files["labels"] = out / "labels.csv"
        labels.to_csv(files["labels"], index=False, lineterminator="\n")
        files["operations"] = out / "operations.csv"
        operations.to_csv(files["operations"], index=False, lineterminator="\n")
        files["world"] = out / "world.json"

    period_end = date(start.year + (start.month - 1 + months) // 12, (start.month - 1 + months) % 12 + 1, 1)
    roles = {k: int(v) for k, v in labels["role"].value_counts().sort_index().items()}
    summary = WorldSummary(
        out_dir=out, seed=int(seed), scale=float(scale), n_transfers=n_good,
        n_accounts={s: int((labels["side"] == s).sum()) for s in ("sender", "receiver")},
        roles=roles, period_start=start, period_end=period_end, files=files,
        injected_errors=int(sum(by_reason.values())), regime=regime_name,
        injected_errors_by_reason=by_reason, osec=osec,
        seconds=round((datetime.now(timezone.utc) - t0).total_seconds(), 2),
    )
    doc = summary.to_json()
    doc.pop("seconds")  # keep world.json byte-identical across runs of the same seed (any folder)
    doc.pop("out_dir")
    doc["files"] = {k: v.name for k, v in files.items()}
    doc["rows_written"] = n_good + summary.injected_errors
    doc["period_end_exclusive"] = True
    doc["simulator_version"] = SIMULATOR_VERSION
    doc["regime_params"] = params
    doc["roles_by_side"] = {s: {k: int(v) for k, v in labels.loc[labels["side"] == s, "role"].value_counts().sort_index().items()}
                            for s in ("sender", "receiver")}
    if files["transfers"].is_file():
        doc["transfers_sha256"] = hashlib.sha256(files["transfers"].read_bytes()).hexdigest()
    doc["parts"] = parts
    files["world"].write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary
