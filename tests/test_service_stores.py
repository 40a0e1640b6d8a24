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
