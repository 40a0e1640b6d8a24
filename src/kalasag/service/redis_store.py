"""Redis store: several workers share one transfer log.

URL: ``redis://host:6379/0[?prefix=kalasag]``. Keys (one hash tag, so they live in one cluster slot):
``{prefix}:seq`` (counter), ``{prefix}:txn`` (set of seen txn_ids), ``{prefix}:log`` (a stream whose
entry ids are ``<seq>-0``), ``{prefix}:as:<account>`` / ``{prefix}:ar:<account>`` (lists of the seqs of
an account's transfers as sender / receiver, for `read_account`), ``{prefix}:snapshot`` (hash: seq,
blob), ``{prefix}:key:<key_id>`` (hash).

`append` is one Lua script: it first decides, reading only, which transfers are new (not in the set,
not repeated earlier in the batch), then writes them all — counter, set, stream. Redis runs a script
alone, so no other worker sees half a batch and sequence numbers are committed in order. Redis has no
rollback, so the script checks before its first write everything that could make a write fail (the
keys' types); what remains is running out of memory, which Redis refuses at the script's start when
``maxmemory`` is already reached (use ``maxmemory-policy noeviction``: an evicting policy could drop
the log).

Durability caveat: Redis acknowledges from memory. The "acknowledged ⇒ durable" promise holds only
with ``appendonly yes`` and ``appendfsync always`` (then the reply follows the fsync of the AOF); with
``everysec`` up to a second of acknowledged transfers can be lost on a power cut, and without AOF
everything since the last RDB save. The store logs a warning at open when AOF is off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import redis

from kalasag.service.store import ApiKeyRecord, UrlStore
from kalasag.service.stores import StoreError

log = logging.getLogger("kalasag.service")

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
READ_BATCH = 5000

_APPEND_LUA = """
-- refuse before writing anything if a key has the wrong type (Redis has no rollback)
local want = {'string', 'set', 'stream'}
for k = 1, 3 do
  local t = redis.call('TYPE', KEYS[k])['ok']
  if t ~= 'none' and t ~= want[k] then
    return redis.error_reply('kalasag: key ' .. KEYS[k] .. ' holds a ' .. t .. ', not a ' .. want[k])
  end
end
local n = tonumber(ARGV[1])
local out = {}
local seen = {}
local new = {}
for i = 1, n do
  local id = ARGV[1 + i]
  if seen[id] or redis.call('SISMEMBER', KEYS[2], id) == 1 then
    out[i] = 0
  else
    seen[id] = true
    new[#new + 1] = i
    out[i] = 0
  end
end
if #new > 0 then
  local seq = redis.call('INCRBY', KEYS[1], #new) - #new
  for _, i in ipairs(new) do
    seq = seq + 1
    redis.call('SADD', KEYS[2], ARGV[1 + i])
    redis.call('XADD', KEYS[3], seq .. '-0', 'r', ARGV[1 + n + i])
    redis.call('RPUSH', KEYS[4] .. ARGV[1 + 2 * n + i], seq)
    redis.call('RPUSH', KEYS[5] .. ARGV[1 + 3 * n + i], seq)
    out[i] = seq
  end
end
return out
"""


def _split_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    prefix = "kalasag"
    rest = []
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k == "prefix":
            prefix = v
        else:
            rest.append((k, v))
    if not _PREFIX_RE.match(prefix):
        raise StoreError(f"prefix '{prefix}' must be 1–64 letters, digits, '_', '.', '-'")
    return urlunsplit(parts._replace(query=urlencode(rest))), prefix


class RedisStore(UrlStore):
    def __init__(self, url: str, *, socket_timeout: float = 10.0) -> None:
        self._raw_url = url
        clean, self.prefix = _split_url(url)
        parts = urlsplit(clean)
        self.url = urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))) if parts.password else clean
        self._r = redis.Redis.from_url(clean, socket_timeout=socket_timeout, socket_connect_timeout=5.0)
        tag = "{" + self.prefix + "}"
        self.k_seq, self.k_txn, self.k_log, self.k_snap = (f"{tag}:seq", f"{tag}:txn", f"{tag}:log", f"{tag}:snapshot")
        self.k_key = f"{tag}:key:"
        self.k_sender, self.k_receiver = f"{tag}:as:", f"{tag}:ar:"
        try:
            self._r.ping()
        except redis.RedisError as exc:
            raise StoreError(f"Redis not reachable at {self.url}: {exc}") from exc
        self._append = self._r.register_script(_APPEND_LUA)
        self.aof = self._aof_setting()
        if self.aof != "always":
            log.warning("Redis at %s: appendonly/appendfsync is %s — acknowledged transfers are not on disk "
                        "(set appendonly yes, appendfsync always in production; docs/service.md)", self.url, self.aof)

    def _aof_setting(self) -> str:
        try:
            cfg = self._r.config_get("append*")
        except redis.RedisError:
            return "unknown (CONFIG GET not allowed)"
        if cfg.get(b"appendonly", cfg.get("appendonly")) in (b"no", "no"):
            return "appendonly no"
        fsync = cfg.get(b"appendfsync", cfg.get("appendfsync"))
        return fsync.decode() if isinstance(fsync, bytes) else str(fsync)

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except redis.RedisError as exc:
            raise StoreError(f"Redis error at {self.url}: {exc}") from exc

    # -- the log --------------------------------------------------------------------------------
    def append(self, transfers: Sequence[Mapping[str, Any]]) -> list[int | None]:
        if not transfers:
            return []
        ids = [str(t["txn_id"]) for t in transfers]
        blobs = [orjson.dumps(dict(t)) for t in transfers]
        senders = [str(t["sender_id"]) for t in transfers]
        receivers = [str(t["receiver_id"]) for t in transfers]
        keys = [self.k_seq, self.k_txn, self.k_log, self.k_sender, self.k_receiver]
        res = self._call(lambda: self._append(keys=keys, args=[len(ids), *ids, *blobs, *senders, *receivers]))
        return [int(s) if s else None for s in res]

    def read_account(self, side: str, account_id: str, upto: int | None = None,
                     since: int = 0, *, since_ts: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """One account's transfers on one side ("sender"/"receiver"), in log order: the scorer
        rebuilds an account from them when a transfer arrives late."""
        key = {"sender": self.k_sender, "receiver": self.k_receiver}[side] + account_id
        seqs = [int(s) for s in self._call(lambda: self._r.lrange(key, 0, -1))]
        if upto is not None or since:
            lim = (1 << 62) if upto is None else upto
            seqs = [s for s in seqs if since <= s <= lim]
        if not seqs:
            return []
        pipe = self._r.pipeline(transaction=False)
        for s in seqs:
            pipe.xrange(self.k_log, min=f"{s}-0", max=f"{s}-0")
        rows = self._call(pipe.execute)
        out = [(s, orjson.loads(r[0][1][b"r"])) for s, r in zip(seqs, rows) if r]
        return [(s, rec) for s, rec in out if int(rec["ts_epoch"]) >= since_ts] if since_ts else out

    def read_since(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
        start = f"({int(seq)}-0"
        while True:
            rows = self._call(lambda: self._r.xrange(self.k_log, min=start, max="+", count=READ_BATCH))
            for entry_id, fields in rows:
                s = int(entry_id.split(b"-")[0])
                yield s, orjson.loads(fields[b"r"])
            if len(rows) < READ_BATCH:
                return
            start = "(" + rows[-1][0].decode()

    def last_seq(self) -> int:
        v = self._call(lambda: self._r.get(self.k_seq))
        return int(v) if v else 0

    # -- snapshots ------------------------------------------------------------------------------
    def save_snapshot(self, seq: int, blob: bytes) -> None:
        self._call(lambda: self._r.hset(self.k_snap, mapping={"seq": int(seq), "blob": blob}))

    def load_snapshot(self) -> tuple[int, bytes] | None:
        seq, blob = self._call(lambda: self._r.hmget(self.k_snap, ["seq", "blob"]))
        return None if seq is None or blob is None else (int(seq), bytes(blob))

    # -- API keys -------------------------------------------------------------------------------
    def put_api_key(self, record: ApiKeyRecord) -> None:
        self._call(lambda: self._r.hset(self.k_key + record.key_id, mapping={
            "key_hash": record.key_hash, "scopes": ",".join(record.scopes), "created": record.created,
            "revoked": "1" if record.revoked else "0",
        }))

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        h = self._call(lambda: self._r.hgetall(self.k_key + key_id))
        if not h:
            return None
        scopes = tuple(s for s in h[b"scopes"].decode().split(",") if s)
        return ApiKeyRecord(key_id, h[b"key_hash"].decode(), scopes, h[b"created"].decode(), h[b"revoked"] == b"1")

    # -- housekeeping ---------------------------------------------------------------------------
    def drop(self) -> None:
        """Delete every key of this prefix (tests and teardown only)."""
        pattern = "\\{" + self.prefix + "\\}:*"
        keys = list(self._call(lambda: list(self._r.scan_iter(match=pattern, count=1000))))
        for i in range(0, len(keys), 1000):
            self._call(lambda: self._r.delete(*keys[i:i + 1000]))

    def close(self) -> None:
        self._r.close()
