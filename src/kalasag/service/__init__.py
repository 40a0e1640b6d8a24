"""The real-time room: score each transfer as it arrives (docs/service.md).

    from kalasag.service import StreamScorer, open_store, create_app
    store = open_store("sqlite", state_dir="state")          # or postgresql://…, redis://…
    scorer = StreamScorer(config, store)
    app = create_app(scorer, store, config)                  # FastAPI; `kalasag serve` runs it on uvicorn

Parts: `store` (the durable Store interface: an append-only transfer log, snapshots, API keys) with
SQLiteStore / PostgresStore / RedisStore; `scorer` (StreamScorer: incremental per-account state);
`app` (HTTP API), `auth` (API keys with scopes), `metrics` (Prometheus), `nats_consumer` (JetStream),
`iso20022` (pacs.008 → canonical records).

Names are imported lazily so that `import kalasag.service.store` does not pull in FastAPI.
"""

from __future__ import annotations

import importlib
from typing import Any

from kalasag.service.store import ApiKeyRecord, Store

_LAZY: dict[str, str] = {
    "StreamScorer": "kalasag.service.scorer",
    "TransferRejected": "kalasag.service.scorer",
    "TransferResult": "kalasag.service.scorer",
    "SideResult": "kalasag.service.scorer",
    "SQLiteStore": "kalasag.service.sqlite_store",
    "PostgresStore": "kalasag.service.pg_store",
    "RedisStore": "kalasag.service.redis_store",
    "open_store": "kalasag.service.stores",
    "StoreError": "kalasag.service.stores",
    "create_app": "kalasag.service.app",
    "ApiKeys": "kalasag.service.auth",
    "create_api_key": "kalasag.service.auth",
    "SCOPES": "kalasag.service.auth",
    "NatsConsumer": "kalasag.service.nats_consumer",
    "parse_pacs008": "kalasag.service.iso20022",
    "Iso20022Error": "kalasag.service.iso20022",
}

__all__ = ["ApiKeyRecord", "Store", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kalasag.service' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
