"""Media configuration: every threshold in `media_config.toml`, validated by pydantic."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kalasag.media.errors import MediaError

DEFAULT_MEDIA_CONFIG = Path(__file__).with_name("media_config.toml")


class MediaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match_distance: int = Field(ge=0, le=128)
    min_quality: int = Field(ge=0, le=100)
    video_fps: float = Field(gt=0, le=120)
    video_query_fps: float = Field(gt=0, le=120)
    video_min_query_pct: float = Field(ge=0, le=100)
    video_min_compared_pct: float = Field(ge=0, le=100)
    video_min_matched_frames: int = Field(ge=1)
    dihedral: bool
    unletterbox: bool
    crops: list[float]
    uncrops: list[float]
    rotations: list[float]
    variant_max_side: int = Field(ge=64)
    unletterbox_tolerance: int = Field(ge=0, le=255)
    unletterbox_min_fraction: float = Field(ge=0, lt=0.5)
    watch_window: int = Field(ge=1)
    watch_min_matches: int = Field(ge=1)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise MediaError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise MediaError(f"{path}: not valid TOML ({exc})") from None


def load_media_config(path: str | Path | None = None, **overrides: Any) -> MediaConfig:
    """Defaults, then the `[media]` table of `path` (if given), then keyword overrides."""
    data = dict(_read(DEFAULT_MEDIA_CONFIG)["media"])
    if path is not None:
        data.update(_read(Path(path)).get("media", {}))
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return MediaConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MediaError(f"{path or DEFAULT_MEDIA_CONFIG}: invalid media config at '{where}': {first['msg']}") from None
