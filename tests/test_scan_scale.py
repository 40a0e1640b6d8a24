"""Scale work on the scan (issue 3 §5): the shortcuts must give the very answers of the long way."""

from __future__ import annotations

import pandas as pd
import pytest

from kalasag.engine import connect
from kalasag.entities import phones
from kalasag.entities.phones import classify_phone, phone_frame
from kalasag.entities.records import account_records, phone_lookup
from kalasag.model import load_config
from kalasag.pipeline.progress import Stages


def _tx(rows: list[tuple[str, str, str | None]]) -> pd.DataFrame:
    """Transfers from (sender_id, sender_name, sender_phone); one fixed receiver."""
    return pd.DataFrame([
        {"txn_id": f"t{i}", "sender_id": s, "receiver_id": "r1", "sender_name": n, "receiver_name": "Rosa Reyes",
         "sender_phone": p, "receiver_phone": "0917 123 4567", "sender_country": "US", "receiver_country": "PH",
         "receiver_region": "Cebu", "amount_usd": 10.0}
        for i, (s, n, p) in enumerate(rows)
    ])


def test_account_record_modes_count_transfers_not_distinct_rows() -> None:
    # s1: "Ann Lee" on 3 transfers (one phone), "Anne Lee" on 2 (two phones). Counting distinct
    # (name, phone) rows would say "Anne Lee" (2 rows against 1); by transfers it is "Ann Lee" (3 to 2).
    # Phones: +1 202 555 0123 on 4 transfers, +1 202 555 0199 on 1.
    rows = [("s1", "Ann Lee", "+1 202 555 0123")] * 3 + [("s1", "Anne Lee", "+1 202 555 0123"),
                                                          ("s1", "Anne Lee", "+1 202 555 0199")]
    eng = connect(threads=1)
    cfg = load_config().entities
    rec = eng.fetch(account_records(eng, eng.from_records(_tx(rows)), cfg)).set_index("unique_id")
    s1 = rec.loc["sender:s1"]
    assert s1["name_norm"] == "ann lee"
    assert s1["phone_e164"] == "+12025550123"
    assert int(s1["n_transfers"]) == 5
    assert int(rec.loc["receiver:r1", "n_transfers"]) == 5


RAWS = ["+63 917 123 4567", "0917 123 4567", "639171234567", "0063 917 123 4567", "+1 202 555 0123",
        "12025550123", "2024-01-15", "12.50", "abc", "00000000", "1111111", "+44 20 7946 0958", "",
        "0016115883793", "956-283-4545", "+8529432373948"]


def test_phone_frame_in_worker_processes_gives_the_serial_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = pd.DataFrame({"phone_raw": RAWS * 2, "country": ["PH"] * len(RAWS) + ["US"] * len(RAWS)})
    serial = phone_frame(pairs, workers=1)
    monkeypatch.setattr(phones, "PARALLEL_MIN_PAIRS", 1)
    pooled = phone_frame(pairs, workers=2)
    pd.testing.assert_frame_equal(serial, pooled)
    # and row by row the same as classify_phone itself
    for raw, country, e164, status in serial[["phone_raw", "country", "phone_e164", "phone_status"]].itertuples(index=False):
        r = classify_phone(raw, country)
        assert (e164, status) == (r.e164, r.status)


def test_parsing_processes_are_replaced_and_give_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    # a parsing process keeps memory per number parsed (5 GB at 100M transfers): the parser replaces
    # its pool once it has parsed KEYS_PER_POOL keys, and answers do not depend on which process gave them
    pairs = pd.DataFrame({"phone_raw": RAWS * 2, "country": ["PH"] * len(RAWS) + ["US"] * len(RAWS)})
    serial = phone_frame(pairs, workers=1)
    monkeypatch.setattr(phones, "PARALLEL_MIN_PAIRS", 1)
    monkeypatch.setattr(phones, "KEYS_PER_POOL", len(pairs) + 1)
    with phones.PhoneParser(workers=2) as parser:
        first = phone_frame(pairs, parser=parser)
        pool = parser._pool
        second = phone_frame(pairs, parser=parser)      # under KEYS_PER_POOL so far: same pool
        assert parser._pool is pool
        third = phone_frame(pairs, parser=parser)       # over it: a new pool
        assert parser._pool is not pool and parser._parsed == len(pairs)
    assert parser._pool is None
    for frame in (first, second, third):
        pd.testing.assert_frame_equal(serial, frame)


def test_phone_readings_stop_at_the_first_valid_one() -> None:
    # "63…" in PH: the reading with the country code comes first and is valid; the national reading
    # (which would also parse) is never needed, and the answer is the same as before
    assert classify_phone("639171234567", "PH").e164 == "+639171234567"
    assert classify_phone("09171234567", "PH") == classify_phone("+63 917 123 4567", "PH")
    # nothing valid: every reading is kept for the "possible" / "invalid" decision
    assert classify_phone("1111111", "PH").e164 is None


def test_stages_record_peak_memory_and_cpu_per_stage() -> None:
    timings: dict[str, float] = {}
    with Stages(quiet=True, total=2) as st:
        with st.step("a", timings):
            sum(i * i for i in range(200_000))
        with st.step("b", timings):
            pass
    assert set(st.peak_rss_mib) == set(st.cpu_seconds) == set(timings) == {"a", "b"}
    assert 0 < st.peak_rss_mib["a"] <= st.peak_rss_mib["b"]  # the peak so far never falls
    assert st.cpu_seconds["a"] > 0


def test_top_row_breaks_ties_by_the_order_and_takes_one_row() -> None:
    from kalasag.indicators.base import top_row

    eng = connect(threads=1)
    t = eng.from_records(pd.DataFrame({
        "acc": ["a", "a", "a", "b", "b"],
        "cp": ["z", "x", "y", "q", "p"],
        "seed": ["s3", "s1", "s2", "s9", "s8"],
        "usd": [10.0, 10.0, 5.0, 1.0, 2.0],
    }))
    # a: z and x tie on 10 USD -> the smaller id x, with x's own seed s1; b: p has the most USD
    out = eng.fetch(top_row(t, "acc", [(t.usd, True), (t.cp, False)], via=t.cp, seed=t.seed)).sort_values("acc")
    assert out.to_dict("records") == [{"acc": "a", "via": "x", "seed": "s1"}, {"acc": "b", "via": "p", "seed": "s8"}]


def test_duckdb_memory_cap_default_option_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB's cap: 25 % of physical memory in whole GB by default, `KALASAG_MEMORY_LIMIT` over
    that, an explicit value over both; each reaches DuckDB, and bad sizes are one-line errors
    naming where they came from."""
    import os

    from kalasag.engine import EngineError
    from kalasag.engine.backend import default_memory_limit, parse_memory_limit

    def duckdb_cap(eng) -> float:  # DuckDB reports e.g. "953.6 MiB" or "2.7 GiB" (one decimal, truncated)
        number, unit = eng.duckdb.execute("SELECT current_setting('memory_limit')").fetchone()[0].split()
        return float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]

    monkeypatch.delenv("KALASAG_MEMORY_LIMIT", raising=False)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert default_memory_limit() == f"{max(1, int(total / 4 / 2**30))}GB"
    eng = connect(threads=1)
    assert eng.memory_limit == default_memory_limit()
    assert duckdb_cap(eng) == pytest.approx(max(1, int(total / 4 / 2**30)) * 1e9, rel=0.05)
    eng.close()
    monkeypatch.setenv("KALASAG_MEMORY_LIMIT", "3 GB")
    eng = connect(threads=1)
    assert eng.memory_limit == "3GB" and duckdb_cap(eng) == pytest.approx(3e9, rel=0.05)
    eng.close()
    eng = connect(threads=1, memory_limit="1.5GiB")   # the option wins over the environment
    assert eng.memory_limit == "1.5GiB" and duckdb_cap(eng) == pytest.approx(1.5 * 2**30, rel=0.05)
    eng.close()
    assert parse_memory_limit("512mb") == "512MB"
    monkeypatch.setenv("KALASAG_MEMORY_LIMIT", "lots")
    with pytest.raises(EngineError, match="KALASAG_MEMORY_LIMIT: 'lots' is not a memory size"):
        connect(threads=1)
    with pytest.raises(EngineError, match="below 128 MiB"):
        parse_memory_limit("64MB")


def test_spill_directory_option_environment_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """DuckDB spills into kalasag-duckdb-<pid> under --temp-dir, else $KALASAG_TEMP_DIR, else the
    system's temporary directory; a spilling table lands there; bad parents are one-line errors."""
    import os
    import tempfile

    from kalasag.engine import EngineError

    def setting(eng) -> str:
        return eng.duckdb.execute("SELECT current_setting('temp_directory')").fetchone()[0]

    monkeypatch.delenv("KALASAG_TEMP_DIR", raising=False)
    eng = connect(threads=1)
    assert eng.temp_directory == setting(eng) == os.path.join(tempfile.gettempdir(), f"kalasag-duckdb-{os.getpid()}")
    eng.close()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("KALASAG_TEMP_DIR", str(tmp_path / "env"))
    assert connect(threads=1).temp_directory == str(tmp_path / "env" / f"kalasag-duckdb-{os.getpid()}")
    (tmp_path / "opt").mkdir()
    eng = connect(threads=1, memory_limit="128MiB", temp_directory=tmp_path / "opt")   # the option wins
    spill = tmp_path / "opt" / f"kalasag-duckdb-{os.getpid()}"
    assert eng.temp_directory == setting(eng) == str(spill)
    # a table several times the cap spills into that folder
    eng.duckdb.execute("CREATE TEMP TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(4000000)")
    assert spill.is_dir() and sum(f.stat().st_size for f in spill.iterdir()) > 10 * 2**20
    eng.duckdb.execute("DROP TABLE big")
    monkeypatch.setenv("KALASAG_TEMP_DIR", str(tmp_path / "missing"))
    with pytest.raises(EngineError, match="KALASAG_TEMP_DIR: .*missing is not an existing directory"):
        connect(threads=1)


def test_running_out_of_memory_or_spill_space_is_a_one_line_user_error(tmp_path) -> None:
    """DuckDB's out-of-memory error (here: its spill folder limited to 32 MB) is not a bug: the CLI
    says what ran out and which options to change, in one line, exit 2."""
    import typer

    from kalasag.cli.errors import USER_ERROR, friendly
    from kalasag.engine import resource_error

    eng = connect(threads=1, memory_limit="128MiB", temp_directory=tmp_path)
    eng.duckdb.execute("SET max_temp_directory_size = '32MB'")

    @friendly
    def job() -> None:
        eng.duckdb.execute("CREATE TEMP TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(8000000)")

    with pytest.raises(typer.Exit) as e:
        job()
    assert e.value.exit_code == USER_ERROR
    assert resource_error(ValueError("a bug")) is None          # anything else stays an internal error
    assert resource_error(OSError(28, "No space left on device")).startswith("out of memory or temporary disk space")


def test_a_lack_of_memory_wrapped_by_another_library_is_still_named() -> None:
    """Splink wraps DuckDB's error in its own ("Error executing the following sql …", from e), and
    Kalasag's LinkageError wraps Splink's: the chain is followed to the DuckDB error (the sixth 100M
    attempt ended as an "internal error" whose line did not say what had run out)."""
    import duckdb

    from kalasag.engine import resource_error
    from kalasag.entities.linkage import LinkageError

    def raise_chain() -> None:
        try:
            try:
                raise duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block of size 256.0 KiB")
            except Exception as inner:
                raise RuntimeError("Error executing the following sql for table `__splink__df_predict`:") from inner
        except Exception as mid:
            raise LinkageError("entity resolution failed in Splink") from mid

    with pytest.raises(LinkageError) as e:
        raise_chain()
    line = resource_error(e.value)
    assert line is not None and "failed to pin block of size 256.0 KiB" in line
    assert resource_error(LinkageError("no pairs")) is None
    # and any other failure inside Splink is named by its root error, not Splink's first line
    from kalasag.entities.linkage import _root_line

    assert _root_line(e.value) == "Out of Memory Error: failed to pin block of size 256.0 KiB"


def test_phone_lookup_in_batches_gives_the_one_batch_answers() -> None:
    """Batches are hash classes of the raw text: every pair lands in exactly one, with its own answer."""
    raw = ["0917 123 4567", "+63 917 123 4567", "09171234567", "(02) 8123 4567", "0412 345 678", "not a phone",
           "1234", "+44 20 7946 0958", "0917-555-0199", "+1 415 555 2671"]
    pairs = pd.DataFrame({"phone_raw": raw * 2, "country": ["PH"] * len(raw) + ["AU"] * len(raw)})
    eng = connect("duckdb")
    t = eng.from_records(pairs)
    cfg = load_config(None).entities

    def read(batch: int) -> pd.DataFrame:
        out = eng.fetch(phone_lookup(eng, t, cfg, batch=batch))
        return out.sort_values(["phone_raw", "country"]).reset_index(drop=True)
    one, many = read(1_000), read(3)
    assert len(one) == len(pairs) and len(many) == len(pairs)  # 7 batches: no pair lost or doubled
    pd.testing.assert_frame_equal(one, many)
    expected = phone_frame(pairs)
    got = {k: (v if isinstance(v, str) else None) for k, v in zip(zip(many.phone_raw, many.country), many.phone_e164)}
    assert {(r, c): e for r, c, e in zip(expected.phone_raw, expected.country, expected.phone_e164)} == got
    assert got[("0917 123 4567", "PH")] == "+639171234567"


def test_work_tables_are_compressed_in_a_file_beside_the_spill_folder_and_removed_at_close(tmp_path) -> None:
    """materialize() writes to the engine's work database file (compressed), not to an in-memory
    temporary table that spills uncompressed; the file goes at close() or when the engine is collected."""
    import gc
    import os

    eng = connect(threads=1, memory_limit="128MiB", temp_directory=tmp_path)
    work = eng.work_database
    assert work is not None and os.path.dirname(work) == str(tmp_path)
    assert os.path.basename(work).startswith(f"kalasag-duckdb-{os.getpid()}-") and work.endswith(".duckdb")
    # 4M rows of 32-character text: 190+ MiB as text, several times the cap
    eng.duckdb.execute("CREATE TEMP VIEW src AS SELECT range AS i, md5((range % 1000)::VARCHAR) AS s FROM range(4000000)")
    big = eng.materialize(eng.con.table("src"))
    where = eng.duckdb.execute(
        "SELECT database_name, temporary FROM duckdb_tables() WHERE table_name = ?", [big.op().name]).fetchall()[0]
    assert where == (os.path.basename(work).removesuffix(".duckdb"), False)
    assert eng.native(big).count("*").fetchall()[0][0] == 4_000_000      # Splink's handle on it
    eng.duckdb.execute("CHECKPOINT")
    assert os.path.getsize(work) < 64 * 2**20            # compressed: the text as 1,000 distinct values
    spill = tmp_path / f"kalasag-duckdb-{os.getpid()}"
    assert not spill.exists() or sum(f.stat().st_size for f in spill.iterdir()) < 16 * 2**20
    assert int(eng.scalar(big.s.nunique())) == 1000 and eng.count(big) == 4_000_000
    small = eng.from_records(pd.DataFrame({"x": [1]}))
    eng.drop(big, small)                                   # both kinds, by their qualified names
    assert eng.duckdb.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]
    eng.close()
    assert not os.path.exists(work) and not os.path.exists(work + ".wal")
    other = connect(threads=1, temp_directory=tmp_path)
    path = other.work_database
    other.materialize(other.from_records(pd.DataFrame({"x": [1]})))
    assert os.path.exists(path)
    del other
    gc.collect()
    assert not os.path.exists(path)


def test_leftovers_of_killed_scans_are_removed_when_an_engine_starts(tmp_path) -> None:
    """A killed scan leaves its work database and spill folder behind (tens of GB at 100M): the next
    engine in the same folder removes those of processes no longer running, and nothing else."""
    import os
    import subprocess

    from kalasag.engine.backend import remove_leftovers

    dead = subprocess.Popen(["true"])
    dead.wait()                                      # reaped: its pid names no running process
    d = dead.pid
    stale = [tmp_path / f"kalasag-duckdb-{d}-3.duckdb", tmp_path / f"kalasag-duckdb-{d}-3.duckdb.wal"]
    spill = tmp_path / f"kalasag-duckdb-{d}"
    spill.mkdir()
    (spill / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"x" * 100)
    mine = tmp_path / f"kalasag-duckdb-{os.getpid()}-99.duckdb"    # a running process's: kept
    other = tmp_path / f"kalasag-duckdb-{d}-notes.txt"             # not a name the engine makes: kept
    for f in [*stale, mine, other]:
        f.write_bytes(b"x")
    foreign = tmp_path / "kalasag-duckdb-1"                        # pid 1 always runs: kept
    foreign.mkdir()
    eng = connect(threads=1, temp_directory=tmp_path)
    assert not any(p.exists() for p in stale) and not spill.exists()
    assert mine.exists() and other.exists() and foreign.is_dir()
    eng.close()
    # a dead process's folder holding anything but DuckDB's spill files is left alone
    keep = tmp_path / f"kalasag-duckdb-{d}"
    keep.mkdir()
    (keep / "report.html").write_text("not ours")
    assert remove_leftovers(str(tmp_path)) == [] and keep.is_dir()


def test_sorted_median_equals_duckdbs_median_aggregate() -> None:
    """I-01's median through a sort (it spills) gives what DuckDB's median aggregate gives (which
    does not spill: 30 GB and out of memory at 10M transfers under a 500 MB cap)."""
    import numpy as np

    from kalasag.indicators.transfer_pattern import sorted_median

    eng = connect(threads=2)
    hand = pd.DataFrame({
        "account_id": ["odd"] * 3 + ["even"] * 4 + ["one"] + ["nulls"] * 3 + ["allnull"] * 2,
        "amount_usd": [1.0, 3.0, 2.0, 10.0, 1.0, 3.0, 2.0, 5.0, None, 6.0, 4.0, None, None],
    })
    got = eng.fetch(sorted_median(eng.from_records(hand), "amount_usd", "m")).set_index("account_id")["m"].to_dict()
    assert got == {"odd": 2.0, "even": 2.5, "one": 5.0, "nulls": 5.0}     # no row for an account with no value
    rng = np.random.default_rng(7)
    n = 20_000
    rand = pd.DataFrame({"account_id": rng.integers(0, 3_000, n).astype(str),
                         "amount_usd": np.round(rng.lognormal(4, 1.2, n), 2)})
    t = eng.from_records(rand)
    mine = eng.fetch(sorted_median(t, "amount_usd", "m")).set_index("account_id")["m"].sort_index()
    ref = eng.fetch(t.group_by("account_id").aggregate(m=t.amount_usd.median())).set_index("account_id")["m"].sort_index()
    assert len(mine) == len(ref) == rand["account_id"].nunique()
    assert (mine.to_numpy() == ref.to_numpy()).all()                       # bit for bit
    # and the stream form's median is the same bits
    from sortedcontainers import SortedList

    from kalasag.indicators.transfer_pattern import _median

    by = rand.groupby("account_id")["amount_usd"]
    stream = pd.Series({k: _median(SortedList(v.tolist())) for k, v in by}).sort_index()
    assert (stream.to_numpy() == ref.to_numpy()).all()
