"""The hash-list store: one SQLite file `media.sqlite` in the state directory.

Holds hashes (PDQ bytes, MD5, SHA-256), frame timestamps, the extra hashes of banked images (bank
variants and regions: a name and a PDQ hash) and metadata only — never pixels, thumbnails or frames. Lists are versioned: every import or withdrawal bumps the list's version and
appends to a change log; entries keep the version they were added in and the version they were
withdrawn in, so any earlier version of a list can be reconstructed and a running matcher applies
only the changes since it last looked (no rebuild).

State directory: `--state DIR`, else `$KALASAG_STATE`, else `~/.kalasag` (docs/media.md).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kalasag.media.errors import MediaError
from kalasag.media.listio import ListEntry

DB_NAME = "media.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS lists (
  name TEXT PRIMARY KEY, negative INTEGER NOT NULL, version INTEGER NOT NULL,
  category TEXT, source TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
  id INTEGER PRIMARY KEY, list TEXT NOT NULL REFERENCES lists(name), ref TEXT NOT NULL,
  kind TEXT NOT NULL, pdq BLOB, quality INTEGER, md5 TEXT, sha256 TEXT, category TEXT, source TEXT,
  metadata TEXT, added_version INTEGER NOT NULL, withdrawn_version INTEGER,
  added_at TEXT NOT NULL, withdrawn_at TEXT);
CREATE INDEX IF NOT EXISTS entries_list_ref ON entries(list, ref);
CREATE TABLE IF NOT EXISTS frames (
  id INTEGER PRIMARY KEY, entry_id INTEGER NOT NULL REFERENCES entries(id), timestamp REAL NOT NULL,
  pdq BLOB NOT NULL, quality INTEGER);
CREATE INDEX IF NOT EXISTS frames_entry ON frames(entry_id);
CREATE TABLE IF NOT EXISTS variants (
  id INTEGER PRIMARY KEY, entry_id INTEGER NOT NULL REFERENCES entries(id), name TEXT NOT NULL,
  pdq BLOB NOT NULL, quality INTEGER);
CREATE INDEX IF NOT EXISTS variants_entry ON variants(entry_id);
CREATE TABLE IF NOT EXISTS changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, list TEXT NOT NULL, version INTEGER NOT NULL,
  action TEXT NOT NULL, entry_id INTEGER NOT NULL, at TEXT NOT NULL);
"""


def default_state_dir() -> Path:
    env = os.environ.get("KALASAG_STATE")
    return Path(env) if env else Path.home() / ".kalasag"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ImportResult:
    list_name: str
    version: int
    added: int
    duplicates: int


class MediaStore:
    def __init__(self, state_dir: str | Path | None = None):
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        if self.state_dir.exists() and not self.state_dir.is_dir():
            raise MediaError(f"{self.state_dir}: state path exists and is not a directory")
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.state_dir / DB_NAME)
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise MediaError(f"{self.state_dir}: cannot open the media state ({exc})") from None

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- lists
    def _bump(self, name: str, negative: bool | None, category: str = "", source: str = "") -> int:
        row = self.db.execute("SELECT version, negative FROM lists WHERE name=?", (name,)).fetchone()
        now = _now()
        if row is None:
            self.db.execute("INSERT INTO lists VALUES (?,?,?,?,?,?,?)", (name, int(bool(negative)), 1, category, source, now, now))
            return 1
        if negative is not None and bool(row[1]) != bool(negative):
            kind = "negative" if row[1] else "positive"
            raise MediaError(f"list {name!r} is a {kind} list; use another name")
        self.db.execute("UPDATE lists SET version=version+1, updated_at=? WHERE name=?", (now, name))
        return row[0] + 1

    def import_entries(self, name: str, entries: list[ListEntry], *, negative: bool = False,
                       category: str = "", source: str = "") -> ImportResult:
        if not name or not name.strip():
            raise MediaError("a list needs a name (--list NAME)")
        with self.db:
            version = self._bump(name, negative, category, source)
            now = _now()
            if len(entries) > 1000:  # one scan of the list's refs
                active = {r[0] for r in self.db.execute(
                    "SELECT ref FROM entries WHERE list=? AND withdrawn_version IS NULL", (name,))}
            else:  # a few indexed look-ups (a small update to a large list stays fast)
                active = {e.ref for e in entries if self.db.execute(
                    "SELECT 1 FROM entries WHERE list=? AND ref=? AND withdrawn_version IS NULL", (name, e.ref)).fetchone()}
            added = dup = 0
            for e in entries:
                if e.ref in active:
                    dup += 1
                    continue
                active.add(e.ref)
                cur = self.db.execute(
                    "INSERT INTO entries (list, ref, kind, pdq, quality, md5, sha256, category, source, metadata,"
                    " added_version, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (name, e.ref, e.kind, e.pdq, e.quality, e.md5, e.sha256, e.category or category,
                     e.source or source, json.dumps(e.metadata, sort_keys=True), version, now))
                eid = cur.lastrowid
                if e.frames:
                    self.db.executemany("INSERT INTO frames (entry_id, timestamp, pdq, quality) VALUES (?,?,?,?)",
                                        [(eid, t, h, q) for t, h, q in e.frames])
                if e.variants:
                    self.db.executemany("INSERT INTO variants (entry_id, name, pdq, quality) VALUES (?,?,?,?)",
                                        [(eid, name, h, q) for name, h, q in e.variants])
                self.db.execute("INSERT INTO changes (list, version, action, entry_id, at) VALUES (?,?,?,?,?)",
                                (name, version, "add", eid, now))
                added += 1
        return ImportResult(name, version, added, dup)

    def withdraw(self, name: str, refs: list[str] | None = None, pdq_hex: list[str] | None = None) -> ImportResult:
        if self.db.execute("SELECT 1 FROM lists WHERE name=?", (name,)).fetchone() is None:
            raise MediaError(f"no list named {name!r}")
        ids: list[int] = []
        for ref in refs or []:
            ids += [r[0] for r in self.db.execute(
                "SELECT id FROM entries WHERE list=? AND ref=? AND withdrawn_version IS NULL", (name, ref))]
        for h in pdq_hex or []:
            ids += [r[0] for r in self.db.execute(
                "SELECT id FROM entries WHERE list=? AND pdq=? AND withdrawn_version IS NULL", (name, bytes.fromhex(h)))]
        if not ids:
            raise MediaError(f"nothing to withdraw: no active entry of list {name!r} matches")
        with self.db:
            version = self._bump(name, None)
            now = _now()
            for eid in sorted(set(ids)):
                self.db.execute("UPDATE entries SET withdrawn_version=?, withdrawn_at=? WHERE id=?", (version, now, eid))
                self.db.execute("INSERT INTO changes (list, version, action, entry_id, at) VALUES (?,?,?,?,?)",
                                (name, version, "withdraw", eid, now))
        return ImportResult(name, version, -len(set(ids)), 0)

    def lists(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT l.name, l.negative, l.version, l.updated_at,"
            " (SELECT count(*) FROM entries e WHERE e.list=l.name AND e.withdrawn_version IS NULL)"
            " FROM lists l ORDER BY l.name").fetchall()
        return [dict(name=r[0], negative=bool(r[1]), version=r[2], updated_at=r[3], active_entries=r[4]) for r in rows]

    def entry_refs(self, name: str, version: int | None = None) -> list[str]:
        """Active refs of a list at `version` (default: now)."""
        if version is None:
            q = "SELECT ref FROM entries WHERE list=? AND withdrawn_version IS NULL ORDER BY id"
            return [r[0] for r in self.db.execute(q, (name,))]
        q = ("SELECT ref FROM entries WHERE list=? AND added_version<=? AND (withdrawn_version IS NULL OR"
             " withdrawn_version>?) ORDER BY id")
        return [r[0] for r in self.db.execute(q, (name, version, version))]

    # ---------------------------------------------------------------- for the matcher
    def last_seq(self) -> int:
        return self.db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]

    def changes_since(self, seq: int) -> list[tuple[int, str, int]]:
        return self.db.execute("SELECT seq, action, entry_id FROM changes WHERE seq>? ORDER BY seq", (seq,)).fetchall()

    def entries(self, ids: list[int] | None = None) -> list[dict]:
        q = ("SELECT e.id, e.list, e.ref, e.kind, e.pdq, e.quality, e.md5, e.sha256, e.category, e.source,"
             " e.metadata, l.negative, e.withdrawn_version FROM entries e JOIN lists l ON l.name=e.list")
        if ids is None:
            rows = self.db.execute(q + " WHERE e.withdrawn_version IS NULL").fetchall()
        else:
            rows = []
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                rows += self.db.execute(q + f" WHERE e.id IN ({','.join('?' * len(part))})", part).fetchall()
        keys = ("id", "list", "ref", "kind", "pdq", "quality", "md5", "sha256", "category", "source",
                "metadata", "negative", "withdrawn_version")
        return [dict(zip(keys, r)) for r in rows]

    def frames(self, entry_ids: list[int]) -> list[tuple[int, int, float, bytes, int | None]]:
        out = []
        for i in range(0, len(entry_ids), 500):
            part = entry_ids[i : i + 500]
            out += self.db.execute(
                f"SELECT id, entry_id, timestamp, pdq, quality FROM frames WHERE entry_id IN ({','.join('?' * len(part))})"
                " ORDER BY entry_id, timestamp", part).fetchall()
        return out

    def variants(self, entry_ids: list[int] | None = None) -> list[tuple[int, int, str, bytes, int | None]]:
        """(variant id, entry id, name, pdq, quality) of the given entries' bank variants and regions
        (None: of every active entry, in one query)."""
        if entry_ids is None:
            return self.db.execute(
                "SELECT v.id, v.entry_id, v.name, v.pdq, v.quality FROM variants v JOIN entries e ON e.id=v.entry_id"
                " WHERE e.withdrawn_version IS NULL ORDER BY v.entry_id, v.id").fetchall()
        out = []
        for i in range(0, len(entry_ids), 500):
            part = entry_ids[i : i + 500]
            out += self.db.execute(
                f"SELECT id, entry_id, name, pdq, quality FROM variants WHERE entry_id IN ({','.join('?' * len(part))})"
                " ORDER BY entry_id, id", part).fetchall()
        return out
