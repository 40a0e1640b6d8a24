"""The canonical transfer schema, declared once and shared by every room.

The data model is data (as in followthemoney): each column is a `Column` record, and the docs,
the validator and the simulator all read this list instead of repeating it.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS: tuple[str, ...] = ("bank", "mto", "ewallet", "card", "crypto", "other")
SIDES: tuple[str, ...] = ("sender", "receiver")


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    meaning: str
    dtype: str = "string"  # type in the canonical (accepted) table


TRANSFER_COLUMNS: tuple[Column, ...] = (
    Column("txn_id", True, "unique id of the transfer"),
    Column("timestamp", True, "ISO 8601 with an offset or `Z`; normalized to UTC", "timestamp"),
    Column("amount", True, "positive decimal, in `currency`", "float64"),
    Column("currency", True, "ISO 4217 code"),
    Column("channel", False, "`bank`, `mto`, `ewallet`, `card`, `crypto`, `other`"),
    Column("sender_id", True, "sender account id as the provider knows it"),
    Column("receiver_id", True, "receiver account id as the provider knows it"),
    Column("sender_name", False, "sender name as typed (variants, case, initials occur)"),
    Column("receiver_name", False, "receiver name as typed"),
    Column("sender_country", True, "ISO 3166 alpha-2 country of the sender"),
    Column("receiver_country", True, "ISO 3166 alpha-2 country of the receiver"),
    Column("receiver_region", False, "province/region inside the receiving country"),
    Column("sender_phone", False, "sender phone number, any common format"),
    Column("receiver_phone", False, "receiver phone number, any common format"),
    Column("reference", False, "free-text purpose/narrative"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in TRANSFER_COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in TRANSFER_COLUMNS if c.required)
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(c.name for c in TRANSFER_COLUMNS if not c.required)

# Columns that ingest adds to every accepted row (the "canonical table" the detectors read).
DERIVED_COLUMNS: tuple[Column, ...] = (
    Column("amount_usd", True, "amount converted to USD with the monthly FX table", "float64"),
    Column("fx_rate", True, "USD per one unit of `currency` used for the conversion", "float64"),
    Column("ts_epoch", True, "`timestamp` as whole seconds since 1970-01-01 UTC", "int64"),
    Column("row_number", True, "1-based data row of the transfer in its input file", "int64"),
)

# Quarantine reason codes: every rejected row carries exactly one (the first that applies).
QUARANTINE_REASONS: dict[str, str] = {
    "malformed_row": "the line could not be parsed as a CSV record (wrong number of fields, bad quoting)",
    "missing_required_field": "a required field is empty",
    "unparseable_timestamp": "the timestamp is not ISO 8601 or has no UTC offset",
    "future_timestamp": "the timestamp lies in the future (beyond the configured tolerance)",
    "non_numeric_amount": "the amount is not a number",
    "non_positive_amount": "the amount is zero or negative",
    "unknown_currency": "the currency is not an ISO 4217 code",
    "invalid_country_code": "a country is not an ISO 3166 alpha-2 code",
    "invalid_channel": "the channel is not one of bank, mto, ewallet, card, crypto, other",
    "no_fx_rate": "no FX rate for the currency (not guessed)",
    "duplicate_txn_id": "the txn_id was already accepted from an earlier row",
}

# Output: one row per alerted account (alerts.csv / alerts.parquet).
ALERT_COLUMNS: tuple[Column, ...] = (
    Column("account_id", True, "the account as the provider knows it"),
    Column("side", True, "`sender` or `receiver`"),
    Column("score", True, "0–1; higher is more suspicious", "float64"),
    Column("risk_level", True, "`high`, `medium` or `low` (thresholds in config)"),
    Column("indicators", True, "ids of the indicators that fired, `;`-separated"),
    Column("explanation", True, "sentences with the numbers behind each fired indicator"),
    Column("n_transactions", True, "accepted transfers of the account on this side", "int64"),
    Column("total_usd", True, "their total in USD", "float64"),
    Column("first_seen", True, "earliest transfer (UTC)", "timestamp"),
    Column("last_seen", True, "latest transfer (UTC)", "timestamp"),
    Column("counterparties", True, "distinct counterparties on this side", "int64"),
)

LABEL_COLUMNS: tuple[Column, ...] = (
    Column("account_id", True, "account id as in the transfers"),
    Column("side", True, "`sender` or `receiver`"),
    Column("role", True, "ground-truth role, e.g. `osec_customer`, `osec_facilitator`, `ofw_family`"),
    Column("group", False, "operation/household id grouping accounts that belong together"),
)

# Roles the simulator plants that count as positives in evaluation.
POSITIVE_ROLES: frozenset[str] = frozenset({"osec_customer", "osec_facilitator"})
