"""Shared by tests/test_service_*.py: the real servers (skipped with a reason when unreachable),
unique per-run store prefixes with cleanup, and valid synthetic transfers."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_URLS = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/15"
NATS_URL = "nats://127.0.0.1:4222"


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def pg_url() -> str:
    if not reachable("127.0.0.1", 5432):
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    import psycopg

    for url in PG_URLS:
        try:
            psycopg.connect(url, connect_timeout=3).close()
            return url
        except psycopg.OperationalError:
            continue
    pytest.skip(f"PostgreSQL at 127.0.0.1:5432 accepts none of {', '.join(PG_URLS)}")


def redis_url() -> str:
    if not reachable("127.0.0.1", 6379):
        pytest.skip("Redis not reachable at 127.0.0.1:6379")
    return REDIS_URL


def nats_url() -> str:
    if not reachable("127.0.0.1", 4222):
        pytest.skip("NATS not reachable at 127.0.0.1:4222")
    return NATS_URL


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@contextmanager
def open_test_store(kind: str, tmp_path: Path, name: str | None = None) -> Iterator:
    """A fresh store of one kind; PostgreSQL tables / Redis keys of a unique prefix, dropped after.

    `name` lets two instances share one store (same name → same prefix / directory)."""
    name = name or unique("t")
    if kind == "sqlite":
        from kalasag.service.sqlite_store import SQLiteStore

        store = SQLiteStore(tmp_path / f"state-{name}")
        try:
            yield store
        finally:
            store.close()
    elif kind == "postgres":
        from kalasag.service.pg_store import PostgresStore

        store = PostgresStore(f"{pg_url()}?table_prefix=ksgtest_{name}_")
        try:
            yield store
        finally:
            store.drop()
            store.close()
    elif kind == "redis":
        from kalasag.service.redis_store import RedisStore

        store = RedisStore(f"{redis_url()}?prefix=ksgtest-{name}")
        try:
            yield store
        finally:
            store.drop()
            store.close()
    else:  # pragma: no cover
        raise ValueError(kind)


def transfer(i: int, sender: str = "S1", receiver: str = "R1", amount: str = "25.00", *,
             day: int = 1, hour: int = 14, currency: str = "USD", txn: str | None = None, **extra: str) -> dict:
    """A valid canonical transfer into the Philippines (timestamps in 2025, well in the past)."""
    rec = {
        "txn_id": txn or f"T{i:06d}",
        "timestamp": f"2025-03-{day:02d}T{hour:02d}:{i % 60:02d}:00Z",
        "amount": amount,
        "currency": currency,
        "channel": "mto",
        "sender_id": sender,
        "receiver_id": receiver,
        "sender_country": "US",
        "receiver_country": "PH",
    }
    rec.update(extra)
    return rec
