"""SQLite recorder (WAL mode): the embedded default's event log and decisions.

Writes are queued and committed in one transaction per `flush`, so a batch replay pays one
commit per thousand events, while the HTTP server flushes after every request. Events are
stored tokenized (as `Event` JSON), so the file never holds a card, ID or phone number.
"""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgspec

from payguard.events import Event
from payguard.store.base import StoredDecision

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    ts           INTEGER NOT NULL,
    type         TEXT NOT NULL,
    payload      BLOB NOT NULL,
    payload_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    event_id TEXT PRIMARY KEY REFERENCES events(event_id),
    action   TEXT NOT NULL,
    body     BLOB NOT NULL
);
"""


class SQLiteRecorder:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._decode = msgspec.json.Decoder(Event).decode
        self._pending: list[tuple[int, Event, bytes, bytes, bytes, str]] = []
        """(seq, event, payload, payload_hash, decision, action) not yet committed."""
        self._pending_ids: dict[str, int] = {}
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self._durable_seq: int = row[0]
        self._next_seq = self._durable_seq + 1
        self._maybe_known: set[int] = {
            hash(event_id) for (event_id,) in self._db.execute("SELECT event_id FROM events")
        }
        """Hashes of every recorded event_id: a miss here proves the id is new without a
        query; a hit (or a rare hash collision) is confirmed against the table."""

    def lookup(self, event_id: str) -> StoredDecision | None:
        pending = self._pending_ids.get(event_id)
        if pending is not None:
            _, _, _, payload_hash, decision, _ = self._pending[pending]
            return StoredDecision(payload_hash, decision)
        if hash(event_id) not in self._maybe_known:
            return None
        row = self._db.execute(
            "SELECT e.payload_hash, d.body FROM events e JOIN decisions d USING (event_id) "
            "WHERE e.event_id = ?",
            (event_id,),
        ).fetchone()
        return StoredDecision(row[0], row[1]) if row else None

    def get_event(self, event_id: str) -> Event | None:
        pending = self._pending_ids.get(event_id)
        if pending is not None:
            return self._pending[pending][1]
        row = self._db.execute("SELECT payload FROM events WHERE event_id = ?", (event_id,))
        found = row.fetchone()
        return self._decode(found[0]) if found else None

    def append(
        self, event: Event, payload: bytes, payload_hash: bytes, decision: bytes, action: str
    ) -> int:
        seq: int = self._next_seq
        self._next_seq = seq + 1
        event_id = event.event_id
        self._maybe_known.add(hash(event_id))
        pending = self._pending
        self._pending_ids[event_id] = len(pending)
        pending.append((seq, event, payload, payload_hash, decision, action))
        return seq

    def flush(self) -> None:
        if not self._pending:
            return
        event_rows = [(seq, e.event_id, e.ts, e.type, p, h) for seq, e, p, h, _, _ in self._pending]
        decision_rows = [(e.event_id, a, d) for _, e, _, _, d, a in self._pending]
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", event_rows)
            db.executemany("INSERT INTO decisions VALUES (?, ?, ?)", decision_rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._durable_seq = self._pending[-1][0]
        self._pending.clear()
        self._pending_ids.clear()

    def discard_pending(self) -> None:
        """Forget queued records (used when a request fails before it is answered)."""
        self._next_seq = self._durable_seq + 1
        self._pending.clear()
        self._pending_ids.clear()

    def last_seq(self) -> int:
        return self._durable_seq

    def events_after(self, seq: int) -> Iterator[tuple[int, Event]]:
        cursor = self._db.execute(
            "SELECT seq, payload FROM events WHERE seq > ? ORDER BY seq", (seq,)
        )
        decode = self._decode
        for row_seq, payload in cursor:
            yield row_seq, decode(payload)

    def close(self) -> None:
        self.flush()
        self._db.close()
