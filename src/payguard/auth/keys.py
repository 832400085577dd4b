"""API keys: random bearer secrets, shown once and stored only as hashes.

A secret reads `pg_live_<key_id>_<43 random url-safe characters>`: `key_id` is the short
visible prefix (8 hex digits) that `keys list`, the audit log and the logs name; the rest
is 256 random bits from `secrets`. The store keeps the SHA-256 of the whole secret, never
the secret. A slow or keyed hash (bcrypt, HMAC with a pepper) protects *guessable*
secrets such as passwords from an attacker who stole the table; a 256-bit random secret
cannot be guessed, so one SHA-256 already makes a stolen table useless, and it costs
about a microsecond per request instead of the 50-100 ms a password hash would.

`KeyStore` is the small protocol a backend implements (SQLite here, in `auth.db` in the
data directory; Postgres could follow); `Authenticator` answers "which key is this
bearer secret" for every request from an in-memory copy that it reloads whenever the
store changes, so `payguard keys revoke` in another process takes effect on the next
request.
"""

import hashlib
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Literal, Protocol

import msgspec

from payguard.auth.scopes import Scope, grants
from payguard.types import EpochMs

AUTH_DB: Final = "auth.db"
SECRET_PREFIX: Final = "pg_live_"
DEV_SECRET_PREFIX: Final = "pg_dev_"
KeyState = Literal["active", "expired", "revoked"]
Refusal = Literal["missing", "malformed", "unknown", "expired", "revoked"]


class ApiKey(msgspec.Struct, frozen=True, omit_defaults=True):
    """One key as stored and listed: everything but the secret. Times are epoch ms;
    `rate_per_s`/`burst` override the server's default rate limit for this key."""

    key_id: str
    name: str
    scopes: tuple[Scope, ...]
    created_ms: EpochMs
    expires_ms: EpochMs | None = None
    revoked_ms: EpochMs | None = None
    rate_per_s: int | None = None
    burst: int | None = None

    def state(self, now_ms: EpochMs) -> KeyState:
        if self.revoked_ms is not None:
            return "revoked"
        if self.expires_ms is not None and now_ms >= self.expires_ms:
            return "expired"
        return "active"

    def allows(self, scope: str) -> bool:
        return grants(self.scopes, scope)


class NewKey(msgspec.Struct, frozen=True):
    """A key just created and its secret: the only time the secret exists outside the
    client that received it."""

    key: ApiKey
    secret: str


class KeyChangeError(Exception):
    """An unknown key id, or a key that cannot change (already revoked)."""

    def __init__(self, key_id: str, reason: str) -> None:
        super().__init__(f"key {key_id[:40]!r}: {reason}")
        self.key_id, self.reason = key_id, reason


class AuthRefused(Exception):
    """A bearer secret that does not authenticate; `reason` is one of `Refusal`."""

    def __init__(self, reason: Refusal, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason: Refusal = reason
        self.key_id = key_id


def hash_secret(secret: str) -> str:
    """The stored form of a secret: SHA-256 hex (see the module docstring for why)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str = SECRET_PREFIX) -> tuple[str, str]:
    """(key_id, secret): 32 random bits of visible id, 256 random bits of secret."""
    key_id = secrets.token_hex(4)
    return key_id, f"{prefix}{key_id}_{secrets.token_urlsafe(32)}"


class KeyStore(Protocol):
    """Where keys live. `version` changes whenever any process changes a key, so a reader
    can cache keys and reload only when it must."""

    def add(self, key: ApiKey, secret_hash: str) -> None: ...

    def revoke(self, key_id: str, at_ms: EpochMs) -> ApiKey: ...

    def get(self, key_id: str) -> ApiKey | None: ...

    def all(self) -> list[ApiKey]:
        """Every key with its hash's owner, oldest first."""
        ...

    def hashes(self) -> dict[str, ApiKey]:
        """secret hash → key, for the authenticator's cache."""
        ...

    def version(self) -> int: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER,
    revoked_ms  INTEGER,
    rate_per_s  INTEGER,
    burst       INTEGER
);
"""
_COLUMNS = "key_id, name, scopes, created_ms, expires_ms, revoked_ms, rate_per_s, burst"
_decode_scopes = msgspec.json.Decoder(tuple[Scope, ...]).decode


def _row_key(row: Sequence[object]) -> ApiKey:
    key_id, name, scopes, created, expires, revoked, rate, burst = row
    return ApiKey(
        key_id=str(key_id),
        name=str(name),
        scopes=_decode_scopes(str(scopes)),
        created_ms=int(str(created)),
        expires_ms=None if expires is None else int(str(expires)),
        revoked_ms=None if revoked is None else int(str(revoked)),
        rate_per_s=None if rate is None else int(str(rate)),
        burst=None if burst is None else int(str(burst)),
    )


def connect(path: Path) -> sqlite3.Connection:
    """`auth.db` in autocommit mode with WAL and full fsync: a revocation or an audit row
    that was answered must survive a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=5000")
    return db


class SqliteKeyStore:
    """Keys in the `api_keys` table of `auth.db`; one connection behind a lock."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._lock = threading.Lock()
        self._writes = 0
        with self._lock:
            self._db.executescript(_SCHEMA)

    def add(self, key: ApiKey, secret_hash: str) -> None:
        with self._lock:
            self._db.execute(
                f"INSERT INTO api_keys (secret_hash, {_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    secret_hash,
                    key.key_id,
                    key.name,
                    msgspec.json.encode(key.scopes).decode(),
                    key.created_ms,
                    key.expires_ms,
                    key.revoked_ms,
                    key.rate_per_s,
                    key.burst,
                ),
            )
            self._writes += 1

    def revoke(self, key_id: str, at_ms: EpochMs) -> ApiKey:
        with self._lock:
            found = self._get(key_id)
            if found is None:
                raise KeyChangeError(key_id, "no such key")
            if found.revoked_ms is not None:
                raise KeyChangeError(key_id, "already revoked")
            self._db.execute("UPDATE api_keys SET revoked_ms = ? WHERE key_id = ?", (at_ms, key_id))
            self._writes += 1
            return msgspec.structs.replace(found, revoked_ms=at_ms)

    def get(self, key_id: str) -> ApiKey | None:
        with self._lock:
            return self._get(key_id)

    def _get(self, key_id: str) -> ApiKey | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)
        ).fetchone()
        return None if row is None else _row_key(row)

    def all(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_ms, key_id"
            ).fetchall()
        return [_row_key(row) for row in rows]

    def hashes(self) -> dict[str, ApiKey]:
        with self._lock:
            rows = self._db.execute(f"SELECT secret_hash, {_COLUMNS} FROM api_keys").fetchall()
        return {str(row[0]): _row_key(row[1:]) for row in rows}

    def version(self) -> int:
        """SQLite's data_version (bumped by other connections' commits) plus our own
        writes (which data_version does not count)."""
        with self._lock:
            (data_version,) = self._db.execute("PRAGMA data_version").fetchone()
            return int(data_version) * 1_000_000 + self._writes

    def close(self) -> None:
        with self._lock:
            self._db.close()


def create_key(
    store: KeyStore,
    scopes: Iterable[Scope],
    *,
    name: str,
    now_ms: EpochMs,
    expires_ms: EpochMs | None = None,
    rate_per_s: int | None = None,
    burst: int | None = None,
) -> NewKey:
    """A new key in `store`; the returned secret is never stored and cannot be shown again."""
    held = tuple(dict.fromkeys(scopes))
    if not held:
        raise ValueError("scope: a key needs at least one scope")
    if not name.strip() or len(name) > 100:
        raise ValueError("name: 1 to 100 characters")
    if expires_ms is not None and expires_ms <= now_ms:
        raise ValueError("expires: must be in the future")
    for field, value in (("rate", rate_per_s), ("burst", burst)):
        if value is not None and value < 1:
            raise ValueError(f"{field}: must be at least 1")
    key_id, secret = new_secret()
    key = ApiKey(key_id, name.strip(), held, now_ms, expires_ms, None, rate_per_s, burst)
    store.add(key, hash_secret(secret))
    return NewKey(key, secret)


class Authenticator:
    """Bearer secret → active `ApiKey`, from a cache of the store that is reloaded when
    `store.version()` moves. Keys outside the store (the development admin key) can be
    added with `extra`. Lookup is by the secret's hash, so timing reveals nothing about a
    secret's characters."""

    def __init__(self, store: KeyStore, extra: Iterable[NewKey] = ()) -> None:
        self._store = store
        self._extra = {hash_secret(new.secret): new.key for new in extra}
        self._version = -1
        self._keys: dict[str, ApiKey] = {}

    def authenticate(self, secret: str | None, now_ms: EpochMs, *, recheck: bool = True) -> ApiKey:
        """The active key for `secret`, or AuthRefused saying why not. `recheck=False`
        trusts the copy read at the last check (the caller knows the store was asked
        after this request arrived: api.access.KeyCheck)."""
        if not secret:
            raise AuthRefused("missing")
        if not secret.startswith((SECRET_PREFIX, DEV_SECRET_PREFIX)) or len(secret) > 200:
            raise AuthRefused("malformed")
        digest = hash_secret(secret)
        key = self._extra.get(digest) or self._current(recheck).get(digest)
        if key is None:
            raise AuthRefused("unknown")
        state = key.state(now_ms)
        if state != "active":
            raise AuthRefused(state, key.key_id)
        return key

    def _current(self, recheck: bool) -> dict[str, ApiKey]:
        if not recheck and self._version != -1:
            return self._keys
        version = self._store.version()
        if version != self._version:
            self._keys, self._version = self._store.hashes(), version
        return self._keys
