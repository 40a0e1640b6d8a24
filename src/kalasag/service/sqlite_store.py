"""The embedded store: one SQLite file in WAL mode (the default of `kalasag serve --state DIR`).

Tables: `log` (seq INTEGER PRIMARY KEY — the rowid, never reused since nothing is ever deleted —,
txn_id TEXT UNIQUE, sender_id, receiver_id, record: the canonical transfer as JSON); `snapshot` (one
row: seq and a reference to the snapshot file `<db file>.snapshot-<seq>` next to the database —
written, fsynced and renamed into place before the row is committed, so a large snapshot never holds
SQLite's write lock); `api_keys`.

The account index — one account's transfers read back (`read_account`: rebuilds after a late
transfer, the horizon's compaction) — is not on the log. Two indexes on it (sender, receiver; random
keys, one leaf page each per transfer) were 90 % of the WAL (10.5 KiB of WAL per transfer with
them, 1.0 KiB without, in a 1.2M-row log) and 75 % of an append's CPU, and the WAL's checkpoints,
fsyncs and rewinds that follow from that volume started most of the real-time service's slow
requests (docs/benchmarks.md, "Session 8"). Instead:
* a file of its own, `<db file>-accounts` (WAL; `acct (account, side, seq)` WITHOUT ROWID and
  `indexed_upto`), brought up to the log's end every `INDEX_SECONDS` (30 s) by the checkpoint
  thread with ONE `INSERT … SELECT` from the log (sorted, so each index page is written about once
  per round, and one C call: the GIL is not handed back and forth per row), committed with its
  `indexed_upto`; derived data: rebuilt from the log when missing or when it claims more than the
  log holds;
* the log's tail after `indexed_upto` in memory, per account (`_gens`: generations that a round
  drops whole once its commit covers them), filled by `append` and, for rows another process
  appended, read from the log by position (`_absorb`);
* `read_account` = the index file up to `indexed_upto` (joined to the log by seq) + the tail.
A crash loses only the in-memory tail, read again from the log (≤ 30 s of transfers) on first use.
Files of schema version 1 (the two indexes on the log) are migrated when opened: the index file is
built from the log, the two indexes dropped.

Checkpoints (copying the WAL back into the database file, which fsyncs) run every second in a
thread of their own (PASSIVE: they never block the writer), not inside a commit. Under a steady
stream of commits a PASSIVE checkpoint never finds the WAL fully copied at the moment a writer
starts, so SQLite never rewinds it: the WAL file (and its memory-mapped index, `-shm`, counted in
the process's memory) grew by ≈ 40 MB of WAL a second at 3,000 transfers/s. So once the WAL holds
`wal_restart_bytes` (1 GiB), the checkpoint thread follows its PASSIVE round with a RESTART
checkpoint: after up to four more PASSIVE rounds (each copies what the writer added during the
previous one) it waits for the writer's current transaction, copies the few frames left and
rewinds the WAL (cut back to `wal_restart_bytes` by `journal_size_limit`), holding the write lock
only for that — and holding this store's own lock, so the writer waits on it rather than in
SQLite's busy handler (whose sleeps overshoot) — after the thread has fsynced the database file
itself (a PASSIVE checkpoint that does not finish the WAL never syncs it, which left every page the
PASSIVE rounds wrote to the RESTART's fsync: 22–159 ms under the write lock, growing with the file;
now 11–31 ms, measured at 3,000 transfers/s). At 64 MiB rewinds came every 1.5 s and the p99
tripled; at 1 GiB they come every ≈ 22 s at 3,000 transfers/s with 4 KiB pages.

Page size (`page_size`, [service] sqlite_page_size, default SQLite's 4 KiB; an existing file keeps
its own). WAL frames are whole pages. Measured while the log still carried the two account indexes
(three random leaf pages per insert): 4 KiB pages wrote ≈ 16 KB of WAL per transfer, 1 KiB pages
≈ 5.8 KB (600,000 transfers in the log, batches of 25), but the deeper B-trees cost 40–70 µs more CPU
per transfer in the scorer (304–337 → 375–411 µs, in process), and CPU is what the service is short
of, so 4 KiB stays the default; without the account indexes the difference is smaller still.

Durability (docs/service.md, "State"): `append` inserts a whole batch in one transaction
(BEGIN IMMEDIATE … COMMIT, all-or-nothing). In WAL mode with `synchronous=NORMAL` the commit has
written the transaction to the WAL file through the operating system before `append` returns, so it
survives the process being killed (kill -9): only an operating-system crash or power loss can lose
the last transactions (the database stays consistent). `synchronous=FULL` also fsyncs the WAL at
every commit and survives power loss, at the price of one fsync per batch.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from kalasag.service import trace
from kalasag.service.store import ApiKeyRecord, Store

log = logging.getLogger("kalasag.service")

FILE_NAME = "kalasag.sqlite3"
SNAPSHOT_REF = b"KALASAG-SNAPSHOT-FILE\n"   # the snapshot row's blob: this, then the file name
SCHEMA_VERSION = "2"             # 1: the log carried the two account indexes (migrated on opening)
READ_BATCH = 5000
INDEX_SECONDS = 30.0             # the account index is brought up to date this often (module doc)
INDEX_AT_OPEN = 100_000          # … and when a store opens with more than this many log rows not in it
SIDE_CODE = {"sender": 0, "receiver": 1}

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, txn_id TEXT NOT NULL UNIQUE,"
    " sender_id TEXT NOT NULL, receiver_id TEXT NOT NULL, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,"
    " blob BLOB NOT NULL, saved TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, scopes TEXT NOT NULL,"
    " created TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


# the account index, in a file of its own next to the log (`<log file>-accounts`): derived data,
# rebuilt from the log when missing or when it claims more than the log holds
_ACCOUNTS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS acct (account TEXT NOT NULL, side INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY (account, side, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_INDEX_INSERT = (
    "INSERT OR IGNORE INTO acct (account, side, seq)"
    " SELECT sender_id, 0, seq FROM lg.log WHERE seq > ?1 AND seq <= ?2"
    " UNION ALL SELECT receiver_id, 1, seq FROM lg.log WHERE seq > ?1 AND seq <= ?2 ORDER BY 1, 2, 3"
)


class SQLiteStoreError(RuntimeError):
    """The SQLite file cannot be opened or has an unknown schema (one-line message)."""


def _set_wal(conn: sqlite3.Connection, wait: float = 30.0) -> None:
    """Switch to WAL. The switch takes an exclusive lock and SQLite may answer SQLITE_BUSY at once,
    without its busy handler, when another process opens the same new file at that moment: retry."""
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


PASSIVE_ROUNDS = 12            # at most this many catch-up PASSIVE rounds before a rewind (`checkpoint`)
RESTART_WAIT_MS = 100          # a rewind waits at most this long for other connections' readers (`checkpoint`)
WAL_RESTART_BYTES = 1 << 30    # the WAL is rewound (RESTART checkpoint) once it holds this much (module doc)
PAGE_SIZE = 4096               # of a new file (module doc); [service] sqlite_page_size, sqlite_wal_restart_mib


class SQLiteStore(Store):
    """`SQLiteStore(path)`: `path` is a directory (the file `kalasag.sqlite3` inside it is used) or a
    file name ending in .sqlite3/.sqlite/.db. Safe to share between threads (one internal lock)."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", checkpoint_seconds: float = 1.0,
                 wal_restart_bytes: int = WAL_RESTART_BYTES, page_size: int = PAGE_SIZE) -> None:
        self._init_args = (path, synchronous)
        self.wal_restart_bytes = int(wal_restart_bytes)
        self.restart_wait_ms = RESTART_WAIT_MS
        p = Path(path)
        if p.suffix.lower() in (".sqlite3", ".sqlite", ".db"):
            p.parent.mkdir(parents=True, exist_ok=True)
            db = p
        else:
            p.mkdir(parents=True, exist_ok=True)
            db = p / FILE_NAME
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise SQLiteStoreError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = db
        self.url = f"sqlite:///{db}"
        self.synchronous = synchronous.upper()
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=30.0)
            # only a new (empty) file takes it; an existing one keeps the page size it was made with
            self._conn.execute(f"PRAGMA page_size={int(page_size)}")
            _set_wal(self._conn)
            self.page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])   # fixed once the file exists
            self._conn.execute(f"PRAGMA synchronous={self.synchronous}")
            self._conn.execute("PRAGMA busy_timeout=30000")
            # a WAL rewound by a RESTART checkpoint is cut back to this size when it is reused
            self._conn.execute(f"PRAGMA journal_size_limit={int(wal_restart_bytes)}")
            if checkpoint_seconds > 0:
                # WAL checkpoints (copying the WAL into the database, with an fsync) run in a thread
                # of their own instead of inside whichever commit crosses the 1,000-page mark
                self._conn.execute("PRAGMA wal_autocheckpoint=0")
            for stmt in _SCHEMA:
                self._conn.execute(stmt)
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                self._conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            elif row[0] not in ("1", SCHEMA_VERSION):
                raise SQLiteStoreError(f"{db}: schema version {row[0]}, this Kalasag reads 1 and {SCHEMA_VERSION}")
            self.accounts_path = Path(str(db) + "-accounts")
            self._open_accounts(migrate=row is not None and row[0] == "1")
        except sqlite3.Error as exc:
            raise SQLiteStoreError(f"{db}: cannot open the SQLite store ({exc})") from exc
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if checkpoint_seconds > 0:
            # a long-lived store (the service's) keeps its tail from the start: filled lazily, the
            # first account read read the whole tail under the lock (measured: a 209 ms append)
            with self._lock:
                self._absorb()
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, args=(checkpoint_seconds,),
                                                  name="kalasag-sqlite-checkpoint", daemon=True)
            self._checkpointer.start()

    def _checkpoint_loop(self, every: float) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        index = self._index_connection()
        try:
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            next_index = time.monotonic() + self.index_seconds
            while not self._stop.wait(every):
                self.checkpoint(conn)
                if time.monotonic() >= next_index:
                    next_index = time.monotonic() + self.index_seconds
                    try:
                        self.flush_index(index)
                    except sqlite3.Error:  # pragma: no cover - busy: the next round catches up
                        log.warning("account index not brought up to date (busy); the next round retries")
        finally:
            conn.close()
            index.close()

    # -- the account index (module doc) ----------------------------------------------------------
    def _open_accounts(self, migrate: bool) -> None:
        self.index_seconds = INDEX_SECONDS
        # the index file is read through a connection of its own (the log attached for the join):
        # attached to the writer's connection, every BEGIN IMMEDIATE of an append would also take
        # the index file's write lock and wait for a round's INSERT (measured: 400 ms every 30 s)
        self._acc = self._index_connection()
        _set_wal(self._acc)
        for stmt in _ACCOUNTS_SCHEMA:
            self._acc.execute(stmt)
        row = self._acc.execute("SELECT value FROM meta WHERE key = 'indexed_upto'").fetchone()
        indexed = int(row[0]) if row else 0
        last = self.last_seq()
        if indexed > last:   # not this log's index (a log replaced under it): rebuilt
            log.warning("%s indexes up to %d but the log ends at %d: rebuilt", self.accounts_path, indexed, last)
            self._acc.execute("DELETE FROM acct")
            self._acc.execute("DELETE FROM meta")
            indexed = 0
        self._indexed_upto = indexed
        # the log's tail above `_indexed_upto`, in memory: generations [highest seq or None (open), {(side,
        # account): [seq, …]}], filled from the log on first use (`_absorb`)
        self._gens: list[list[Any]] = [[None, {}]]
        self._tail_upto: int | None = None
        if migrate or last - indexed > INDEX_AT_OPEN:
            conn = self._index_connection()
            try:
                self.flush_index(conn)
            finally:
                conn.close()
        if migrate:   # version 1: the account indexes on the log itself, now in the index file
            self._conn.execute("DROP INDEX IF EXISTS log_sender")
            self._conn.execute("DROP INDEX IF EXISTS log_receiver")
            self._conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))

    def _index_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.accounts_path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("ATTACH DATABASE ? AS lg", (str(self.path),))   # read only, for the INSERT … SELECT and joins
        return conn

    def _absorb(self) -> None:
        """Bring the in-memory tail up to the log's end (caller holds the lock): the log's rows
        after what the tail holds, appended by this store or by another process."""
        if self._tail_upto is None:   # (the generations are still the one empty one: nothing filled them)
            self._tail_upto = self._indexed_upto
        rows = self._conn.execute("SELECT seq, sender_id, receiver_id FROM log WHERE seq > ? ORDER BY seq",
                                  (self._tail_upto,)).fetchall()
        if rows:
            self._add_tail(rows)

    def _add_tail(self, rows: Sequence[tuple[int, str, str]]) -> None:
        tail = self._gens[-1][1]
        for seq, snd, rcv in rows:
            for key in (("sender", snd), ("receiver", rcv)):
                seqs = tail.get(key)
                if seqs is None:
                    tail[key] = [seq]
                else:
                    seqs.append(seq)
        self._tail_upto = rows[-1][0]

    def flush_index(self, conn: sqlite3.Connection | None = None) -> int:
        """Bring the account index file up to the log's end: one INSERT … SELECT (sorted, so each
        index page is written about once per round, and one C call: no GIL hand-off per row), then
        the in-memory tail it now covers is dropped. Returns the position indexed up to."""
        with self._lock:
            if self._tail_upto is None:   # no tail in memory yet (a store just opened, a migration):
                upto = self.last_seq()
            else:
                self._absorb()
                upto = self._tail_upto
                if upto > self._indexed_upto:
                    self._gens[-1][0] = upto          # closes the generation the round covers
                    self._gens.append([None, {}])
            if upto <= self._indexed_upto:
                return self._indexed_upto
        own = conn is None
        if own:
            conn = self._index_connection()
        try:
            # a deferred BEGIN: BEGIN IMMEDIATE would take the write lock of every attached file,
            # the log's too, and hold the writer for the whole INSERT (measured: 400 ms every round)
            conn.execute("BEGIN")
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'indexed_upto'").fetchone()
                done = int(row[0]) if row else 0
                if upto > done:
                    conn.execute(_INDEX_INSERT, (done, upto))
                    conn.execute("INSERT INTO meta (key, value) VALUES ('indexed_upto', ?)"
                                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (upto,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            if own:
                conn.close()
        with self._lock:
            self._indexed_upto = max(self._indexed_upto, upto)
            self._gens = [g for g in self._gens if g[0] is None or g[0] > self._indexed_upto]
        return self._indexed_upto

    def checkpoint(self, conn: sqlite3.Connection | None = None) -> bool:
        """One checkpoint round (module doc): PASSIVE (never blocks the writer), then RESTART when
        the WAL held `wal_restart_bytes` or more. True when the WAL was rewound."""
        own = conn is None
        if own:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            frames = int(row[1]) if row and row[1] is not None else 0
            if frames < 0 or frames * self.page_size < self.wal_restart_bytes:
                return False
            # more PASSIVE rounds while the writer goes on: each copies what came during the last
            # one, so the RESTART that holds the write lock has only a few frames left to copy (and
            # to fsync); stop once few are left or a round no longer shrinks what is left
            # The database file's pages those rounds wrote are flushed here too (fsync through a
            # descriptor of our own): a PASSIVE checkpoint that does not finish the WAL — under a
            # steady writer, none does — never syncs the database file, so its dirty pages piled up
            # for the RESTART's own fsync, under the lock (measured: 22–130 ms held with ≤ 64 frames
            # left, growing with the file)
            left = frames
            for k in range(PASSIVE_ROUNDS):
                row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if not row:
                    break
                now_left = int(row[1]) - int(row[2])
                shrinking = 64 < now_left < left
                left = min(left, now_left)
                if k == 0:
                    _fsync_path(self.path)   # then at least one more round, for what came meanwhile
                elif not shrinking:
                    break
            # The RESTART runs holding this store's own lock, so this process's writer is not in a
            # transaction and waits on the lock — woken the moment the rewind ends — instead of in
            # SQLite's busy handler, whose sleeps (1, 2, 5 … 25, 50, 100 ms) overshot the rewind by
            # up to half its length (measured: the submit after a 40–110 ms rewind took 75–126 ms).
            # It waits at most `restart_wait_ms` for other connections' readers (a network refresh
            # reading the log): busy then, it is retried at the next round rather than holding the
            # writer for as long as a long read lasts.
            t0 = time.perf_counter()
            with self._lock:
                t1 = time.perf_counter()
                conn.execute(f"PRAGMA busy_timeout={int(self.restart_wait_ms)}")
                try:
                    row = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                finally:
                    conn.execute("PRAGMA busy_timeout=30000")
                t2 = time.perf_counter()
            trace.event("WAL rewind (RESTART checkpoint): %.0f ms holding the writer (after %.0f ms waiting for its "
                        "transaction; %s frames left after the catch-up rounds), %s", (t2 - t1) * 1000, (t1 - t0) * 1000, left,
                        "done" if row and int(row[0]) == 0 else "busy, retried at the next round")
            return bool(row) and int(row[0]) == 0
        except sqlite3.Error:  # pragma: no cover - busy: the next round retries
            return False
        finally:
            if own:
                conn.close()

    # -- the log --------------------------------------------------------------------------------
    def append(self, transfers: Sequence[Mapping[str, Any]]) -> list[int | None]:
        if not transfers:
            return []
        ids = [str(t["txn_id"]) for t in transfers]
        out: list[int | None] = [None] * len(ids)
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")  # the write lock: no other writer until COMMIT
            try:
                seen: set[str] = set()
                for k in range(0, len(ids), 500):
                    chunk = ids[k:k + 500]
                    marks = ",".join("?" * len(chunk))
                    seen.update(r[0] for r in cur.execute(f"SELECT txn_id FROM log WHERE txn_id IN ({marks})", chunk))
                new: list[int] = []
                rows = []
                for i, (tid, t) in enumerate(zip(ids, transfers, strict=True)):
                    if tid in seen:
                        continue  # already in the log, or earlier in this batch: a redelivery
                    seen.add(tid)
                    new.append(i)
                    rows.append((tid, str(t["sender_id"]), str(t["receiver_id"]), orjson.dumps(dict(t)).decode()))
                if rows:
                    cur.executemany("INSERT INTO log (txn_id, sender_id, receiver_id, record) VALUES (?, ?, ?, ?)", rows)
                    # rowids of INTEGER PRIMARY KEY rows are max(rowid) + 1 in insertion order (rows are
                    # never deleted and the write lock is held): the batch got last − n + 1 … last
                    last = cur.execute("SELECT max(seq) FROM log").fetchone()[0]
                    for j, i in enumerate(new):
                        out[i] = last - len(new) + 1 + j
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            if rows and self._tail_upto is not None:
                first = last - len(rows) + 1
                if first == self._tail_upto + 1:   # nobody else appended in between: no read needed
                    self._add_tail([(first + j, r[1], r[2]) for j, r in enumerate(rows)])
                else:
                    self._absorb()
        return out

    def read_since(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
        last = int(seq)
        while True:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT seq, record FROM log WHERE seq > ? ORDER BY seq LIMIT ?", (last, READ_BATCH)).fetchall()
            for s, blob in rows:
                yield s, orjson.loads(blob)
            if len(rows) < READ_BATCH:
                return
            last = rows[-1][0]

    def reopen_spec(self) -> tuple:
        """What another process needs to open this store (kalasag.service.stores.open_spec)."""
        return ("sqlite", str(self.path), self.synchronous)

    def reopen(self) -> "SQLiteStore":
        """Another connection to the same file (for another process: a background snapshot)."""
        return SQLiteStore(self._init_args[0], synchronous=self._init_args[1], checkpoint_seconds=0)

    def read_account(self, side: str, account_id: str, upto: int | None = None,
                     since: int = 0, *, since_ts: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """One account's transfers on one side ("sender"/"receiver") with since ≤ seq ≤ upto, in log
        order, none with `ts_epoch` before `since_ts`: the account index file up to where it is
        complete, the in-memory tail after that. The time filter runs in SQL (`json_extract`), so
        the rows a compaction leaves out are never decoded in Python."""
        code = SIDE_CODE[side]
        lim = (1 << 62) if upto is None else int(upto)
        since = int(since)
        when, args = (" AND json_extract({}record, '$.ts_epoch') >= ?", (int(since_ts),)) if since_ts else ("", ())
        with self._lock:
            self._absorb()
            rows: list[tuple[int, str]] = []
            top = min(lim, self._indexed_upto)
            if since <= top:
                rows = self._acc.execute(
                    "SELECT l.seq, l.record FROM acct a JOIN lg.log l ON l.seq = a.seq"
                    " WHERE a.account = ? AND a.side = ? AND a.seq >= ? AND a.seq <= ?" + when.format("l.")
                    + " ORDER BY a.seq", (account_id, code, since, top, *args)).fetchall()
            key = (side, account_id)
            low = max(since, self._indexed_upto + 1)   # (a tail filled while a round ran may overlap it)
            tail = [q for _, gen in self._gens for q in gen.get(key, ()) if low <= q <= lim]
            for k in range(0, len(tail), 500):
                chunk = tail[k:k + 500]
                rows += self._conn.execute(
                    f"SELECT seq, record FROM log WHERE seq IN ({','.join('?' * len(chunk))}){when.format('')} ORDER BY seq",
                    (*chunk, *args)).fetchall()
        return [(s, orjson.loads(blob)) for s, blob in rows]

    def last_seq(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()[0])

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM log").fetchone()[0])

    # -- snapshots ------------------------------------------------------------------------------
    def save_snapshot(self, seq: int, blob: bytes) -> None:
        """The blob goes to a file next to the database (written, fsynced, renamed into place); the
        snapshot row, committed after it, names the file; older snapshot files are then removed."""
        self.save_snapshot_pieces(seq, (blob,))

    def save_snapshot_pieces(self, seq: int, pieces: Sequence[bytes]) -> None:
        """`save_snapshot` of the concatenated pieces, without concatenating them (a large
        snapshot is written a piece at a time, the GIL released during the writes)."""
        import threading

        name = f"{self.path.name}.snapshot-{int(seq)}"
        target = self.path.with_name(name)
        tmp = self.path.with_name(f"{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb", buffering=1 << 20) as fh:
            for piece in pieces:
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        if self.synchronous == "FULL":
            _fsync_path(self.path.parent)
        with self._lock:
            self._conn.execute(
                "INSERT INTO snapshot (id, seq, blob, saved) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, blob = excluded.blob, saved = excluded.saved",
                (int(seq), sqlite3.Binary(SNAPSHOT_REF + name.encode()), datetime.now(UTC).isoformat()))
        for old in self.path.parent.glob(f"{self.path.name}.snapshot-*"):
            if old.name != name and not old.name.endswith(".tmp"):
                try:
                    old.unlink()
                except OSError:  # pragma: no cover - another process removed it
                    pass

    def load_snapshot(self) -> tuple[int, bytes] | None:
        with self._lock:
            row = self._conn.execute("SELECT seq, blob FROM snapshot WHERE id = 1").fetchone()
        if row is None:
            return None
        seq, blob = int(row[0]), bytes(row[1])
        if blob.startswith(SNAPSHOT_REF):
            path = self.path.with_name(blob[len(SNAPSHOT_REF):].decode())
            try:
                blob = path.read_bytes()
            except OSError as exc:
                log.warning("snapshot file %s unreadable (%s): the state is rebuilt from the log", path, exc)
                return None
        return seq, blob

    # -- API keys -------------------------------------------------------------------------------
    def put_api_key(self, record: ApiKeyRecord) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO api_keys (key_id, key_hash, scopes, created, revoked) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (key_id) DO UPDATE SET key_hash = excluded.key_hash, scopes = excluded.scopes,"
                " created = excluded.created, revoked = excluded.revoked",
                (record.key_id, record.key_hash, ",".join(record.scopes), record.created, int(record.revoked)))

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT key_id, key_hash, scopes, created, revoked FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            return None
        scopes = tuple(s for s in row[2].split(",") if s)
        return ApiKeyRecord(key_id=row[0], key_hash=row[1], scopes=scopes, created=row[3], revoked=bool(row[4]))

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None and self._checkpointer is not threading.current_thread():
            self._checkpointer.join(timeout=5)
        with self._lock:
            try:
                self._acc.close()
                self._conn.close()
            except sqlite3.Error:  # pragma: no cover - closing twice
                pass


def _fsync_path(path: Path) -> None:
    """fsync a file or a directory through a read-only descriptor of our own."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
