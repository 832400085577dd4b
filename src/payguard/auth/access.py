"""`Access`: the keys, the authenticator, the rate limiter and the audit log of one data
directory, and the two changes to keys that must be audited together with them."""

from collections.abc import Iterable
from pathlib import Path

from payguard.auth.audit import AuditLog
from payguard.auth.keys import (
    AUTH_DB,
    ApiKey,
    Authenticator,
    KeyStore,
    NewKey,
    SqliteKeyStore,
    create_key,
)
from payguard.auth.ratelimit import RateLimiter
from payguard.auth.scopes import Scope
from payguard.types import EpochMs


class Access:
    """Who may do what (keys), how often (limiter), and what they did (audit)."""

    def __init__(
        self,
        keys: KeyStore,
        audit: AuditLog,
        limiter: RateLimiter,
        extra_keys: Iterable[NewKey] = (),
    ) -> None:
        self.keys = keys
        self.audit = audit
        self.limiter = limiter
        self.authenticator = Authenticator(keys, extra_keys)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        rate_per_s: int,
        burst: int,
        extra_keys: Iterable[NewKey] = (),
    ) -> "Access":
        """Keys and audit log in `<data_dir>/auth.db` (created on first use)."""
        path = data_dir / AUTH_DB
        return cls(SqliteKeyStore(path), AuditLog(path), RateLimiter(rate_per_s, burst), extra_keys)

    def create_key(
        self,
        scopes: Iterable[Scope],
        *,
        name: str,
        actor: str,
        now_ms: EpochMs,
        expires_ms: EpochMs | None = None,
        rate_per_s: int | None = None,
        burst: int | None = None,
    ) -> NewKey:
        """A new key, audited as `key.create` (scopes and expiry; never the secret)."""
        new = create_key(
            self.keys,
            scopes,
            name=name,
            now_ms=now_ms,
            expires_ms=expires_ms,
            rate_per_s=rate_per_s,
            burst=burst,
        )
        after = {"name": new.key.name, "scopes": list(new.key.scopes), "expires_ms": expires_ms}
        self.audit.record(actor, "key.create", new.key.key_id, None, after, at_ms=now_ms)
        return new

    def revoke_key(self, key_id: str, *, actor: str, now_ms: EpochMs) -> ApiKey:
        """Revoke `key_id` (KeyChangeError if unknown or already revoked), audited."""
        key = self.keys.revoke(key_id, now_ms)
        before, after = {"state": "active"}, {"state": "revoked", "name": key.name}
        self.audit.record(actor, "key.revoke", key_id, before, after, at_ms=now_ms)
        return key

    def close(self) -> None:
        self.keys.close()
        self.audit.close()
