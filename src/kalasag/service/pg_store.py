"""PostgreSQL store: several workers share one transfer log.

URL: ``postgresql://user@host:5432/db[?table_prefix=kalasag_]`` (any libpq parameter may follow).
Tables ``<prefix>log`` (BIGSERIAL seq, UNIQUE txn_id, sender_id and receiver_id — indexed, for
`read_account` —, JSONB record), ``<prefix>snapshot`` (one row) and ``<prefix>api_keys``. One
instance may be used from several threads (an internal lock serializes its calls), e.g. the
scorer's thread and the network refresh reading the log.

`append` runs in one transaction: ``INSERT … ON CONFLICT (txn_id) DO NOTHING RETURNING seq, txn_id``;
it takes a transaction-scoped advisory lock first, so that sequence numbers are committed in
increasing order. Without it, worker A could draw seq 10, worker B draw 11 and commit first, and a
third worker tailing with ``read_since(9)`` would see 11, move on, and never see 10. Commit with the
default ``synchronous_commit = on`` makes the transfers durable before `append` returns.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import psycopg

from kalasag.service.store import ApiKeyRecord, UrlStore
from kalasag.service.stores import StoreError

_PREFIX_RE = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
READ_BATCH = 5000


def _split_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = "kalasag_"
    rest = []
    for k, v in query:
        if k == "table_prefix":
            prefix = v
        else:
            rest.append((k, v))
    if not _PREFIX_RE.match(prefix):
        raise StoreError(f"table_prefix '{prefix}' must be lower-case letters, digits and _ (at most 41)")
    return urlunsplit(parts._replace(query=urlencode(rest))), prefix


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class PostgresStore(UrlStore):
    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        self._raw_url = url
        self.url = _redact(url)
        self._conninfo, self.prefix = _split_url(url)
        self._connect_timeout = connect_timeout
        self._lock_key = int.from_bytes(hashlib.sha256(f"kalasag-log:{self.prefix}".encode()).digest()[:8], "big", signed=True)
        self.log_table = f"{self.prefix}log"
        self.snapshot_table = f"{self.prefix}snapshot"
        self.keys_table = f"{self.prefix}api_keys"
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()
        self._ensure_schema()

    # -- connection -----------------------------------------------------------------------------
    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=int(self._connect_timeout))
            except psycopg.OperationalError as exc:
                raise StoreError(f"PostgreSQL not reachable at {self.url}: {' '.join(str(exc).split())}") from exc
        return self._conn

    def _run(self, fn: Any) -> Any:
        """Run fn(conn) under the instance lock; a lost connection becomes StoreError (the next call
        reconnects)."""
        with self._lock:
            conn = self._db()
            try:
                return fn(conn)
            except psycopg.OperationalError as exc:
                try:
                    conn.close()
                finally:
                    self._conn = None
                raise StoreError(f"PostgreSQL error at {self.url}: {' '.join(str(exc).split())}") from exc

    def _ensure_schema(self) -> None:
        def create(conn: psycopg.Connection) -> None:
            with conn.transaction():
                # Two workers starting together must not race on CREATE TABLE IF NOT EXISTS.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.log_table} ("
                    " seq BIGSERIAL PRIMARY KEY, txn_id TEXT NOT NULL UNIQUE, sender_id TEXT NOT NULL,"
                    " receiver_id TEXT NOT NULL, record JSONB NOT NULL, appended TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                conn.execute(f"CREATE INDEX IF NOT EXISTS {self.log_table}_sender ON {self.log_table} (sender_id, seq)")
                conn.execute(f"CREATE INDEX IF NOT EXISTS {self.log_table}_receiver ON {self.log_table} (receiver_id, seq)")
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.snapshot_table} ("
                    " id SMALLINT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, blob BYTEA NOT NULL,"
                    " saved TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.keys_table} ("
                    " key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, scopes TEXT[] NOT NULL,"
                    " created TEXT NOT NULL, revoked BOOLEAN NOT NULL DEFAULT false)"
                )

        self._run(create)

    # -- the log --------------------------------------------------------------------------------
    def append(self, transfers: Sequence[Mapping[str, Any]]) -> list[int | None]:
        if not transfers:
            return []
        first: dict[str, int] = {}
        ids: list[str] = []
        senders: list[str] = []
        receivers: list[str] = []
        blobs: list[str] = []
        for i, t in enumerate(transfers):
            txn = str(t["txn_id"])
            if txn in first:
                continue  # a repeat inside the batch: a redelivery of the first occurrence
            first[txn] = i
            ids.append(txn)
            senders.append(str(t["sender_id"]))
            receivers.append(str(t["receiver_id"]))
            blobs.append(orjson.dumps(dict(t)).decode())

        def insert(conn: psycopg.Connection) -> list[tuple[int, str]]:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                cur = conn.execute(
                    f"INSERT INTO {self.log_table} (txn_id, sender_id, receiver_id, record) "
                    "SELECT t, s, r, j::jsonb FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
                    "WITH ORDINALITY AS u(t, s, r, j, i) ORDER BY i "
                    "ON CONFLICT (txn_id) DO NOTHING RETURNING seq, txn_id",
                    (ids, senders, receivers, blobs),
                )
                return cur.fetchall()

        seq_of = {txn: seq for seq, txn in self._run(insert)}
        out: list[int | None] = [None] * len(transfers)
        for txn, i in first.items():
            out[i] = seq_of.get(txn)
        return out

    def read_since(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
        last = seq
        while True:
            rows = self._run(lambda conn: conn.execute(
                f"SELECT seq, record::text FROM {self.log_table} WHERE seq > %s ORDER BY seq LIMIT %s", (last, READ_BATCH)
            ).fetchall())
            for s, blob in rows:
                yield s, orjson.loads(blob)
            if len(rows) < READ_BATCH:
                return
            last = rows[-1][0]

    def read_account(self, side: str, account_id: str, upto: int | None = None,
                     since: int = 0, *, since_ts: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """One account's transfers on one side ("sender"/"receiver"), in log order (indexed): the
        scorer rebuilds an account from them when a transfer arrives late."""
        col = {"sender": "sender_id", "receiver": "receiver_id"}[side]
        lim = (1 << 62) if upto is None else int(upto)
        rows = self._run(lambda conn: conn.execute(
            f"SELECT seq, record::text FROM {self.log_table} WHERE {col} = %s AND seq <= %s AND seq >= %s"
            f"{' AND (record->>%s)::bigint >= %s' if since_ts else ''} ORDER BY seq",
            (account_id, lim, int(since), *(("ts_epoch", int(since_ts)) if since_ts else ()))
        ).fetchall())
        return [(s, orjson.loads(blob)) for s, blob in rows]

    def last_seq(self) -> int:
        return int(self._run(lambda conn: conn.execute(f"SELECT coalesce(max(seq), 0) FROM {self.log_table}").fetchone()[0]))

    # -- snapshots ------------------------------------------------------------------------------
    def save_snapshot(self, seq: int, blob: bytes) -> None:
        self._run(lambda conn: conn.execute(
            f"INSERT INTO {self.snapshot_table} (id, seq, blob) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, blob = EXCLUDED.blob, saved = now()",
            (seq, blob),
        ))

    def load_snapshot(self) -> tuple[int, bytes] | None:
        row = self._run(lambda conn: conn.execute(f"SELECT seq, blob FROM {self.snapshot_table} WHERE id = 1").fetchone())
        return None if row is None else (int(row[0]), bytes(row[1]))

    # -- API keys -------------------------------------------------------------------------------
    def put_api_key(self, record: ApiKeyRecord) -> None:
        self._run(lambda conn: conn.execute(
            f"INSERT INTO {self.keys_table} (key_id, key_hash, scopes, created, revoked) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (key_id) DO UPDATE SET key_hash = EXCLUDED.key_hash, scopes = EXCLUDED.scopes, "
            "created = EXCLUDED.created, revoked = EXCLUDED.revoked",
            (record.key_id, record.key_hash, list(record.scopes), record.created, record.revoked),
        ))

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._run(lambda conn: conn.execute(
            f"SELECT key_id, key_hash, scopes, created, revoked FROM {self.keys_table} WHERE key_id = %s", (key_id,)
        ).fetchone())
        if row is None:
            return None
        return ApiKeyRecord(row[0], row[1], tuple(row[2]), row[3], bool(row[4]))

    # -- housekeeping ---------------------------------------------------------------------------
    def drop(self) -> None:
        """Drop this prefix's tables (tests and teardown only)."""
        def drop(conn: psycopg.Connection) -> None:
            with conn.transaction():
                for t in (self.log_table, self.snapshot_table, self.keys_table):
                    conn.execute(f"DROP TABLE IF EXISTS {t}")

        self._run(drop)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
