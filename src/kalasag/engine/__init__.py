"""The engine room: the Ibis backend (DuckDB by default, PySpark), file reading and writing.

Only this room imports duckdb or pyspark.
"""

from kalasag.engine.backend import ENGINES, Engine, EngineError, connect

__all__ = ["ENGINES", "Engine", "EngineError", "connect"]
