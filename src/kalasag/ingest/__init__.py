"""The ingest room: read provider exports, map them to the canonical schema, validate, convert to USD.

    from kalasag.ingest import ingest, load_mapping, load_fx, InputError
    result = ingest(engine, "export.csv.gz", config=cfg, mapping="map.toml", fx="rates.csv")

    from kalasag.ingest import validate_record, RecordRejected   # one transfer (the real-time service)
    record = validate_record({"txn_id": "T1", ...}, cfg, now=datetime.now(UTC))

See docs/schema.md for the canonical columns, the quarantine reasons and the mapping format.
"""

from kalasag.ingest.core import IngestResult, ingest, resolve_columns
from kalasag.ingest.errors import InputError
from kalasag.ingest.fx import FxTable, load_fx
from kalasag.ingest.mapping import Mapping, load_mapping
from kalasag.ingest.record import RecordRejected, validate_record
from kalasag.ingest.reference import country_codes, currency_codes
from kalasag.ingest.validate import CHECK_ORDER

__all__ = [
    "CHECK_ORDER",
    "FxTable",
    "IngestResult",
    "InputError",
    "Mapping",
    "RecordRejected",
    "country_codes",
    "currency_codes",
    "ingest",
    "load_fx",
    "load_mapping",
    "resolve_columns",
    "validate_record",
]
