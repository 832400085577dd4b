"""Console sessions: a signed cookie, and the CSRF token that goes with it.

The cookie holds `login.role.expires_ms.nonce` and an HMAC-SHA256 of it under the
console's secret (`<data_dir>/console.key`, 32 random bytes made on first use, mode
0600): the server keeps no session table, and a cookie cannot be forged or altered
without the key. It is HttpOnly (no script reads it), SameSite=Strict (no other site's
page sends it) and scoped to `/console`; Secure when the console is served over HTTPS.

Every state-changing request must also carry the session's CSRF token (a hidden `csrf`
form field, or the `X-CSRF-Token` header htmx sends): HMAC of the cookie's nonce under a
second derived key, so it is tied to one session and worthless in another.
"""

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final

import msgspec

from payguard.auth import Role, parse_role
from payguard.types import EpochMs

COOKIE: Final = "payguard_console"
SECRET_FILE: Final = "console.key"
SESSION_MS: Final = 8 * 3_600_000
"""A working day: after it the analyst logs in again."""


class Session(msgspec.Struct, frozen=True):
    login: str
    role: Role
    expires_ms: EpochMs
    nonce: str


def load_secret(data_dir: Path) -> bytes:
    """The console's signing key, created (0600) on first use."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 32:
        raise ValueError(f"{path}: the console key must hold at least 32 bytes")
    return key


class Signer:
    """Issues, reads and checks sessions under one secret."""

    def __init__(self, secret: bytes) -> None:
        self._cookie_key = hmac.new(secret, b"payguard console cookie", hashlib.sha256).digest()
        self._csrf_key = hmac.new(secret, b"payguard console csrf", hashlib.sha256).digest()

    def issue(self, login: str, role: Role, now_ms: EpochMs) -> tuple[Session, str]:
        session = Session(login, role, now_ms + SESSION_MS, secrets.token_urlsafe(16))
        body = f"{login}.{role}.{session.expires_ms}.{session.nonce}"
        return session, f"{body}.{self._sign(body)}"

    def read(self, cookie: str | None, now_ms: EpochMs) -> Session | None:
        """The session a cookie carries, or None if it is missing, forged or expired."""
        if not cookie or cookie.count(".") < 4:
            return None
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        login, role, expires, nonce = body.rsplit(".", 3)
        if not expires.isdigit() or int(expires) <= now_ms:
            return None
        try:
            return Session(login, parse_role(role), int(expires), nonce)
        except ValueError:
            return None

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._csrf_key, session.nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.csrf_token(session))

    def _sign(self, body: str) -> str:
        return hmac.new(self._cookie_key, body.encode(), hashlib.sha256).hexdigest()
