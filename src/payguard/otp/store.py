"""The OTP store: one row per challenge, in SQLite (`otp.db`, WAL) next to the event log.

A row holds the challenge's binding digest, the keyed hash of its code, where it was
asked from, and its state; never the code. State changes are single `UPDATE`s inside an
immediate transaction, so two verifications racing on one challenge (a server and a CLI
on the same data directory) cannot both pass it or both spend the same attempt. The
journal is synced on every commit (`synchronous=FULL`): after a power cut a spent code
must not come back to life, and OTP traffic is a trickle next to decisions.

Rows are kept for `RETENTION_MS` after they expire (what the service answers for a
late verification); the engine's event log keeps the history for good.
"""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Literal

import msgspec

from payguard.types import DAY_MS

State = Literal["live", "used", "locked", "expired", "invalidated", "superseded", "undelivered"]
RETENTION_MS: Final = DAY_MS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS challenges (
    challenge_id   TEXT PRIMARY KEY,
    send_event_id  TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    binding_digest TEXT NOT NULL,
    code_hash      BLOB NOT NULL,
    purpose        TEXT NOT NULL,
    amount         INTEGER NOT NULL,
    currency       TEXT NOT NULL,
    counterparty   TEXT NOT NULL,
    device_id      TEXT,
    session        TEXT,
    ip             TEXT,
    ref_event_id   TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    failures       INTEGER NOT NULL DEFAULT 0,
    verifications  INTEGER NOT NULL DEFAULT 0,
    state          TEXT NOT NULL,
    closed_at      INTEGER
);
CREATE INDEX IF NOT EXISTS challenges_live ON challenges (user_id, binding_digest, state);
CREATE INDEX IF NOT EXISTS challenges_expiry ON challenges (expires_at);
"""


class Challenge(msgspec.Struct, frozen=True):
    """One code as stored (only its keyed hash). `counterparty` is `merchant:<id>` or
    `payee:<id>`, for people reading the store; the binding digest is what is compared."""

    challenge_id: str
    send_event_id: str
    user_id: str
    binding_digest: str
    code_hash: bytes
    purpose: str
    amount: int
    currency: str
    counterparty: str
    device_id: str | None
    session: str | None
    ip: str | None
    ref_event_id: str | None
    created_at: int
    expires_at: int
    failures: int = 0
    verifications: int = 0
    state: State = "live"
    closed_at: int | None = None


_COLUMNS: Final = tuple(Challenge.__struct_fields__)


class OtpStore:
    """Challenges in SQLite: a file (`otp.db`) or `:memory:` for in-memory engines."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One immediate (write-locked) transaction: read, decide, update, atomically."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def insert(self, challenge: Challenge) -> None:
        """Add a live challenge; earlier live ones for the same user and binding are
        superseded (only the newest code for a transaction works), and rows past
        retention are dropped."""
        with self.transaction():
            self._db.execute(
                "UPDATE challenges SET state = 'superseded', closed_at = ? "
                "WHERE user_id = ? AND binding_digest = ? AND state = 'live'",
                (challenge.created_at, challenge.user_id, challenge.binding_digest),
            )
            self._db.execute(
                "DELETE FROM challenges WHERE expires_at < ?",
                (challenge.created_at - RETENTION_MS,),
            )
            placeholders = ", ".join("?" for _ in _COLUMNS)
            self._db.execute(
                f"INSERT INTO challenges ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                msgspec.structs.astuple(challenge),
            )

    def get(self, challenge_id: str) -> Challenge | None:
        row = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM challenges WHERE challenge_id = ?",
            (challenge_id,),
        ).fetchone()
        return None if row is None else Challenge(*row)

    def record_attempt(
        self, challenge_id: str, *, failed: bool, state: State, closed_at: int | None
    ) -> None:
        """Count one verification (and one failure if `failed`) and set the state; call
        inside `transaction()` after reading the row with `get`."""
        self._db.execute(
            "UPDATE challenges SET verifications = verifications + 1, "
            "failures = failures + ?, state = ?, closed_at = COALESCE(closed_at, ?) "
            "WHERE challenge_id = ?",
            (int(failed), state, closed_at, challenge_id),
        )

    def close_unused(self, challenge_id: str, state: State, now: int) -> None:
        """Close a challenge that was never presented (its message could not be sent)."""
        with self.transaction():
            self._db.execute(
                "UPDATE challenges SET state = ?, closed_at = ? WHERE challenge_id = ?",
                (state, now, challenge_id),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
