"""Console users: analysts, leads and admins who log in with a password.

Unlike an API key (256 random bits, so one SHA-256 suffices, keys.py), a password is
guessable, so the store keeps only a slow, salted hash: `hashlib.scrypt` with n=2**14,
r=8, p=1 (about 16 MiB and tens of ms per check), which makes a stolen `users` table
expensive to guess through. Users live beside the keys in `auth.db`.

A role is a named bundle of the API's scopes (`ROLE_SCOPES`): the console checks a page's
scope against the user's role with the same `grants` rule the API applies to keys.
"""

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Final, Literal, get_args

import msgspec

from payguard.auth.keys import connect
from payguard.auth.scopes import Scope, grants
from payguard.types import EpochMs

Role = Literal["analyst", "lead", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
ROLE_SCOPES: Final[dict[Role, tuple[Scope, ...]]] = {
    "analyst": ("decisions:read", "labels:write", "holds:write", "cases:*", "lists:write"),
    "lead": (
        "decisions:read",
        "labels:write",
        "holds:write",
        "cases:*",
        "lists:write",
        "rules:admin",
    ),
    "admin": ("admin",),
}
"""Analysts work cases (read decisions and cases, label, release or revoke holds, put
entities on lists); leads also publish and roll back rules; admins may do everything."""
MIN_PASSWORD_CHARS: Final = 10
_LOGIN = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_DUMMY_SALT: Final = b"\0" * 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    login      TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    salt       BLOB NOT NULL,
    hash       BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
"""


class User(msgspec.Struct, frozen=True):
    login: str
    role: Role
    created_ms: EpochMs

    @property
    def scopes(self) -> tuple[Scope, ...]:
        return ROLE_SCOPES[self.role]

    def allows(self, scope: str) -> bool:
        return grants(self.scopes, scope)


class UserError(ValueError):
    """A bad login, role or password, or a login already taken; `field` names which."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def parse_role(text: str) -> Role:
    for role in ROLES:
        if text == role:
            return role
    raise UserError("role", f"unknown role {text[:40]!r}; expected one of {', '.join(ROLES)}")


def password_hash(password: str, salt: bytes) -> bytes:
    """scrypt of the password: deliberately slow (see the module docstring)."""
    return hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )


class UserStore:
    """The `users` table of `auth.db`."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(_SCHEMA)

    def create(self, login: str, role: Role, password: str, *, now_ms: EpochMs) -> User:
        """A new user, or UserError naming the field that is wrong."""
        if not _LOGIN.fullmatch(login):
            raise UserError("login", "2-64 of a-z 0-9 . _ -, starting with a letter or digit")
        if len(password) < MIN_PASSWORD_CHARS:
            raise UserError("password", f"at least {MIN_PASSWORD_CHARS} characters")
        salt = secrets.token_bytes(16)
        digest = password_hash(password, salt)
        try:
            with self._lock, self._db:
                self._db.execute(
                    "INSERT INTO users (login, role, salt, hash, created_ms) VALUES (?,?,?,?,?)",
                    (login, role, salt, digest, now_ms),
                )
        except sqlite3.IntegrityError:
            raise UserError("login", f"{login!r} already exists") from None
        return User(login, role, now_ms)

    def get(self, login: str) -> User | None:
        with self._lock:
            row = self._db.execute(
                "SELECT login, role, created_ms FROM users WHERE login = ?", (login,)
            ).fetchone()
        return None if row is None else User(row[0], parse_role(row[1]), row[2])

    def verify(self, login: str, password: str) -> User | None:
        """The user if the password is theirs, else None. An unknown login costs the same
        scrypt as a wrong password, so timing does not tell which logins exist."""
        with self._lock:
            row = self._db.execute(
                "SELECT login, role, created_ms, salt, hash FROM users WHERE login = ?",
                (login,),
            ).fetchone()
        salt, stored = (_DUMMY_SALT, b"") if row is None else (bytes(row[3]), bytes(row[4]))
        if not hmac.compare_digest(password_hash(password, salt), stored):
            return None
        return User(row[0], parse_role(row[1]), row[2])

    def list(self) -> list[User]:
        with self._lock:
            rows = self._db.execute(
                "SELECT login, role, created_ms FROM users ORDER BY login"
            ).fetchall()
        return [User(r[0], parse_role(r[1]), r[2]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
