"""The durable outbox: every webhook delivery and every attempt at it, in SQLite.

A delivery is one webhook body for one endpoint. It is written `pending` (with the event
that caused it, at the engine's flush), tried by the dispatcher until the endpoint answers
2xx (`delivered`) or its attempts or age run out (`failed`), and a failed one can be sent
again by hand (`retry`). Because the outbox is a file in the data directory, a restart
finds every pending delivery where it was and the dispatcher resumes it. Ids are derived
from what the delivery is about (see `notifier.delivery_id`), so writing the same delivery
twice — a decision recorded again after a crash — keeps the first.

One connection, shared by the API's thread and the dispatcher's, behind a lock: each
operation is a few rows, and the HTTP requests happen outside it.
"""

import sqlite3
import threading
from pathlib import Path
from typing import Any, Literal

import msgspec

from payguard.types import EpochMs

DeliveryState = Literal["pending", "delivered", "failed"]
DELIVERY_STATES: tuple[DeliveryState, ...] = ("pending", "delivered", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id      TEXT PRIMARY KEY,
    type             TEXT NOT NULL,
    url              TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             BLOB NOT NULL,
    created_ms       INTEGER NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    round_attempts   INTEGER NOT NULL DEFAULT 0,
    round_started_ms INTEGER NOT NULL,
    last_status      INTEGER,
    last_error       TEXT,
    finished_ms      INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_ms);
CREATE INDEX IF NOT EXISTS deliveries_created ON deliveries (created_ms);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (delivery_id),
    number      INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    status      INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, number)
);
"""
_COLUMNS = (
    "delivery_id, type, url, subject, created_ms, state, attempts, next_attempt_ms, "
    "round_attempts, round_started_ms, last_status, last_error, finished_ms"
)


class NewDelivery(msgspec.Struct, frozen=True):
    """A delivery about to be written: the signed body is fixed now, the signature is
    computed at each attempt (its timestamp is the attempt's time)."""

    delivery_id: str
    type: str
    url: str
    subject: str
    """The decision's event_id the webhook is about."""
    body: bytes
    created_ms: EpochMs


class Attempt(msgspec.Struct, frozen=True, omit_defaults=True):
    """One POST: the HTTP status if the endpoint answered, else the error, and how long it
    took (wall-clock ms, the timeout included)."""

    number: int
    at_ms: EpochMs
    duration_ms: int
    status: int | None = None
    error: str | None = None


class Delivery(msgspec.Struct, frozen=True):
    """A delivery as it stands. `attempts` counts every attempt; a manual retry starts a
    new round, whose attempts and age (`round_*`) the retry limits apply to."""

    delivery_id: str
    type: str
    url: str
    subject: str
    created_ms: EpochMs
    state: DeliveryState
    attempts: int
    next_attempt_ms: EpochMs
    round_attempts: int
    round_started_ms: EpochMs
    last_status: int | None
    last_error: str | None
    finished_ms: EpochMs | None


class OutboxError(ValueError):
    """A delivery cannot change as asked: unknown id (404) or not failed (409)."""

    def __init__(self, delivery_id: str, reason: str, status: int) -> None:
        super().__init__(f"delivery {delivery_id!r}: {reason}")
        self.delivery_id = delivery_id
        self.reason = reason
        self.status = status


class Outbox:
    """Deliveries and attempts in `path` (WAL; committed per operation)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def write(self, deliveries: list[NewDelivery]) -> None:
        """Make new deliveries durable and due now, in one transaction; an id already
        written is left as it is."""
        rows = [
            (d.delivery_id, d.type, d.url, d.subject, d.body, d.created_ms, d.created_ms)
            for d in deliveries
        ]
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO deliveries (delivery_id, type, url, subject, body, "
                "created_ms, state, next_attempt_ms, round_started_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?6)",
                rows,
            )

    def due(self, now_ms: EpochMs, limit: int) -> list[tuple[Delivery, bytes]]:
        """Pending deliveries whose next attempt is due, oldest due first, with bodies."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS}, body FROM deliveries WHERE state = 'pending' "
                "AND next_attempt_ms <= ? ORDER BY next_attempt_ms, created_ms LIMIT ?",
                (now_ms, limit),
            ).fetchall()
        return [(_delivery(row[:-1]), row[-1]) for row in rows]

    def next_due_ms(self) -> EpochMs | None:
        """When the earliest pending delivery is due (None: nothing pending)."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_attempt_ms) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
        return None if row[0] is None else int(row[0])

    def record(
        self,
        delivery: Delivery,
        attempt: Attempt,
        state: DeliveryState,
        next_attempt_ms: EpochMs,
    ) -> Delivery:
        """Store one attempt and what follows from it, in one transaction."""
        finished = None if state == "pending" else attempt.at_ms + attempt.duration_ms
        done = msgspec.structs.replace(
            delivery,
            state=state,
            attempts=delivery.attempts + 1,
            round_attempts=delivery.round_attempts + 1,
            next_attempt_ms=next_attempt_ms,
            last_status=attempt.status,
            last_error=attempt.error,
            finished_ms=finished,
        )
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?)",
                (
                    delivery.delivery_id,
                    attempt.number,
                    attempt.at_ms,
                    attempt.status,
                    attempt.error,
                    attempt.duration_ms,
                ),
            )
            self._store(done)
        return done

    def _store(self, d: Delivery) -> None:
        self._db.execute(
            "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_ms = ?, "
            "round_attempts = ?, round_started_ms = ?, last_status = ?, last_error = ?, "
            "finished_ms = ? WHERE delivery_id = ?",
            (
                d.state,
                d.attempts,
                d.next_attempt_ms,
                d.round_attempts,
                d.round_started_ms,
                d.last_status,
                d.last_error,
                d.finished_ms,
                d.delivery_id,
            ),
        )

    def get(self, delivery_id: str) -> Delivery | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE delivery_id = ?", (delivery_id,)
            ).fetchone()
        return None if row is None else _delivery(row)

    def body(self, delivery_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM deliveries WHERE delivery_id = ?", (delivery_id,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def attempts(self, delivery_id: str) -> list[Attempt]:
        """Every attempt at one delivery, first first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT number, at_ms, duration_ms, status, error FROM attempts "
                "WHERE delivery_id = ? ORDER BY number",
                (delivery_id,),
            ).fetchall()
        return [Attempt(*row) for row in rows]

    def find(
        self, *, state: DeliveryState | None = None, subject: str | None = None, limit: int
    ) -> list[Delivery]:
        """Deliveries newest first, optionally in one state or about one event."""
        query = f"SELECT {_COLUMNS} FROM deliveries"
        args: list[str | int] = []
        where = []
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if subject is not None:
            where.append("subject = ?")
            args.append(subject)
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY created_ms DESC, delivery_id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, [*args, limit]).fetchall()
        return [_delivery(row) for row in rows]

    def retry(self, delivery_id: str, now_ms: EpochMs) -> Delivery:
        """Send a failed delivery again from now, with a fresh round of attempts (raises
        OutboxError: 404 unknown, 409 pending or already delivered)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE delivery_id = ?", (delivery_id,)
            ).fetchone()
            if row is None:
                raise OutboxError(delivery_id, "no such delivery", 404)
            delivery = _delivery(row)
            if delivery.state != "failed":
                raise OutboxError(delivery_id, f"is {delivery.state}, not failed", 409)
            again = msgspec.structs.replace(
                delivery,
                state="pending",
                next_attempt_ms=now_ms,
                round_attempts=0,
                round_started_ms=now_ms,
                finished_ms=None,
            )
            self._store(again)
        return again

    def counts(self) -> dict[DeliveryState, int]:
        """Deliveries per state (for /metrics)."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            found = dict(rows.fetchall())
        return {state: int(found.get(state, 0)) for state in DELIVERY_STATES}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _delivery(row: Any) -> Delivery:
    return Delivery(*row)
