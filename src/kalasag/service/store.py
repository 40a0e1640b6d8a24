"""Durable state for the real-time service: an append-only transfer log plus snapshots and API keys.

The log is the source of truth (event sourcing): a transfer is acknowledged only after `append`
returned, i.e. after it is durable in the store. The in-memory incremental state is derived from the
log (snapshot + replay of the tail), so a restart — or a kill -9 — loses no acknowledged transfer.
Several workers can share one PostgreSQL or Redis store: each tails the shared log with `read_since`.

Implementations: SQLiteStore (embedded default, WAL mode), PostgresStore, RedisStore.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str          # public prefix of the key (shown in logs), never the secret
    key_hash: str        # hash of the full key (the key itself is never stored)
    scopes: tuple[str, ...]
    created: str         # ISO 8601 UTC
    revoked: bool = False


class Store(ABC):
    """One durable store. Every method is safe to call from one thread at a time per instance."""

    url: str

    @abstractmethod
    def append(self, transfers: Sequence[Mapping[str, Any]]) -> list[int | None]:
        """Atomically append the transfers whose txn_id the log has not seen; all-or-nothing.

        Returns, per input transfer, its log sequence number (int, increasing) when it was new, or
        None when its txn_id was already in the log (a redelivery: it must not be counted twice).
        When this returns, the new transfers are durable.
        """

    @abstractmethod
    def read_since(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Log entries with sequence number > seq, in order."""

    def read_account(self, side: str, account_id: str, upto: int | None = None,
                     since: int = 0, *, since_ts: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """One account's transfers on one side ("sender"/"receiver") with since ≤ seq ≤ upto, in
        log order, without those whose `ts_epoch` is before `since_ts` (0: all): the scorer
        rebuilds an account from them (a late transfer; the state horizon, which keeps only the
        last horizon). This default scans the log; the stores override it with an indexed read."""
        col = {"sender": "sender_id", "receiver": "receiver_id"}[side]
        out = []
        for s, r in self.read_since(max(0, int(since) - 1)):
            if upto is not None and s > upto:
                break
            if r.get(col) == account_id and (not since_ts or int(r["ts_epoch"]) >= since_ts):
                out.append((s, r))
        return out

    @abstractmethod
    def last_seq(self) -> int:
        """Highest sequence number in the log (0 when empty)."""

    @abstractmethod
    def save_snapshot(self, seq: int, blob: bytes) -> None:
        """Persist a snapshot of the derived state as of log position seq (replaces the previous one)."""

    @abstractmethod
    def load_snapshot(self) -> tuple[int, bytes] | None:
        """The latest snapshot (seq, blob), or None."""

    @abstractmethod
    def put_api_key(self, record: ApiKeyRecord) -> None: ...

    @abstractmethod
    def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    @abstractmethod
    def close(self) -> None: ...


class UrlStore(Store):
    """A store on a server, opened from its URL: another connection (another thread's or another
    process's) is the same URL opened again."""

    _raw_url: str

    def reopen_spec(self) -> tuple:
        """What another process needs to open this store (kalasag.service.stores.open_spec)."""
        return ("url", self._raw_url)

    def reopen(self) -> "UrlStore":
        """Another connection to the same store (for a background snapshot)."""
        return type(self)(self._raw_url)  # type: ignore[call-arg]


class MemoryStore(Store):
    """A store in memory, nothing durable: the scratch store of `StreamScorer.warm_up` (and of tests
    that need no durability). Not for serving."""

    url = "memory://"

    def __init__(self) -> None:
        self._log: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        self._snapshot: tuple[int, bytes] | None = None
        self._keys: dict[str, ApiKeyRecord] = {}

    def append(self, transfers: Sequence[Mapping[str, Any]]) -> list[int | None]:
        out: list[int | None] = []
        for t in transfers:
            tid = str(t["txn_id"])
            if tid in self._ids:
                out.append(None)
                continue
            self._ids.add(tid)
            self._log.append(dict(t))
            out.append(len(self._log))
        return out

    def read_since(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
        for i in range(int(seq), len(self._log)):
            yield i + 1, self._log[i]

    def last_seq(self) -> int:
        return len(self._log)

    def save_snapshot(self, seq: int, blob: bytes) -> None:
        self._snapshot = (int(seq), bytes(blob))

    def load_snapshot(self) -> tuple[int, bytes] | None:
        return self._snapshot

    def put_api_key(self, record: ApiKeyRecord) -> None:
        self._keys[record.key_id] = record

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._keys.get(key_id)

    def close(self) -> None:
        pass
