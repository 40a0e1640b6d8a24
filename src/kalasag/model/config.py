"""Configuration: every threshold lives in TOML, validated by pydantic.

`default_config.toml` beside this file holds the documented defaults; a user file given with
`--config` is merged over it key by key, so it only needs the values it changes.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.toml")


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid (one-line message)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestConfig(_Strict):
    future_tolerance_minutes: int = Field(ge=0)
    default_mapping: dict[str, str] = Field(default_factory=dict)
    amount_thousands_separator: bool = True


class ScoringConfig(_Strict):
    prior_log_odds: dict[str, float]  # per side: "sender", "receiver"
    alert_threshold: float = Field(ge=0, le=1)
    risk_high: float = Field(ge=0, le=1)
    risk_medium: float = Field(ge=0, le=1)
    weights: dict[str, float]  # "I-03" or "I-03.receiver"; "core_rule[.side]" for the plain rule
    max_explained: int = Field(ge=1)
    # Capacity thresholds: alerts per 10,000 scored accounts, per side ("sender", "receiver").
    # When set for a side, that side's alert threshold is the score of its k-th highest account,
    # k = ceil(n_accounts × alerts_per_10k / 10,000) (ties included); alert_threshold is then unused.
    alerts_per_10k: dict[str, float] = Field(default_factory=dict)
    # Set only by a learned model (`kalasag scan --model`): its weights may be negative.
    learned: bool = False

    @model_validator(mode="after")
    def _check(self) -> "ScoringConfig":
        missing = {"sender", "receiver"} - set(self.prior_log_odds)
        if missing:
            raise ValueError(f"prior_log_odds needs a value for {', '.join(sorted(missing))}")
        if not self.risk_medium <= self.risk_high:
            raise ValueError("risk_medium must not exceed risk_high")
        unknown = set(self.alerts_per_10k) - {"sender", "receiver"}
        if unknown:
            raise ValueError(f"alerts_per_10k takes sides 'sender' and 'receiver', not {', '.join(sorted(unknown))}")
        bad = [k for k, v in self.alerts_per_10k.items() if not 0 < v <= 10_000]
        if bad:
            raise ValueError(f"alerts_per_10k must be in (0, 10000]: {', '.join(bad)}")
        negative = [k for k, v in self.weights.items() if v < 0]
        if negative and not self.learned:
            raise ValueError(f"weights must be non-negative (evidence never lowers a score): {', '.join(negative)}")
        return self


class ReportConfig(_Strict):
    top_alerts: int = Field(ge=0)


class NetworkConfig(_Strict):
    """Community detection on the reduced suspicious subgraph (docs/network.md)."""

    seed_score: float = Field(ge=0, le=1)          # accounts scored at least this seed the subgraph
    tie_min_transactions: int = Field(ge=1)        # a counterparty joins with this many payments with a seed…
    tie_min_usd: float = Field(ge=0)               # …or this many USD
    max_nodes: int = Field(ge=2)                   # bound on the subgraph fetched to Python
    max_edges: int = Field(ge=1)
    phone_digits: int = Field(ge=4)
    phone_link_weight: float = Field(ge=0)         # edge weight between receivers sharing a phone
    name_link_weight: float = Field(ge=0)          # edge weight between receivers sharing a name
    resolution: float = Field(gt=0)                # Leiden resolution (RB configuration model)
    random_seed: int
    min_receivers: int = Field(ge=1)
    min_senders: int = Field(ge=1)
    score_top_k: int = Field(ge=1)
    alert_threshold: float = Field(ge=0, le=1)
    risk_high: float = Field(ge=0, le=1)
    risk_medium: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> "NetworkConfig":
        if not self.risk_medium <= self.risk_high:
            raise ValueError("risk_medium must not exceed risk_high")
        return self


class EntitiesConfig(_Strict):
    """[entities]: entity resolution and households (docs/entities.md)."""

    match_threshold: float = Field(gt=0, lt=1)
    predict_threshold: float = Field(gt=0, lt=1)
    name_jaro_winkler: list[float] = Field(min_length=1)
    prior_recall: float = Field(gt=0, le=1)
    u_max_pairs: int = Field(ge=1000)
    u_min_count_per_level: int = Field(default=0, ge=0)
    u_exact_for_exact_matches: bool = True
    seed: int = 42
    default_phone_region: str = Field(min_length=2, max_length=2)
    phone_strict_regions: list[str] = Field(default_factory=list)
    deterministic_phone_links: bool = True
    deterministic_before_threshold: bool = False
    max_accounts_per_phone: int = Field(ge=2)
    max_name_block: int = Field(default=0, ge=0)
    region_aliases: dict[str, str] = Field(default_factory=dict)
    household_shared_phone: bool = True
    household_surname_region_min_shared: int = Field(ge=0)
    household_pattern_min_shared: int = Field(ge=0)
    household_pattern_min_shared_any_region: int = Field(ge=0)
    household_any_region_min_jaccard: float = Field(ge=0, le=1)
    household_max_counterparty_degree: int = Field(ge=2)
    household_surname_any_region_min_shared: int = Field(default=0, ge=0)
    household_surname_any_region_min_overlap: float = Field(default=0.75, ge=0, le=1)
    household_match_any_record: bool = False
    household_identical_payers_min_shared: int = Field(default=0, ge=0)
    household_union_min_shared: int = Field(default=0, ge=0)
    household_union_min_overlap: float = Field(default=1.0, ge=0, le=1)
    household_union_surname_any_region: bool = False
    alert_score: str = Field(pattern="^(noisy_or|max)$")
    alert_min_aggregate_score: float = Field(default=0.0, ge=0, le=1)
    household_alert_min_aggregate_score: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> "EntitiesConfig":
        if self.predict_threshold > self.match_threshold:
            raise ValueError("predict_threshold must not exceed match_threshold")
        if any(not 0 < v < 1 for v in self.name_jaro_winkler) or self.name_jaro_winkler != sorted(self.name_jaro_winkler, reverse=True):
            raise ValueError("name_jaro_winkler must be decreasing values between 0 and 1")
        return self


class ServiceConfig(_Strict):
    """[service]: the real-time scorer (docs/service.md)."""

    hold_threshold: float = Field(ge=0, le=1)      # hold the payout when the deciding score reaches this
    hold_side: str = Field(pattern="^(receiver|sender|either)$")  # whose score decides the hold
    snapshot_every: int = Field(ge=0)              # transfers applied between snapshots (0: only at shutdown)
    network_refresh_seconds: float = Field(ge=0)   # period of the batch refresh of network evidence (0: manual)
    max_lateness_seconds: int = Field(ge=0)        # a transfer this much older than its account's latest is applied exactly
    max_batch: int = Field(ge=1)                   # transfers per submitted batch at most
    sqlite_synchronous: str = Field(pattern="^(NORMAL|FULL)$")  # SQLite durability (see docs/service.md, "State")
    sqlite_page_size: Literal[512, 1024, 2048, 4096, 8192, 16384, 32768, 65536] = 4096   # of a new SQLite store
    sqlite_wal_restart_mib: float = Field(default=1024.0, gt=0)  # the WAL is rewound once it holds this much
    snapshot_min_seconds: float = Field(default=60.0, ge=0)  # … and at least this many seconds between snapshots
    snapshot_mode: Literal["slices", "fork"] = "slices"   # periodic snapshots: encoded in slices, or by a forked child
    snapshot_slice_seconds: float = Field(default=0.004, gt=0)   # "slices": encoding time after each submit …
    snapshot_slice_share: float = Field(default=0.2, gt=0, le=1)  # … and at most this share of the time since the last slice
    snapshot_cpu_share: float = Field(default=0.1, gt=0, le=1)   # "slices": encoding CPU at most this share of the time
    snapshot_nice: int = Field(default=10, ge=0, le=19)   # "fork": nice increment of the snapshot process
    network_refresh_nice: int = Field(default=10, ge=0, le=19)  # … and of the network-refresh process
    state_horizon_days: float = Field(default=400.0, ge=0)   # per-account state kept over this many days (0: all)
    state_compact_slack: float = Field(default=2.0, gt=0)    # rebuilt over the horizon once it spans (1 + this) horizons
    state_compact_share: float = Field(default=0.25, gt=0)   # compaction time per submit, as a share of the submit's
    state_compact_jitter: float = Field(default=0.5, ge=0)   # … each account's own extra span, up to this many horizons
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)   # HTTP request body limit (413)
    iso20022_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # pacs.008 document limit (400)
    auth_cache_seconds: float = Field(default=60.0, ge=0)     # verified API keys cached this long
    catch_up_seconds: float = Field(default=0.5, ge=0)        # shared stores: other workers' transfers applied this often
    group_commit: bool = True                                 # concurrent requests scored as one batch
    max_group_transfers: int = Field(default=5000, ge=1)      # … of at most this many transfers
    gc_freeze_seconds: float = Field(default=1.0, ge=0)       # gc.freeze() period (0: off)
    gc_thresholds: tuple[int, int, int] = (10_000, 50, 1_000)  # gc.set_threshold with the freezing
    nats_batch: int = Field(default=256, ge=1)                # NATS messages per fetch
    nats_ack_wait_seconds: float = Field(default=30.0, gt=0)  # NATS redelivery after this without an ack
    warm_up_transfers: int = Field(default=400, ge=0)         # scored on a scratch scorer before /readyz is 200
    warm_up_log_transfers: int = Field(default=100_000, ge=0)  # … and the log's latest read into the name caches


class MediaConfig(_Strict):
    """[media]: known-material matching with PDQ / vPDQ hashes (docs/media.md)."""

    match_distance: int = Field(ge=0, le=128)          # PDQ Hamming distance (of 256 bits) that matches
    min_quality: int = Field(ge=0, le=100)             # lower PDQ qualities are flagged, never matched
    video_fps: float = Field(gt=0, le=120)             # frames hashed per second for banked videos
    video_query_fps: float = Field(gt=0, le=120)       # ... for video queries and `watch`
    video_min_query_pct: float = Field(ge=0, le=100)   # a video matches at this share of query frames ...
    video_min_compared_pct: float = Field(ge=0, le=100)  # ... or this share of the banked video's frames
    video_min_matched_frames: int = Field(ge=1)        # ... with at least this many matched query frames
    dihedral: bool                                     # query variants: 8 rotations/flips
    unletterbox: bool                                  # query (and bank) variants without uniform bars
    crops: list[float]                                 # query centre crops (share kept)
    uncrops: list[float]                               # query edge-padded back to an assumed original size
    rotations: list[float]                             # query turned back by these degrees
    upscales: list[float] = Field(default_factory=lambda: [2.0])  # query enlarged by these factors (undo a reduction)
    variant_max_side: int = Field(ge=64)               # variants hashed at this longest side at most
    unletterbox_tolerance: int = Field(ge=0, le=255)
    unletterbox_min_fraction: float = Field(ge=0, lt=0.5)
    bank_variants: bool                                # `lists add` also banks crops / regions of the image
    bank_crops: list[float]                            # banked centre crops (share kept)
    region_strip: float = Field(ge=0, lt=1)            # region strips keep this share from each side (0: none)
    region_grids: list[int]                            # n×n tile grids hashed as regions
    region_min_matches: int = Field(ge=1)              # regions that must match for a region match
    region_distance: int = Field(ge=0, le=128)         # PDQ distance for a region to match
    lowpass_sigma: float = Field(default=0.015, ge=0, le=0.2)  # paired low-pass variant: blur σ as a share of the side (0: off)
    partial_match: bool = False                        # partial (reliable-bit) query variants (opt-in: docs/media.md)
    partial_uncrops: list[float] = Field(default_factory=lambda: [0.95, 0.9])  # ... hypothesis: the query is this share of its original
    partial_rotations: list[float] = Field(default_factory=lambda: [-5.0, -2.0, 2.0, 5.0])  # ... hypothesis: turned by this many degrees (empty corners unknown)
    partial_corner_share: float = Field(default=0.10, ge=0, le=0.25)  # ... hypothesis: a corner box of this share of the area (0: none)
    partial_fills: list[Literal["near", "far", "mean"]] = Field(default_factory=lambda: ["near", "far", "mean"], min_length=2)  # fills of an unknown corner/box
    partial_uncrop_fills: list[Literal["edge", "reflect", "near", "far", "mean"]] = Field(
        default_factory=lambda: ["edge", "reflect", "near", "mean"], min_length=2)  # fills of an uncrop's unknown border
    partial_min_bits: int = Field(default=192, ge=16, le=256)  # a partial variant is used only with at least this many reliable bits (docs/media.md margin study)
    partial_ratio_scale: float = Field(default=1.0, gt=0, le=2)  # threshold on n bits = floor(match_distance × scale × n / 256)
    partial_max_bank: int = Field(default=10_000_000, ge=0)   # partial variants are scanned (exactly) only up to this many banked originals
    watch_window: int = Field(ge=1)                    # live mode: last sampled frames considered ...
    watch_min_matches: int = Field(ge=1)               # ... of which this many must match one entry
    index_layout: Literal["auto", "16x16", "12x21"] = "auto"  # multi-index hashing chunk layout
    index_auto_switch: int = Field(default=3_000_000, ge=1)   # "auto": 16x16 below this many hashes, 12x21 from there
    index_delta_limit: int = Field(default=65536, ge=1)       # added hashes kept in a delta before the index is rebuilt

    @model_validator(mode="after")
    def _check(self) -> "MediaConfig":
        shares = [*self.crops, *self.uncrops, *self.bank_crops, *self.partial_uncrops]
        if any(not 0.5 <= k < 1 for k in shares):
            raise ValueError("crops, uncrops and bank_crops are shares kept, between 0.5 and 1")
        if any(not 1 < f <= 4 for f in self.upscales):
            raise ValueError("upscales are enlargement factors above 1 and at most 4")
        if any(not 2 <= n <= 8 for n in self.region_grids):
            raise ValueError("region_grids are tile grid sizes between 2 and 8")
        if self.region_strip and not 0.5 <= self.region_strip < 1:
            raise ValueError("region_strip is 0 (none) or a share between 0.5 and 1")
        if self.watch_min_matches > self.watch_window:
            raise ValueError("watch_min_matches must not exceed watch_window")
        return self


class KalasagConfig(_Strict):
    target_countries: list[str]
    ingest: IngestConfig
    indicators: dict[str, dict[str, Any]]
    scoring: ScoringConfig
    report: ReportConfig
    entities: EntitiesConfig
    network: NetworkConfig
    service: ServiceConfig
    media: MediaConfig

    def indicator_params(self, indicator_id: str) -> dict[str, Any]:
        try:
            return self.indicators[indicator_id]
        except KeyError as exc:
            raise ConfigError(f"config has no [indicators.{indicator_id}] section") from exc

    def digest(self) -> str:
        """SHA-256 of the effective configuration (recorded in run.json)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> KalasagConfig:
    data = _read_toml(DEFAULT_CONFIG_PATH)
    if path is not None:
        data = _merge(data, _read_toml(Path(path)))
    if overrides:
        data = _merge(data, overrides)
    try:
        return KalasagConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        src = path or DEFAULT_CONFIG_PATH
        raise ConfigError(f"{src}: invalid config at '{where}': {first['msg']}") from exc
