"""Entity resolution: which account records belong to one person (Splink), which persons form a
household or operation, and entity-level alerts. See docs/entities.md."""

from kalasag.entities.alerts import (
    ENTITY_ALERT_COLUMNS,
    HOUSEHOLD_ALERT_COLUMNS,
    EntityAlertError,
    entity_alerts,
    household_alerts,
)
from kalasag.entities.linkage import LinkageError
from kalasag.entities.phones import PhoneResult, classify_phone, normalize_phone
from kalasag.entities.records import RECORD_COLUMNS, account_records
from kalasag.entities.resolve import ENTITY_COLUMNS, HOUSEHOLD_COLUMNS, EntityResult, describe_link, resolve

__all__ = [
    "ENTITY_ALERT_COLUMNS", "ENTITY_COLUMNS", "HOUSEHOLD_ALERT_COLUMNS", "HOUSEHOLD_COLUMNS", "RECORD_COLUMNS",
    "EntityAlertError", "EntityResult", "LinkageError", "PhoneResult", "account_records", "classify_phone",
    "describe_link", "entity_alerts", "household_alerts", "normalize_phone", "resolve",
]
