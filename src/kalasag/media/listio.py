"""Reading hash lists: plain hex, CSV with metadata, ThreatExchange/HMA PDQ exports.

Every bad line raises MediaError naming the file and line number. Formats:

* **hex**: one 64-hex-digit PDQ hash per line; blank lines and `#` comments skipped.
* **csv**: a header with `pdq_hex` (and/or `md5`, `sha256`); optional `list`, `category`, `source`,
  `entry` (or `id`), `quality`; rows with a `timestamp` are frames of the video named by `entry`/`id`
  (else `md5`, else `path`) — so the output of `kalasag media hash … --format csv` is itself a list.
  Rows with a `variant` (other than `original`) are extra hashes of the image entry with the same
  `entry`/`id` (else `path`, else `md5`): bank variants such as `crop90` or regions such as
  `tile2:r0c1` (`kalasag media hash --bank-variants`). Every other column is kept as metadata.
* **te** (ThreatExchange / HMA): JSON objects (a JSON array or one object per line) carrying the
  hash in `signal_value`/`pdq`/`raw_indicator`/`indicator`/`hash`, its type in
  `signal_type`/`type`/`indicator_type` (PDQ: `pdq`, `HASH_PDQ`, `PdqSignal`; MD5 types are imported
  as exact hashes; other types are skipped and counted), its id in `id`/`bank_content_id`/`content_id`
  and tags in `tags`; or pytx signal text, one `pdq <hex>` (or `video_md5 <hex>`) per line.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kalasag.media.errors import MediaError
from kalasag.media.hashing import PDQ_HEX_RE

MD5_RE = re.compile(r"^[0-9a-f]{32}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
FORMATS = ("auto", "hex", "csv", "te")
_PDQ_TYPES = {"pdq", "hash_pdq", "pdqsignal", "photo_pdq", "image_pdq"}
_MD5_TYPES = {"md5", "hash_md5", "video_md5", "videomd5", "photo_md5", "md5signal"}


@dataclass
class ListEntry:
    ref: str
    kind: str  # "image" (PDQ), "video" (frames), "exact" (md5/sha256 only)
    line: int
    pdq: bytes | None = None
    quality: int | None = None
    md5: str | None = None
    sha256: str | None = None
    list_name: str | None = None
    category: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    frames: list[tuple[float, bytes, int | None]] = field(default_factory=list)
    # bank variants and regions of an image: (name, pdq, quality) — hashes only
    variants: list[tuple[str, bytes, int | None]] = field(default_factory=list)


def _bad(path: Path, line: int, msg: str) -> MediaError:
    return MediaError(f"{path}:{line}: {msg}")


def _pdq(path: Path, line: int, value: str) -> bytes:
    v = value.strip().lower()
    if not PDQ_HEX_RE.match(v):
        raise _bad(path, line, f"not a PDQ hash (64 hex characters): {value.strip()[:70]!r}")
    return bytes.fromhex(v)


def detect_format(path: Path, head: str) -> str:
    first = next((ln.strip() for ln in head.splitlines() if ln.strip() and not ln.startswith("#")), "")
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson") or first.startswith(("{", "[")):
        return "te"
    if path.suffix.lower() == ".csv" or "," in first:
        return "csv"
    if re.match(r"^[a-z_]+\s+[0-9a-fA-F]+$", first):
        return "te"
    return "hex"


def read_list(path: str | Path, fmt: str = "auto") -> list[ListEntry]:
    path = Path(path)
    if fmt not in FORMATS:
        raise MediaError(f"unknown list format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if not path.is_file():
        raise MediaError(f"{path}: hash list not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MediaError(f"{path}: not a UTF-8 text file") from None
    if fmt == "auto":
        fmt = detect_format(path, text[:4096])
    entries = {"hex": _read_hex, "csv": _read_csv, "te": _read_te}[fmt](path, text)
    if not entries:
        raise MediaError(f"{path}: no hashes found")
    return entries


def _read_hex(path: Path, text: str) -> list[ListEntry]:
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        h = _pdq(path, n, s)
        out.append(ListEntry(ref=h.hex(), kind="image", line=n, pdq=h))
    return out


def _read_csv(path: Path, text: str) -> list[ListEntry]:
    rows = csv.reader(text.splitlines())
    try:
        header = [h.strip().lower() for h in next(rows)]
    except StopIteration:
        raise MediaError(f"{path}: empty CSV") from None
    if not ({"pdq_hex", "md5", "sha256"} & set(header)):
        raise MediaError(f"{path}:1: CSV header has no pdq_hex, md5 or sha256 column (got {','.join(header)[:80]})")
    known = {"pdq_hex", "quality", "md5", "sha256", "list", "category", "source", "entry", "id", "timestamp", "variant"}
    out: list[ListEntry] = []
    videos: dict[tuple[str | None, str], ListEntry] = {}
    images: dict[tuple[str | None, str], ListEntry] = {}
    pending: list[tuple[int, tuple[str | None, str], str, bytes, int | None]] = []
    for n, row in enumerate(rows, 2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise _bad(path, n, f"{len(row)} fields, header has {len(header)}")
        rec = dict(zip(header, (c.strip() for c in row)))
        pdq = _pdq(path, n, rec["pdq_hex"]) if rec.get("pdq_hex") else None
        quality = None
        if rec.get("quality"):
            try:
                quality = int(float(rec["quality"]))
            except ValueError:
                raise _bad(path, n, f"quality is not a number: {rec['quality'][:30]!r}") from None
        md5 = rec.get("md5", "").lower() or None
        sha = rec.get("sha256", "").lower() or None
        if md5 and not MD5_RE.match(md5):
            raise _bad(path, n, f"not an MD5 (32 hex characters): {md5[:40]!r}")
        if sha and not SHA256_RE.match(sha):
            raise _bad(path, n, f"not a SHA-256 (64 hex characters): {sha[:70]!r}")
        if pdq is None and not md5 and not sha:
            raise _bad(path, n, "row has no pdq_hex, md5 or sha256 value")
        meta = {k: v for k, v in rec.items() if k not in known and v}
        ref = rec.get("entry") or rec.get("id") or ""
        list_name = rec.get("list") or None
        variant = rec.get("variant", "")
        if variant and variant != "original":
            if pdq is None:
                raise _bad(path, n, f"variant row {variant!r} needs a pdq_hex")
            key = ref or rec.get("path") or md5 or ""
            if not key:
                raise _bad(path, n, f"variant row {variant!r} needs an entry, id, path or md5 naming its image")
            pending.append((n, (list_name, key), variant, pdq, quality))
            continue
        if rec.get("timestamp"):
            try:
                ts = float(rec["timestamp"])
            except ValueError:
                raise _bad(path, n, f"timestamp is not a number: {rec['timestamp'][:30]!r}") from None
            if pdq is None:
                raise _bad(path, n, "a video frame row needs a pdq_hex")
            vref = ref or md5 or rec.get("path") or ""
            if not vref:
                raise _bad(path, n, "a video frame row needs an entry, id, md5 or path to group frames")
            entry = videos.get((list_name, vref))
            if entry is None:
                entry = ListEntry(ref=vref, kind="video", line=n, md5=md5, sha256=sha, list_name=list_name,
                                  category=rec.get("category", ""), source=rec.get("source", ""), metadata=meta)
                videos[(list_name, vref)] = entry
                out.append(entry)
            entry.frames.append((ts, pdq, quality))
            continue
        entry = ListEntry(
            ref=ref or rec.get("path") or (pdq.hex() if pdq else (md5 or sha or "")), kind="image" if pdq else "exact", line=n,
            pdq=pdq, quality=quality, md5=md5, sha256=sha, list_name=list_name,
            category=rec.get("category", ""), source=rec.get("source", ""), metadata=meta,
        )
        out.append(entry)
        if pdq is not None:
            for k in {entry.ref, rec.get("path", ""), md5 or ""} - {""}:
                images.setdefault((list_name, k), entry)
    for n, key, variant, pdq, quality in pending:
        entry = images.get(key)
        if entry is None:
            raise _bad(path, n, f"variant row {variant!r}: no image row for {key[1][:60]!r} in this list")
        entry.variants.append((variant, pdq, quality))
    return out


def _te_object(path: Path, n: int, obj: Any, skipped: list[int]) -> ListEntry | None:
    if not isinstance(obj, dict):
        raise _bad(path, n, "expected a JSON object")
    value = next((obj[k] for k in ("signal_value", "pdq", "raw_indicator", "indicator", "hash") if obj.get(k)), None)
    if value is None:
        raise _bad(path, n, "JSON object has no signal_value/pdq/raw_indicator/indicator/hash field")
    kind = str(next((obj[k] for k in ("signal_type", "type", "indicator_type", "td_indicator_type") if obj.get(k)), "pdq"))
    kind = kind.lower()
    ref = str(next((obj[k] for k in ("id", "bank_content_id", "content_id") if obj.get(k) is not None), ""))
    tags = obj.get("tags") or []
    meta = {"tags": ",".join(map(str, tags)) if isinstance(tags, list) else str(tags)} if tags else {}
    if kind in _PDQ_TYPES:
        h = _pdq(path, n, str(value))
        return ListEntry(ref=ref or h.hex(), kind="image", line=n, pdq=h, metadata=meta,
                         category=str(obj.get("category", "")), source=str(obj.get("source", "")))
    if kind in _MD5_TYPES:
        v = str(value).strip().lower()
        if not MD5_RE.match(v):
            raise _bad(path, n, f"not an MD5 (32 hex characters): {v[:40]!r}")
        return ListEntry(ref=ref or v, kind="exact", line=n, md5=v, metadata=meta)
    skipped.append(n)
    return None


def _read_te(path: Path, text: str) -> list[ListEntry]:
    out: list[ListEntry] = []
    skipped: list[int] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _bad(path, exc.lineno, f"invalid JSON ({exc.msg})") from None
        if isinstance(items, dict) and "data" in items:
            items = items["data"]
        for i, obj in enumerate(items, 1):
            e = _te_object(path, i, obj, skipped)
            if e:
                out.append(e)
        return out
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("{"):
            try:
                obj = json.loads(s)
            except json.JSONDecodeError as exc:
                raise _bad(path, n, f"invalid JSON ({exc.msg})") from None
            e = _te_object(path, n, obj, skipped)
        else:
            parts = s.split()
            if len(parts) != 2:
                raise _bad(path, n, f"expected '<signal_type> <hash>', got {s[:70]!r}")
            e = _te_object(path, n, {"signal_type": parts[0], "signal_value": parts[1]}, skipped)
        if e:
            out.append(e)
    return out
