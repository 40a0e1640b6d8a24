"""Open a Store from a command-line spec: ``sqlite`` (default, in --state DIR), ``sqlite:///DIR`` or
``sqlite:///FILE.sqlite3``, ``postgresql://…`` or ``redis://…``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kalasag.service.store import Store

DEFAULT_STATE_DIR = Path("kalasag-state")


class StoreError(RuntimeError):
    """The store is misconfigured or unreachable (one-line message). The API answers 503."""


def open_store(spec: str | None = None, state_dir: str | Path | None = None, *, service: Any = None) -> Store:
    """`service`: the config's [service] section (ServiceConfig): the embedded store takes its
    sqlite_synchronous, sqlite_page_size and sqlite_wal_restart_mib (SQLiteStore's defaults without it)."""
    spec = (spec or "sqlite").strip()
    low = spec.lower()
    if low == "sqlite" or low.startswith("sqlite:"):
        from kalasag.service.sqlite_store import SQLiteStore

        if low.startswith("sqlite:///"):
            if state_dir is not None:
                raise StoreError("give either --state DIR or --store sqlite:///PATH, not both")
            target = Path(spec[len("sqlite:///"):])
        elif low != "sqlite":
            raise StoreError(f"--store: '{spec}' is not sqlite, sqlite:///DIR or sqlite:///FILE.sqlite3")
        else:
            target = Path(state_dir) if state_dir is not None else DEFAULT_STATE_DIR
        try:
            if service is None:
                return SQLiteStore(target)
            return SQLiteStore(target, synchronous=service.sqlite_synchronous, page_size=service.sqlite_page_size,
                               wal_restart_bytes=int(service.sqlite_wal_restart_mib * (1 << 20)))
        except Exception as exc:  # SQLiteStoreError, OSError (mkdir): one line for the CLI
            raise StoreError(str(exc)) from exc
    if state_dir is not None:
        raise StoreError("--state DIR is for the embedded SQLite store; a --store URL keeps the state on its server")
    if low.startswith(("postgresql://", "postgres://")):
        from kalasag.service.pg_store import PostgresStore

        return PostgresStore(spec)
    if low.startswith(("redis://", "rediss://", "unix://")):
        from kalasag.service.redis_store import RedisStore

        return RedisStore(spec)
    raise StoreError(f"--store: '{spec}' is not one of sqlite, postgresql://…, redis://…")


def open_spec(spec: tuple) -> Store:
    """Open a store from its `reopen_spec()` (in another process)."""
    kind, arg = spec[0], spec[1]
    if kind == "sqlite":
        from kalasag.service.sqlite_store import SQLiteStore

        return SQLiteStore(arg, synchronous=spec[2], checkpoint_seconds=0)
    return open_store(arg)
