"""The canonical schemas and the configuration models. Imports nothing else of kalasag."""

from kalasag.model.config import ConfigError, KalasagConfig, load_config
from kalasag.model.schema import (
    ALERT_COLUMNS,
    CHANNELS,
    COLUMN_NAMES,
    DERIVED_COLUMNS,
    LABEL_COLUMNS,
    OPTIONAL_COLUMNS,
    POSITIVE_ROLES,
    QUARANTINE_REASONS,
    REQUIRED_COLUMNS,
    SIDES,
    TRANSFER_COLUMNS,
    Column,
)

__all__ = [
    "ALERT_COLUMNS", "CHANNELS", "COLUMN_NAMES", "DERIVED_COLUMNS", "LABEL_COLUMNS",
    "OPTIONAL_COLUMNS", "POSITIVE_ROLES", "QUARANTINE_REASONS", "REQUIRED_COLUMNS", "SIDES",
    "TRANSFER_COLUMNS", "Column", "ConfigError", "KalasagConfig", "load_config",
]
