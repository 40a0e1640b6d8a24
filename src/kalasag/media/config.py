"""Media configuration: the `[media]` section of the main config (src/kalasag/model/default_config.toml),
validated by `kalasag.model.config.MediaConfig`; `--config FILE` overrides any of its keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kalasag.media.errors import MediaError
from kalasag.model import ConfigError, load_config
from kalasag.model.config import MediaConfig

__all__ = ["MediaConfig", "load_media_config"]


def load_media_config(path: str | Path | None = None, **overrides: Any) -> MediaConfig:
    """Defaults, then the config file `path` (if given; any of its sections), then keyword overrides
    (None values ignored, so CLI options left unset keep the configured value)."""
    media = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_config(path, {"media": media} if media else None).media
    except ConfigError as exc:
        raise MediaError(" ".join(str(exc).split())) from None
