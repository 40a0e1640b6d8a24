"""The Store contract, run against all three stores: SQLite (embedded), PostgreSQL and Redis (real
servers; skipped with a reason when unreachable). Plus each server store's own failure modes and
concurrent appenders."""

from __future__ import annotations

import threading

import pytest

from kalasag.service.store import ApiKeyRecord
from service_helpers import open_test_store, unique

KINDS = ["sqlite", "postgres", "redis"]


def rec(txn: str, amount: float = 25.0, **extra) -> dict:
    """A canonical (validated) record as the scorer appends it."""
    r = {"txn_id": txn, "timestamp": "2025-03-01T14:00:00Z", "amount": amount, "currency": "USD",
         "channel": "mto", "sender_id": "S1", "receiver_id": "R1", "sender_name": None, "receiver_name": "Ana Cruz",
         "sender_country": "US", "receiver_country": "PH", "receiver_region": None, "sender_phone": None,
         "receiver_phone": None, "reference": "for school", "amount_usd": amount, "fx_rate": 1.0, "ts_epoch": 1740837600}
    r.update(extra)
    return r


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    with open_test_store(request.param, tmp_path) as s:
        yield s


def test_empty_store(store):
    assert store.last_seq() == 0
    assert list(store.read_since(0)) == []
    assert store.load_snapshot() is None
    assert store.get_api_key("nope") is None


def test_append_assigns_increasing_seqs_and_dedupes_txn_ids(store):
    a, b, c = rec("A", 25.0), rec("B", 12.5, reference=None), rec("C", 1000.0)
    first = store.append([a, b, rec("A", 99.0)])       # "A" again inside the batch: a redelivery
    assert first[0] is not None and first[1] is not None and first[2] is None
    assert first[1] > first[0]
    second = store.append([c, rec("A", 7.0), rec("B")])
    assert second[1] is None and second[2] is None
    assert second[0] > first[1]
    assert store.last_seq() == second[0]
    log = list(store.read_since(0))
    assert [s for s, _ in log] == [first[0], first[1], second[0]]
    assert [r["txn_id"] for _, r in log] == ["A", "B", "C"]
    assert log[0][1] == a and log[1][1] == b and log[2][1] == c   # the first version of "A" is kept, intact
    assert list(store.read_since(first[1])) == [(second[0], c)]
    assert list(store.read_since(second[0])) == []
    assert store.append([]) == []


def test_append_is_all_or_nothing(store):
    store.append([rec("OLD")])
    before = store.last_seq()
    unserializable = rec("BAD", reference=object())   # cannot be written: fails mid-batch
    with pytest.raises(Exception):
        store.append([rec("N1"), rec("N2"), unserializable, rec("N3")])
    assert store.last_seq() == before
    assert [r["txn_id"] for _, r in store.read_since(0)] == ["OLD"]
    # N1 was not half-recorded as seen: it is still new
    again = store.append([rec("N1")])
    assert again[0] is not None and again[0] > before


def test_snapshot_round_trip_and_replace(store):
    blob = bytes(range(256)) * 3
    store.save_snapshot(5, blob)
    assert store.load_snapshot() == (5, blob)
    store.save_snapshot(9, b"second")
    assert store.load_snapshot() == (9, b"second")


def test_api_keys_round_trip_and_revoke(store):
    r = ApiKeyRecord("0123456789", "hmac-sha256$00$ff", ("score", "read"), "2026-01-01T00:00:00Z")
    store.put_api_key(r)
    assert store.get_api_key("0123456789") == r
    revoked = ApiKeyRecord(r.key_id, r.key_hash, r.scopes, r.created, revoked=True)
    store.put_api_key(revoked)
    assert store.get_api_key("0123456789") == revoked
    only_read = ApiKeyRecord("abcdefabcd", "hmac-sha256$01$ee", ("read",), "2026-01-02T00:00:00Z")
    store.put_api_key(only_read)
    assert store.get_api_key("abcdefabcd").scopes == ("read",)
    assert store.get_api_key("0123456789") == revoked


@pytest.mark.parametrize("kind", KINDS)
def test_a_second_instance_sees_the_same_durable_state(kind, tmp_path):
    name = unique("t")
    with open_test_store(kind, tmp_path, name) as one:
        seqs = one.append([rec("A"), rec("B")])
        one.save_snapshot(seqs[0], b"snap")
        with open_test_store(kind, tmp_path, name) as two:
            assert [r["txn_id"] for _, r in two.read_since(0)] == ["A", "B"]
            assert two.load_snapshot() == (seqs[0], b"snap")
            assert two.append([rec("B"), rec("C")])[0] is None   # B seen through the other instance
            assert [r["txn_id"] for _, r in one.read_since(seqs[1])] == ["C"]


def test_postgres_failure_inside_the_insert_rolls_the_whole_batch_back(tmp_path):
    # a NUL character cannot be stored in PostgreSQL text: the INSERT fails after earlier rows of the
    # same statement were inserted; the transaction must take them back
    with open_test_store("postgres", tmp_path) as store:
        store.append([rec("OLD")])
        with pytest.raises(Exception):
            store.append([rec("P1"), rec("P2\x00"), rec("P3")])
        assert [r["txn_id"] for _, r in store.read_since(0)] == ["OLD"]
        assert store.append([rec("P1")])[0] is not None    # P1 was not recorded as seen
        assert [r["txn_id"] for _, r in store.read_since(0)] == ["OLD", "P1"]


def test_redis_append_refuses_before_writing_when_a_key_is_damaged(tmp_path):
    from kalasag.service.stores import StoreError

    with open_test_store("redis", tmp_path) as store:
        store._r.set(store.k_log, "not a stream")
        with pytest.raises(StoreError, match="holds a string"):
            store.append([rec("R1"), rec("R2")])
        assert store.last_seq() == 0
        assert store._r.scard(store.k_txn) == 0
        store._r.delete(store.k_log)
        assert store.append([rec("R1"), rec("R2")]) == [1, 2]


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_concurrent_appenders_never_let_a_tailing_reader_skip_an_entry(kind, tmp_path):
    """Two writers (own connections) append while a reader tails with read_since(last seen seq).

    Sequence numbers must become visible in order; otherwise the reader moves past a seq that is
    committed later and never sees it (the reason for the advisory lock in PostgresStore)."""
    name = unique("t")
    n_batches, per_batch = 60, 5
    with open_test_store(kind, tmp_path, name) as reader, \
            open_test_store(kind, tmp_path, name) as w1, open_test_store(kind, tmp_path, name) as w2:
        done = threading.Event()
        seen: list[int] = []
        errors: list[BaseException] = []

        def write(store, tag):
            try:
                for b in range(n_batches):
                    store.append([rec(f"{tag}-{b}-{k}") for k in range(per_batch)])
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        def tail():
            last = 0
            while True:
                finished = done.is_set()
                for s, _ in reader.read_since(last):
                    seen.append(s)
                    last = s
                if finished:
                    return

        threads = [threading.Thread(target=write, args=(w1, "a")), threading.Thread(target=write, args=(w2, "b"))]
        t = threading.Thread(target=tail)
        t.start()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        done.set()
        t.join()
        assert not errors
        expected = [s for s, _ in reader.read_since(0)]
        assert len(expected) == 2 * n_batches * per_batch
        assert seen == expected     # every entry, once, in order: nothing skipped


def test_read_account_returns_one_sides_transfers_in_log_order(store):
    # the scorer rebuilds an account from these when a transfer arrives late (all three stores index it)
    seqs = store.append([rec("A", sender_id="S1", receiver_id="R1"), rec("B", sender_id="S2", receiver_id="R1"),
                         rec("C", sender_id="S1", receiver_id="R2"), rec("D", sender_id="S1", receiver_id="R1")])
    assert [(s, r["txn_id"]) for s, r in store.read_account("sender", "S1")] == [(seqs[0], "A"), (seqs[2], "C"), (seqs[3], "D")]
    assert [r["txn_id"] for _, r in store.read_account("receiver", "R1")] == ["A", "B", "D"]
    assert [r["txn_id"] for _, r in store.read_account("receiver", "R1", seqs[1])] == ["A", "B"]
    assert store.read_account("sender", "R1") == []
    assert store.read_account("receiver", "R1")[0][1] == rec("A", sender_id="S1", receiver_id="R1")


def test_read_account_leaves_out_transfers_before_since_ts(store):
    # a compaction keeps only the last horizon: the store leaves the older transfers out
    t0 = 1740837600
    seqs = store.append([rec(f"T{i}", sender_id="S1", receiver_id=f"R{i % 2}", ts_epoch=t0 + 86400 * d)
                         for i, d in enumerate((5, 1, 9, 3, 7))])   # not in time order: a late one
    got = store.read_account("sender", "S1", since_ts=t0 + 86400 * 4)
    assert [(s, r["txn_id"]) for s, r in got] == [(seqs[0], "T0"), (seqs[2], "T2"), (seqs[4], "T4")]
    assert [r["txn_id"] for _, r in store.read_account("receiver", "R1", since_ts=t0 + 86400 * 3)] == ["T3"]
    assert [r["txn_id"] for _, r in store.read_account("receiver", "R0", seqs[3], seqs[1], since_ts=t0 + 86400 * 9)] == ["T2"]
    assert store.read_account("sender", "S1", since_ts=t0 + 86400 * 10) == []
    assert len(store.read_account("sender", "S1", since_ts=0)) == 5


def test_redis_drop_removes_every_key_of_the_prefix_and_nothing_else(tmp_path):
    with open_test_store("redis", tmp_path) as store, open_test_store("redis", tmp_path) as other:
        store.append([rec("A")])
        other.append([rec("A")])
        store.put_api_key(ApiKeyRecord("0123456789", "h", ("read",), "2026-01-01T00:00:00Z"))
        store.save_snapshot(1, b"x")
        store.drop()
        assert list(store._r.scan_iter(match="{" + store.prefix + "}*")) == []
        assert [r["txn_id"] for _, r in other.read_since(0)] == ["A"]


def test_a_sliced_periodic_snapshot_is_stored_and_used_at_restart(store, tmp_path):
    """The sliced snapshot (encoded after submits, stored by a thread: SQLite a file + a reference
    row, PostgreSQL and Redis over a connection of their own) is what the next start loads."""
    from datetime import UTC, datetime

    from kalasag.model import load_config
    from kalasag.service.scorer import StreamScorer
    from service_helpers import transfer

    now = datetime(2026, 1, 15, tzinfo=UTC)
    cfg = load_config(overrides={"service": {"snapshot_slice_seconds": 1e-9}})
    sc = StreamScorer(cfg, store, now=lambda: now)
    for i in range(30):
        sc.submit([transfer(i, sender=f"S{i % 4}", receiver=f"R{i % 3}", day=1 + i // 10)])
    sc.snapshot(background=True)
    for i in range(30, 40):   # folded in while it is encoded: not in it
        sc.submit([transfer(i, sender=f"S{i % 4}", receiver=f"R{i % 3}", day=4)])
    sc._collect_snapshot(wait=True)
    assert sc.counters["snapshots"] == 1
    seq, blob = store.load_snapshot()
    assert seq == 30 and bytes(blob).startswith(b"KALASAG-STATE")
    again = StreamScorer(cfg, store, now=lambda: now)
    assert again.counters["replayed"] == 10 and again.applied_seq == 40
    for side in ("sender", "receiver"):
        for acc in sc.evidence.account_ids(side):
            assert again.row(side, acc) == sc.row(side, acc)


def test_sqlite_checkpoint_resets_a_wal_that_passive_checkpoints_let_grow(tmp_path):
    """Commits arriving without pause: PASSIVE checkpoints alone never rewind the WAL. A round that
    finds at least `wal_restart_bytes` in it rewinds it (and `journal_size_limit` cuts the file back
    to that size when it is reused); below that it leaves it alone."""
    import os

    from kalasag.service.sqlite_store import SQLiteStore

    st = SQLiteStore(tmp_path / "s", checkpoint_seconds=0, wal_restart_bytes=64 << 10)
    st._conn.execute("PRAGMA wal_autocheckpoint=0")   # as with the checkpoint thread: no checkpoint in a commit
    wal = str(st.path) + "-wal"
    try:
        for k in range(40):
            st.append([rec(f"w{k}-{i}") for i in range(25)])
        grown = os.path.getsize(wal)
        assert grown >= 64 << 10                     # 1,000 transfers in 40 commits: well over 64 KiB
        import kalasag.service.sqlite_store as sqlite_store

        synced: list[object] = []
        real_fsync = sqlite_store._fsync_path
        sqlite_store._fsync_path = lambda p: (synced.append(p), real_fsync(p))[1]
        try:
            assert SQLiteStore.checkpoint(st) is True    # PASSIVE, fsync of the file, then RESTART
        finally:
            sqlite_store._fsync_path = real_fsync
        assert synced == [st.path]                   # the database file synced before the rewind, once
        st.append([rec("after")])                    # written from the WAL's start, the file cut back
        small = os.path.getsize(wal)
        assert 0 < small <= 64 << 10 < grown
        assert st.checkpoint() is False              # below the limit: PASSIVE only, the WAL stays
        assert os.path.getsize(wal) == small
        assert st.count() == 1001 and st.last_seq() == 1001
    finally:
        st.close()
    again = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)
    try:
        assert again.count() == 1001                 # nothing lost by the truncation
    finally:
        again.close()


def test_sqlite_page_size_applies_to_new_files_only(tmp_path):
    """A new store file is made with the configured page size (smaller pages, less WAL per insert);
    an existing file keeps the page size it was made with, and its data."""
    from kalasag.model import load_config
    from kalasag.service.stores import open_store

    svc = load_config(overrides={"service": {"sqlite_page_size": 2048, "sqlite_wal_restart_mib": 3}}).service
    st = open_store("sqlite", tmp_path / "a", service=svc)
    try:
        assert st._conn.execute("PRAGMA page_size").fetchone()[0] == 2048
        assert st.wal_restart_bytes == 3 << 20
        st.append([rec("p1")])
    finally:
        st.close()
    again = open_store("sqlite", tmp_path / "a", service=load_config().service)   # default 4096 asked
    try:
        assert again._conn.execute("PRAGMA page_size").fetchone()[0] == 2048 and again.count() == 1
    finally:
        again.close()
    fresh = open_store("sqlite", tmp_path / "b", service=load_config().service)
    try:
        assert fresh._conn.execute("PRAGMA page_size").fetchone()[0] == 4096 == fresh.page_size
    finally:
        fresh.close()
    with pytest.raises(Exception, match="sqlite_page_size"):
        load_config(overrides={"service": {"sqlite_page_size": 3000}})


# -- the SQLite store's account index (sqlite_store module doc) -----------------------------------
def _brute(st, side: str, acc: str, upto: int | None = None, since: int = 0, since_ts: int = 0) -> list[int]:
    """The account's positions by reading the whole log (what read_account must return)."""
    key = "sender_id" if side == "sender" else "receiver_id"
    return [s for s, r in st.read_since(0) if r[key] == acc and since <= s <= (upto if upto is not None else 1 << 62)
            and r["ts_epoch"] >= since_ts]


def _fill(st, n: int, start: int = 0, accounts: int = 7) -> None:
    import random

    rnd = random.Random(start)
    for k in range(start, start + n, 10):
        st.append([rec(f"a{k + i}", sender_id=f"S{rnd.randrange(accounts)}", receiver_id=f"R{rnd.randrange(accounts)}",
                       ts_epoch=1740837600 + 3600 * rnd.randrange(250)) for i in range(10)])


def test_sqlite_account_reads_are_exact_across_index_rounds(tmp_path):
    """Transfers are read back per account from the index file up to where it is complete and from
    the in-memory tail after it: every range of every account, before and after each round, equals
    a scan of the whole log — nothing lost, nothing twice — and the log itself carries no account
    index (the write path's cost: sqlite_store module doc)."""
    from kalasag.service.sqlite_store import SQLiteStore

    st = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)
    try:
        names = {r[0] for r in st._conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'log'")}
        assert "log_sender" not in names and "log_receiver" not in names

        def check() -> None:
            for side, p in (("sender", "S"), ("receiver", "R")):
                for a in range(7):
                    acc = f"{p}{a}"
                    for since, upto in ((0, None), (35, 180), (101, 101), (150, None)):
                        for since_ts in (0, 1740837600 + 3600 * 120):
                            got = [s for s, _ in st.read_account(side, acc, upto, since, since_ts=since_ts)]
                            assert got == _brute(st, side, acc, upto, since, since_ts), (side, acc, since, upto, since_ts)

        _fill(st, 100)
        check()                                   # all in the tail
        assert st.flush_index() == 100 and st._indexed_upto == 100
        assert [g[0] for g in st._gens] == [None]  # the covered tail dropped
        check()                                   # all in the index file
        _fill(st, 130, start=100)
        check()                                   # index file + tail
        st.flush_index()
        _fill(st, 20, start=230)
        check()
        n = st._acc.execute("SELECT count(*) FROM acct").fetchone()[0]
        assert n == 2 * 230                       # one entry per transfer and side, none twice
        assert st.flush_index() == 250 and st.flush_index() == 250
    finally:
        st.close()


def test_sqlite_account_index_survives_a_crash_and_another_writer(tmp_path):
    """A store that is not closed (kill -9) after a round: the reopened store reads the index file
    as far as it was committed and the rest from the log. Transfers appended by another instance on
    the same file (another process) are in this one's reads too."""
    from kalasag.service.sqlite_store import SQLiteStore

    st = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)
    _fill(st, 120)
    st.read_account("sender", "S1")               # the tail in use
    st.flush_index()
    _fill(st, 50, start=120)
    st._indexed_upto = 0                           # as if the round's commit was not seen: reads still exact
    st._gens = [[None, {}]]
    st._tail_upto = None
    assert [s for s, _ in st.read_account("sender", "S2")] == _brute(st, "sender", "S2")
    again = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)   # st never closed: a crash
    other = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)
    try:
        assert again._indexed_upto == 120
        again.read_account("receiver", "R3")
        _fill(other, 40, start=170)                # another writer appends after this one read
        again.append([rec("mine", sender_id="S2", receiver_id="R3")])
        for side, acc in (("sender", "S2"), ("receiver", "R3"), ("sender", "S5")):
            assert [s for s, _ in again.read_account(side, acc)] == _brute(again, side, acc)
        assert [s for s, _ in again.read_account("sender", "S2")][-1] == 211
    finally:
        other.close()
        again.close()
        st.close()


def test_sqlite_version_1_file_is_migrated_and_a_foreign_index_rebuilt(tmp_path):
    """A store file of schema version 1 (account indexes on the log): opening it builds the index
    file from the log, drops the two indexes and records version 2; the reads are the same. An
    index file that claims more than the log holds (the log replaced under it) is rebuilt."""
    import shutil
    import sqlite3

    from kalasag.service.sqlite_store import SQLiteStore

    st = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)
    _fill(st, 60)
    st.flush_index()
    st.close()
    db = tmp_path / "s" / "kalasag.sqlite3"
    shutil.copy(db.with_name(db.name + "-accounts"), tmp_path / "foreign-accounts")
    db.with_name(db.name + "-accounts").unlink()
    c = sqlite3.connect(db)
    c.execute("CREATE INDEX log_sender ON log (sender_id, seq)")
    c.execute("CREATE INDEX log_receiver ON log (receiver_id, seq)")
    c.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    c.commit()
    c.close()
    old = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)
    try:
        names = {r[0] for r in old._conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'log'")}
        assert "log_sender" not in names and "log_receiver" not in names
        assert old._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
        assert old._indexed_upto == 60
        assert [s for s, _ in old.read_account("receiver", "R4")] == _brute(old, "receiver", "R4")
    finally:
        old.close()
    small = SQLiteStore(tmp_path / "t", checkpoint_seconds=0)
    _fill(small, 20)
    small.close()
    shutil.copy(tmp_path / "foreign-accounts", tmp_path / "t" / "kalasag.sqlite3-accounts")   # indexes 60 of 20
    for suffix in ("-wal", "-shm"):
        (tmp_path / "t" / f"kalasag.sqlite3-accounts{suffix}").unlink(missing_ok=True)
    again = SQLiteStore(tmp_path / "t", checkpoint_seconds=0)
    try:
        assert again._indexed_upto == 0 and again._acc.execute("SELECT count(*) FROM acct").fetchone()[0] == 0
        assert [s for s, _ in again.read_account("sender", "S3")] == _brute(again, "sender", "S3")
    finally:
        again.close()


def test_sqlite_appends_and_reads_go_on_while_a_round_holds_the_index_file(tmp_path):
    """A round of the account index holds its file's write lock for its INSERT and reads the log
    (≈ 0.4 s at 3,000 transfers/s): appends and account reads must not wait for it. They did while
    a BEGIN IMMEDIATE locked every attached file — the round's the log, the writer's the index.
    Here a real round is paused right after its INSERT, inside its transaction."""
    from kalasag.service.sqlite_store import SQLiteStore

    class Paused:   # the round's connection, stopping after the INSERT until told to go on
        def __init__(self, conn) -> None:
            self.conn, self.inserted, self.go = conn, threading.Event(), threading.Event()

        def execute(self, sql, *args):
            out = self.conn.execute(sql, *args)
            if sql.startswith("INSERT OR IGNORE INTO acct"):
                self.inserted.set()
                self.go.wait(40)
            return out

    st = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)
    _fill(st, 50)
    paused = Paused(st._index_connection())
    flusher = threading.Thread(target=st.flush_index, args=(paused,), daemon=True)
    flusher.start()
    assert paused.inserted.wait(10)                 # the round is inside its transaction
    done = threading.Event()

    def work() -> None:
        _fill(st, 20, start=50)
        st.read_account("sender", "S1")
        done.set()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(5)
    try:
        assert done.is_set()
    finally:
        paused.go.set()
        flusher.join(40)
        worker.join(40)
    assert st._indexed_upto == 50
    assert [s for s, _ in st.read_account("sender", "S1")] == _brute(st, "sender", "S1")
    paused.conn.close()
    st.close()


def test_sqlite_service_store_keeps_its_tail_from_the_start(tmp_path):
    """The service's store (a checkpoint thread: a long-lived writer) reads the log's tail when it
    opens and keeps it with every append, so no account read has to read a long tail under the
    store's lock (a lazily filled tail made one append wait 209 ms)."""
    from kalasag.service.sqlite_store import SQLiteStore

    st = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)
    _fill(st, 30)
    assert st._tail_upto is None                   # a short-lived store: filled on first use
    st.close()
    svc = SQLiteStore(tmp_path / "s", checkpoint_seconds=3600)
    try:
        assert svc._tail_upto == 30
        _fill(svc, 10, start=30)
        assert svc._tail_upto == 40                 # kept by append, without a read
        assert [s for s, _ in svc.read_account("receiver", "R2")] == _brute(svc, "receiver", "R2")
    finally:
        svc.close()


def test_a_failed_periodic_snapshot_is_reported_and_leaves_nothing_alive(tmp_path, monkeypatch, caplog):
    """A sliced snapshot whose write fails (disk full, …) is logged, not counted, retried later —
    and neither the exception nor its pieces stay alive: with the garbage collector off (as between
    its rare full collections in a large service), a cycle through the exception's traceback kept
    each failed snapshot's pieces (≈ 120 MB at world-s1) until a full collection."""
    import gc
    import logging
    import weakref
    from datetime import UTC, datetime

    from kalasag.model import load_config
    from kalasag.service.scorer import StreamScorer
    from kalasag.service.sqlite_store import SQLiteStore
    from service_helpers import transfer

    class DiskFull(OSError):
        pass

    seen: list[weakref.ref] = []

    def fail(self, seq, pieces):
        exc = DiskFull(28, "No space left on device")
        seen.append(weakref.ref(exc))
        raise exc

    monkeypatch.setattr(SQLiteStore, "save_snapshot_pieces", fail)
    now = datetime(2026, 1, 15, tzinfo=UTC)
    cfg = load_config(overrides={"service": {"snapshot_slice_seconds": 1e-9}})
    st = SQLiteStore(tmp_path / "s", checkpoint_seconds=0)
    sc = StreamScorer(cfg, st, now=lambda: now)
    for i in range(20):
        sc.submit([transfer(i, sender=f"S{i % 4}", receiver=f"R{i % 3}", day=1 + i // 10)])
    was = gc.isenabled()
    gc.disable()
    try:
        with caplog.at_level(logging.WARNING, logger="kalasag.service"):
            sc.snapshot(background=True)
            sc._collect_snapshot(wait=True)
        assert len(seen) == 1 and seen[0]() is None
    finally:
        if was:
            gc.enable()
        st.close()
    assert sc.counters["snapshots"] == 0 and sc._writer is None
    assert "periodic snapshot at log position 20 failed (DiskFull: [Errno 28] No space left on device)" in caplog.text
