"""Provider mapping files (`--mapping map.toml`): column names, value maps, timestamp offset, CSV dialect.

    # map.toml for a provider export
    [columns]                       # provider column = canonical column
    "Transaction Ref" = "txn_id"
    "Date/Time" = "timestamp"

    [values.channel]                # per canonical column: provider value = canonical value
    "Western Union" = "mto"         # matched after trimming, ignoring case

    [timestamps]
    utc_offset = "+08:00"           # for timestamps that carry no offset (otherwise quarantined)

    [csv]
    delimiter = ";"                 # default: detected from the header line
    encoding = "latin-1"            # default: utf-8

See docs/schema.md.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kalasag.ingest.errors import InputError
from kalasag.model.schema import COLUMN_NAMES

_OFFSET = re.compile(r"^(?:Z|[+-](\d{2}):?(\d{2}))$")
# value maps make sense for the text columns only (amount and timestamp are parsed, not mapped)
VALUE_MAP_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMN_NAMES if c not in ("timestamp", "amount"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimestampOptions(_Strict):
    utc_offset: str | None = Field(
        default=None, description="offset applied to timestamps without one, e.g. '+08:00' or 'Z'"
    )

    @field_validator("utc_offset")
    @classmethod
    def _offset(cls, value: str | None) -> str | None:
        if value is None:
            return None
        m = _OFFSET.match(value.strip())
        if not m:
            raise ValueError(f"'{value}' is not a UTC offset like +08:00, -05:00 or Z")
        if m.group(1) is not None and (int(m.group(1)) * 60 + int(m.group(2)) > 14 * 60 or int(m.group(2)) > 59):
            raise ValueError(f"'{value}' is outside -14:00..+14:00")
        return value.strip()


class CsvOptions(_Strict):
    delimiter: str | None = Field(default=None, description="one character; detected when omitted")
    encoding: Literal["utf-8", "latin-1", "utf-16"] = "utf-8"

    @field_validator("delimiter")
    @classmethod
    def _delim(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in '"\r\n'):
            raise ValueError(f"delimiter must be one character other than a quote or newline, not {value!r}")
        return value


class Mapping(_Strict):
    """A validated mapping file. `columns` maps provider column names to canonical names."""

    columns: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    timestamps: TimestampOptions = Field(default_factory=TimestampOptions)
    csv: CsvOptions = Field(default_factory=CsvOptions)
    source: str = Field(default="", exclude=True)

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for provider, canonical in value.items():
            if canonical not in COLUMN_NAMES:
                raise ValueError(f"'{provider}' maps to '{canonical}', which is not a canonical column")
            if canonical in seen:
                raise ValueError(f"'{seen[canonical]}' and '{provider}' both map to '{canonical}'")
            seen[canonical] = provider
        return value

    @field_validator("values")
    @classmethod
    def _values(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for column, table in value.items():
            if column not in VALUE_MAP_COLUMNS:
                raise ValueError(
                    f"[values.{column}]: value maps apply to {', '.join(VALUE_MAP_COLUMNS)}, not '{column}'"
                )
            lowered: dict[str, str] = {}
            for key in table:
                k = key.strip().lower()
                if k in lowered:
                    raise ValueError(f"[values.{column}]: '{lowered[k]}' and '{key}' differ only in case/spaces")
                lowered[k] = key
        return value

    def value_map(self, column: str) -> dict[str, str]:
        """Lower-cased, trimmed provider value -> canonical value."""
        return {k.strip().lower(): v.strip() for k, v in self.values.get(column, {}).items()}


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping TOML file; raises InputError (one line) when it is unusable."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: mapping file not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: mapping file is a directory") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: mapping file is not valid TOML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: mapping file is not UTF-8 text") from exc
    if not data:
        raise InputError(f"{path}: mapping file is empty")
    try:
        return Mapping.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unknown key (allowed: [columns], [values.<column>], [timestamps], [csv])"
        raise InputError(f"{path}: invalid mapping at '{where}': {msg}") from exc
