"""Decode a request body or a bus message into raw transfer records (before validation).

Accepted: one transfer object, ``{"transfers": [...]}``, a JSON array of transfer objects, or (bus
messages only, detected by a leading ``<``) an ISO 20022 pacs.008 document.
"""

from __future__ import annotations

from typing import Any

import orjson


class PayloadError(ValueError):
    def __init__(self, code: str, message: str, *, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.index, self.field = code, message, index, field


def decode_json_transfers(body: bytes) -> list[dict[str, Any]]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError("invalid_json", f"body is not valid JSON: {exc}") from None
    if isinstance(data, dict) and "transfers" in data:
        extra = sorted(set(data) - {"transfers"})
        if extra:
            raise PayloadError("invalid_body", f"a batch object holds only 'transfers'; unexpected: {', '.join(extra)}")
        records = data["transfers"]
        if not isinstance(records, list):
            raise PayloadError("invalid_body", "'transfers' must be an array of transfer objects", field="transfers")
    elif isinstance(data, dict):
        records = [data]
    elif isinstance(data, list):
        records = data
    else:
        raise PayloadError("invalid_body", "body must be a transfer object, {\"transfers\": [...]} or an array")
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise PayloadError("invalid_transfer", f"transfers[{i}] is a {type(r).__name__}, not an object", index=i)
    return records


def decode_message(data: bytes) -> list[dict[str, Any]]:
    """A bus message: JSON as above, or a pacs.008 XML document."""
    if data.lstrip()[:1] == b"<":
        from kalasag.service.iso20022 import Iso20022Error, parse_pacs008

        try:
            return parse_pacs008(data)
        except Iso20022Error as exc:
            raise PayloadError("invalid_iso20022", str(exc)) from None
    return decode_json_transfers(data)
