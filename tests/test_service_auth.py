"""API keys: format, hashing at rest, verification, revocation, the in-memory cache, scopes."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from kalasag.service.auth import (
    ApiKeyError,
    ApiKeys,
    AuthError,
    check_hash,
    create_api_key,
    hash_key,
    key_id_of,
    parse_scopes,
    revoke_api_key,
)
from kalasag.service.store import ApiKeyRecord, Store


class DictKeyStore(Store):
    """Only the API-key part of a Store (the log methods are not used here)."""

    url = "memory://keys"

    def __init__(self) -> None:
        self.keys: dict[str, ApiKeyRecord] = {}
        self.lookups = 0

    def put_api_key(self, record: ApiKeyRecord) -> None:
        self.keys[record.key_id] = record

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        self.lookups += 1
        return self.keys.get(key_id)

    def append(self, transfers):  # pragma: no cover - unused
        raise NotImplementedError

    def read_since(self, seq):  # pragma: no cover - unused
        raise NotImplementedError

    def last_seq(self):  # pragma: no cover - unused
        raise NotImplementedError

    def save_snapshot(self, seq, blob):  # pragma: no cover - unused
        raise NotImplementedError

    def load_snapshot(self):  # pragma: no cover - unused
        raise NotImplementedError

    def close(self) -> None:
        pass


def test_created_key_is_shown_once_and_only_its_salted_hash_is_stored():
    store = DictKeyStore()
    key, record = create_api_key(store, "read,score")
    m = re.fullmatch(r"ksg_([0-9a-f]{10})_([A-Za-z0-9_-]{43})", key)
    assert m is not None
    assert record.key_id == m.group(1) and store.keys[record.key_id] == record
    assert record.scopes == ("score", "read")  # canonical order, whatever the input order
    assert key not in repr(record) and m.group(2) not in record.key_hash
    scheme, salt_hex, digest = record.key_hash.split("$")
    assert scheme == "hmac-sha256"
    # recompute by hand: HMAC-SHA256 of the whole key under the stored salt
    assert digest == hmac.new(bytes.fromhex(salt_hex), key.encode(), hashlib.sha256).hexdigest()
    # a second key gets another salt: equal keys would not even hash equal across records
    key2, record2 = create_api_key(store, "read")
    assert record2.key_hash.split("$")[1] != salt_hex and key2 != key


def test_hash_check_rejects_a_one_character_change_and_foreign_schemes():
    stored = hash_key("ksg_0123456789_" + "a" * 43, salt=b"\x01" * 16)
    assert check_hash("ksg_0123456789_" + "a" * 43, stored)
    assert not check_hash("ksg_0123456789_" + "a" * 42 + "b", stored)
    assert not check_hash("ksg_0123456789_" + "a" * 43, stored.replace("hmac-sha256", "sha1"))
    assert not check_hash("ksg_0123456789_" + "a" * 43, "garbage")


@pytest.mark.parametrize("text, expected", [("score", ("score",)), ("read , score", ("score", "read")),
                                            ("read,read", ("read",))])
def test_parse_scopes(text, expected):
    assert parse_scopes(text) == expected


@pytest.mark.parametrize("text, fragment", [("", "at least one"), ("score,admin", "unknown scope admin")])
def test_parse_scopes_errors(text, fragment):
    with pytest.raises(ApiKeyError, match=fragment):
        parse_scopes(text)


def test_key_id_of_rejects_malformed_keys_with_401():
    assert key_id_of("ksg_abcdef0123_" + "Z" * 43) == "abcdef0123"
    for bad in ("", "ksg_abc_" + "Z" * 43, "xyz_abcdef0123_" + "Z" * 43, "ksg_abcdef0123_short"):
        with pytest.raises(AuthError) as exc:
            key_id_of(bad)
        assert exc.value.status == 401


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_verified_keys_are_cached_until_the_ttl_then_revocation_bites():
    store = DictKeyStore()
    key, record = create_api_key(store, "score")
    clock = FakeClock()
    keys = ApiKeys(cache_seconds=60, clock=clock)
    assert keys.cached(key) is None
    principal = keys.verify(key, store.get_api_key(keys.key_id(key)))
    assert principal.key_id == record.key_id and principal.scopes == frozenset({"score"})
    assert keys.cached(key) == principal
    revoke_api_key(store, record.key_id)
    clock.t += 59.9
    assert keys.cached(key) == principal          # still cached: the documented revocation delay
    clock.t += 0.2
    assert keys.cached(key) is None               # expired: the next request reads the store again
    with pytest.raises(AuthError, match="revoked") as exc:
        keys.verify(key, store.get_api_key(record.key_id))
    assert exc.value.status == 401


def test_wrong_secret_for_a_known_id_is_401_and_not_cached():
    store = DictKeyStore()
    key, record = create_api_key(store, "score")
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    keys = ApiKeys()
    with pytest.raises(AuthError) as exc:
        keys.verify(forged, store.get_api_key(record.key_id))
    assert exc.value.status == 401
    assert keys.cached(forged) is None
    with pytest.raises(AuthError):
        keys.verify(key, None)  # unknown id


def test_scope_check_is_403_naming_the_missing_scope():
    store = DictKeyStore()
    key, _ = create_api_key(store, "read")
    keys = ApiKeys()
    principal = keys.verify(key, store.get_api_key(keys.key_id(key)))
    keys.authorize(principal, "read")
    with pytest.raises(AuthError, match="lacks scope 'score'") as exc:
        keys.authorize(principal, "score")
    assert exc.value.status == 403


def test_revoking_an_unknown_key_is_a_one_line_error():
    with pytest.raises(ApiKeyError, match="no API key with id 'nope'"):
        revoke_api_key(DictKeyStore(), "nope")


def test_cache_is_bounded():
    store = DictKeyStore()
    keys = ApiKeys(max_cached=3)
    made = [create_api_key(store, "read")[0] for _ in range(5)]
    for k in made:
        keys.verify(k, store.get_api_key(keys.key_id(k)))
    assert len(keys._cache) <= 3
    assert keys.cached(made[-1]) is not None  # the newest is always kept
