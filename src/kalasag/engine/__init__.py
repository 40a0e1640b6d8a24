"""The engine room: the Ibis backend (DuckDB by default, PySpark), file reading and writing.

Only this room imports duckdb or pyspark.
"""

from kalasag.engine.backend import ENGINES, Engine, EngineError, connect, error_chain, resource_error

__all__ = ["ENGINES", "Engine", "EngineError", "connect", "error_chain", "resource_error"]

from kalasag.engine.io import (  # noqa: E402
    DATA_ERRORS,
    ROW_COLUMN,
    RawInput,
    ReadError,
    detect_format,
    first_line,
    read_input,
    release,
)

__all__ += ["DATA_ERRORS", "ROW_COLUMN", "RawInput", "ReadError", "detect_format", "first_line", "read_input", "release"]
