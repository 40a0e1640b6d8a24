"""API keys with scopes, hashed at rest, verified in microseconds.

A key looks like ``ksg_<key_id>_<secret>``: ``key_id`` (10 hex digits) is public — it names the key
in the store and in logs — and ``secret`` is 32 random bytes (256 bits, URL-safe base64). The store
keeps only ``hmac-sha256$<salt>$<digest>``: HMAC-SHA256 of the whole key under a random per-key
salt. The key itself is printed once by ``kalasag apikey create`` and never stored.

Why not scrypt/PBKDF2: slow hashes make guessing *low-entropy* secrets (passwords) expensive. A
256-bit random secret cannot be guessed whatever the hash costs, so a slow hash would only slow every
request down (scrypt ≈ 50 ms per verification would cap the service at ~20 requests/s per core). The
salt defeats precomputed tables and makes two stores' hashes of one key differ; comparison is
constant-time. On top of that, verified keys are cached in memory (keyed by SHA-256 of the presented
key, never the key itself) for ``cache_seconds``, so a request costs one SHA-256 and a dict lookup and
never touches the store; a revoked key stops working within ``cache_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from kalasag.service.store import ApiKeyRecord, Store

SCOPES: tuple[str, ...] = ("score", "read")
PREFIX = "ksg"
_KEY_RE = re.compile(r"^ksg_([0-9a-f]{10})_([A-Za-z0-9_-]{43})$")
_HASH_SCHEME = "hmac-sha256"


class AuthError(Exception):
    """Authentication (401) or authorization (403) failed; `message` is safe to show the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ApiKeyError(ValueError):
    """Bad input to `create_api_key` / `revoke_api_key` (one-line message for the CLI)."""


@dataclass(frozen=True)
class Principal:
    key_id: str
    scopes: frozenset[str]


def parse_scopes(text: str | Iterable[str]) -> tuple[str, ...]:
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    items = [s for s in items if s]
    if not items:
        raise ApiKeyError(f"--scopes: give at least one of {', '.join(SCOPES)}")
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"--scopes: unknown scope {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in items)


def hash_key(key: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hmac.new(salt, key.encode(), hashlib.sha256).hexdigest()
    return f"{_HASH_SCHEME}${salt.hex()}${digest}"


def check_hash(key: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != _HASH_SCHEME:
        return False
    expected = hmac.new(salt, key.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest)


def key_id_of(presented: str) -> str:
    """The public key id of a presented key; AuthError(401) when it is not shaped like a key."""
    m = _KEY_RE.match(presented)
    if m is None:
        raise AuthError(401, "invalid API key (expected 'Authorization: Bearer ksg_<id>_<secret>')")
    return m.group(1)


def create_api_key(store: Store, scopes: str | Iterable[str], *, now: datetime | None = None) -> tuple[str, ApiKeyRecord]:
    """Make a new key, store its hash, return (the key — show it once —, its record)."""
    wanted = parse_scopes(scopes)
    key_id = secrets.token_hex(5)
    while store.get_api_key(key_id) is not None:  # 40 bits: a clash is rare, but never overwrite a key
        key_id = secrets.token_hex(5)
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    created = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = ApiKeyRecord(key_id=key_id, key_hash=hash_key(key), scopes=wanted, created=created)
    store.put_api_key(record)
    return key, record


def revoke_api_key(store: Store, key_id: str) -> ApiKeyRecord:
    record = store.get_api_key(key_id)
    if record is None:
        raise ApiKeyError(f"no API key with id '{key_id}' in {store.url}")
    revoked = ApiKeyRecord(record.key_id, record.key_hash, record.scopes, record.created, revoked=True)
    store.put_api_key(revoked)
    return revoked


class ApiKeys:
    """Verifies presented keys against the store, with an in-memory cache of verified keys.

    Usage per request: ``principal = keys.cached(token)``; on a miss, look the record up in the store
    (``keys.key_id(token)`` → ``store.get_api_key``, serialized with the other store calls) and call
    ``keys.verify(token, record)``. Then ``keys.authorize(principal, scope)``.
    """

    def __init__(self, *, cache_seconds: float = 60.0, max_cached: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cache_seconds = cache_seconds
        self.max_cached = max_cached
        self._clock = clock
        self._cache: dict[bytes, tuple[float, Principal]] = {}

    @staticmethod
    def token(authorization: str | None) -> str:
        if not authorization:
            raise AuthError(401, "missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "malformed Authorization header: expected 'Bearer <key>'")
        return token.strip()

    key_id = staticmethod(key_id_of)

    def cached(self, token: str) -> Principal | None:
        entry = self._cache.get(hashlib.sha256(token.encode()).digest())
        if entry is None:
            return None
        expires, principal = entry
        if self._clock() >= expires:
            return None
        return principal

    def verify(self, token: str, record: ApiKeyRecord | None) -> Principal:
        if record is None or not check_hash(token, record.key_hash):
            raise AuthError(401, "invalid API key")
        if record.revoked:
            raise AuthError(401, f"API key {record.key_id} has been revoked")
        principal = Principal(record.key_id, frozenset(record.scopes))
        if len(self._cache) >= self.max_cached:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
        self._cache[hashlib.sha256(token.encode()).digest()] = (self._clock() + self.cache_seconds, principal)
        return principal

    @staticmethod
    def authorize(principal: Principal, scope: str) -> None:
        if scope not in principal.scopes:
            have = ", ".join(sorted(principal.scopes)) or "none"
            raise AuthError(403, f"API key {principal.key_id} lacks scope '{scope}' (has: {have})")
