"""SQLite recorder (WAL mode): the embedded default's event log and decisions.

Writes are queued and committed in one transaction per `flush`, so a batch replay pays one
commit per thousand events. The HTTP server commits concurrent requests together (group
commit, payguard.api.commits): `seal` hands the queued records to a commit that runs on a
writer thread over the recorder's own writer connection (`commit_sealed`), while the
event loop goes on appending to a new queue and reading through the main connection (WAL:
readers never wait for the writer's fsync); `acknowledge` then makes them durable here.
Events are stored tokenized (as `Event` JSON), so the file never holds a card, ID and
phone number.

Other books whose rows must commit with the event that caused them (the hold book: an
exit between two commits used to lose a hold forever) register as `companions`: their
queued rows are written inside the same transaction (docs/security.md, "Durability").

Each event's row also holds its decision, in msgpack, with the feature values as a list
whose names are stored once per distinct set in `feature_sets`: a decision's JSON with
its feature names was about 1 KB, five times the event, and writing it was most of the
cost of recording. Stores written before this layout keep their decisions in a separate
`decisions` table (JSON bodies); they are opened as they are and read through it.
"""

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

from payguard.decision import Decision
from payguard.events import Event
from payguard.store.base import (
    LogFilter,
    PendingRows,
    SealedRecords,
    StoredDecision,
    as_recorded,
)
from payguard.store.rows import Row, decision_of, stored_row

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    ts           INTEGER NOT NULL,
    type         TEXT NOT NULL,
    payload      BLOB NOT NULL,
    payload_hash BLOB NOT NULL,
    action       TEXT,
    decision     BLOB,
    feature_set  INTEGER REFERENCES feature_sets(id)
);
CREATE TABLE IF NOT EXISTS feature_sets (
    id    INTEGER PRIMARY KEY,
    names BLOB NOT NULL
);
"""
_ADDED_COLUMNS = (("action", "TEXT"), ("decision", "BLOB"), ("feature_set", "INTEGER"))
"""Columns a store from before decisions moved into `events` lacks (added on open)."""


class Companion(Protocol):
    """A book whose queued rows commit in the event log's transaction."""

    def seal(self) -> Callable[[sqlite3.Connection], None]:
        """Hand what is queued to the next commit of the event log: returns the function
        that writes it inside that commit's open transaction (on the writer thread, so it
        must only read what it captured). Sealed rows stay visible to the book's reads."""
        ...

    def committed(self) -> None:
        """The oldest sealed rows are committed: forget them (they are in the table)."""
        ...


class SQLiteRecorder(PendingRows):
    on_disk = True
    remote = False

    def __init__(self, path: Path, *, synchronous: Literal["FULL", "NORMAL"] = "FULL") -> None:
        """`synchronous=FULL` syncs the WAL at every commit, so an answered request
        survives a power loss; NORMAL only survives a process crash (measured in
        docs/benchmarks.md, "Durability")."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(path, synchronous)
        self._writer = _connect(path, synchronous)
        """Commits of sealed records, alone on it (`commit_sealed`, maybe on a writer
        thread): a read on `_db` never waits for the connection's mutex during a fsync."""
        self.companions: list[Companion] = []
        """Books written in the same transaction as the events (see the module docstring)."""
        self._legacy = self._migrate()
        """Whether this store has the earlier `decisions` table to read old rows from."""
        self._encode_row = msgspec.msgpack.Encoder().encode
        self._decode_row = msgspec.msgpack.Decoder(Row).decode
        self._decode = msgspec.json.Decoder(Event).decode
        self._feature_sets: dict[tuple[str, ...], int] = {}
        self._feature_names: dict[int, tuple[str, ...]] = {}
        self._rows: list[tuple[Any, ...]] = []
        """`events` rows not yet committed, encoded when queued: the engine's objects are
        then freed while still in cache, not a thousand events later."""
        self._new_sets: list[tuple[int, bytes]] = []
        """Feature sets first used by queued records, written in the same commit."""
        self._pending_ids: dict[str, int] = {}
        """event_id → index in `_rows`."""
        self._sealed: list[SealedRecords] = []
        """Handed to commits not yet acknowledged, oldest first (see `seal`)."""
        self._loading = False
        """Inside `begin_load`'s transaction: flushes write without committing."""
        self._durable_seq = 0
        self._next_seq = 1
        self.reload()

    def reload(self) -> None:
        """Read the log's end and its feature sets again: another process (warm-up's
        checker) recorded events in it. Nothing may be queued here. The event ids are not
        read: `lookup` asks the table's unique index, and the engine keeps the recent ids
        (engine.idempotency) so that a new event needs no query."""
        assert not self._rows and not self._sealed and not self._loading
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self._durable_seq = row[0]
        self._next_seq = self._durable_seq + 1
        self._feature_sets.clear()
        self._feature_names.clear()
        for set_id, names in self._db.execute("SELECT id, names FROM feature_sets"):
            self._remember_set(set_id, tuple(msgspec.msgpack.decode(names)))

    def _migrate(self) -> bool:
        """Create or complete the schema; returns whether the legacy table exists."""
        db = self._db
        db.executescript(_SCHEMA)
        add_missing_columns(db, "events", _ADDED_COLUMNS)
        found = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'decisions'").fetchone()
        return found is not None

    @property
    def connection(self) -> sqlite3.Connection:
        """The event log's main connection (reads, bulk loads), for companions that keep
        their tables beside it."""
        return self._db

    @property
    def connections(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        """Both connections, the main one and the one commits write through (a test
        that caps the database's size caps both: `max_page_count` is per connection)."""
        return self._db, self._writer

    def _remember_set(self, set_id: int, names: tuple[str, ...]) -> None:
        self._feature_sets[names] = set_id
        self._feature_names[set_id] = names

    def lookup(self, event_id: str) -> StoredDecision | None:
        row = self._pending_row(event_id)
        if row is not None:
            decision = self._decision(self._decode_row(row[7]), row[8])
            return StoredDecision(row[5], as_recorded(decision))
        if self._legacy:
            query = (
                "SELECT e.payload_hash, e.decision, e.feature_set, d.body FROM events e "
                "LEFT JOIN decisions d USING (event_id) WHERE e.event_id = ?"
            )
        else:
            query = (
                "SELECT payload_hash, decision, feature_set, NULL FROM events WHERE event_id = ?"
            )
        row = self._db.execute(query, (event_id,)).fetchone()
        if row is None:
            return None
        payload_hash, stored, feature_set, legacy_body = row
        if stored is None:  # a row written before decisions moved into `events`
            decision = msgspec.json.decode(legacy_body, type=Decision)
        else:
            decision = self._decision(self._decode_row(stored), feature_set)
        return StoredDecision(payload_hash, as_recorded(decision))

    def get_event(self, event_id: str) -> Event | None:
        pending = self._pending_row(event_id)
        if pending is not None:
            return self._decode(pending[4])
        row = self._db.execute("SELECT payload FROM events WHERE event_id = ?", (event_id,))
        found = row.fetchone()
        return self._decode(found[0]) if found else None

    def append(self, event: Event, payload: bytes, payload_hash: bytes, decision: Decision) -> int:
        seq: int = self._next_seq
        self._next_seq = seq + 1
        event_id = event.event_id
        self._pending_ids[event_id] = len(self._rows)
        stored, feature_set = self._row(decision)
        row = (seq, event_id, event.ts, event.type, payload, payload_hash, decision.action)
        self._rows.append((*row, stored, feature_set))
        return seq

    def flush(self) -> None:
        """Commit everything queued or sealed, oldest first, on the calling thread. Not
        while a `commit_sealed` runs elsewhere (the group committer settles first). If a
        commit fails, its records stay sealed: a later flush retries them."""
        if self._loading:  # inside the load's transaction: written, durable at end_load
            if self._rows:
                sealed = self.seal()
                _write(self._db, sealed)
                self._sealed.remove(sealed)  # `last_seq` moves at `end_load`
                for companion in self.companions:
                    companion.committed()
            return
        self._commit_in_order()

    def seal(self) -> SealedRecords:
        """Hand the queued records to one commit and start a new queue: appends and reads
        go on here while `commit_sealed` writes them (on another thread, if the caller
        wants). They stay visible to `lookup` and `get_event` until `acknowledge` (or
        `discard_pending`)."""
        companions = [companion.seal() for companion in self.companions]
        sealed = SealedRecords(self._rows, self._new_sets, companions, self._pending_ids)
        self._rows, self._new_sets, self._pending_ids = [], [], {}
        self._sealed.append(sealed)
        return sealed

    def commit_sealed(self, sealed: SealedRecords) -> None:
        """Write and commit sealed records in one transaction through the writer
        connection (one fsync with synchronous=FULL). Touches nothing the owner's thread
        changes, so it may run on a writer thread; raises (and rolls back) on failure."""
        if sealed.rows:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                _write(db, sealed)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def acknowledge(self, sealed: SealedRecords) -> None:
        """The oldest sealed records are committed: they are durable (`last_seq`)."""
        assert self._sealed and self._sealed[0] is sealed, "commits are acknowledged in order"
        self._sealed.pop(0)
        if sealed.rows:
            self._durable_seq = sealed.last_seq
        for companion in self.companions:
            companion.committed()

    def begin_load(self) -> None:
        """Open one transaction for a bulk load (warm-up): flushes write into it, and
        nothing is durable, nor `last_seq` moved, until `end_load(commit=True)`. Reads on
        this recorder see the rows written so far. A crash or `end_load(commit=False)`
        leaves the log as it was before the load."""
        self.flush()
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # see `checkpoint`
        self._db.execute("BEGIN IMMEDIATE")
        self._loading = True

    def end_load(self, *, commit: bool) -> None:
        """Commit the load (queued rows included) or roll it all back."""
        if not self._loading:
            return
        if commit:
            self.flush()
            self._db.execute("COMMIT")
            self._durable_seq = self._next_seq - 1
        else:
            self._db.execute("ROLLBACK")
            self._clear()
            self._next_seq = self._durable_seq + 1
            self._feature_sets.clear()
            self._feature_names.clear()
            for set_id, names in self._db.execute("SELECT id, names FROM feature_sets"):
                self._remember_set(set_id, tuple(msgspec.msgpack.decode(names)))
        self._db.execute("PRAGMA wal_autocheckpoint=1000")  # SQLite's default
        self._loading = False

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file now. A load's commit leaves
        that to this call (or to the next commit, or the last connection's close): the
        load's log is as large as its events, and a warm-up's checker copies it while the
        loader writes its snapshot."""
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _clear(self) -> None:
        self._pending_ids = {}
        self._rows = []
        self._new_sets = []
        self._sealed.clear()

    def _row(self, d: Decision) -> tuple[bytes, int | None]:
        """(decision column, feature set id) for one decision; a feature set not seen
        before is numbered and queued, to be written in the same commit."""
        features = d.features
        set_id = None
        if not isinstance(features, msgspec.UnsetType):
            names = tuple(features)
            set_id = self._feature_sets.get(names)
            if set_id is None:
                set_id = max(self._feature_names, default=0) + 1
                self._remember_set(set_id, names)
                self._new_sets.append((set_id, msgspec.msgpack.encode(names)))
        return self._encode_row(stored_row(d)), set_id

    def _decision(self, row: Row, feature_set: int | None) -> Decision:
        names = None if feature_set is None else self._feature_names[feature_set]
        return decision_of(row, names)

    def discard_pending(self) -> None:
        """Forget queued and sealed records (their requests are not answered with a
        decision); not while a `commit_sealed` of them runs elsewhere."""
        self._next_seq = self._durable_seq + 1
        new_sets = [s for sealed in self._sealed for s in sealed.feature_sets] + self._new_sets
        for set_id, _ in new_sets:
            del self._feature_sets[self._feature_names.pop(set_id)]
        self._clear()

    def last_seq(self) -> int:
        return self._durable_seq

    def probe_write(self) -> None:
        """Commit a 64 KiB row and its removal, as readiness's write check: raises
        sqlite3.Error when the log cannot take a write now (a full disk, a read-only or
        vanished file). Skipped inside an open transaction (a warm-up's load)."""
        db = self._db
        if self._loading or db.in_transaction:
            return
        db.execute("CREATE TABLE IF NOT EXISTS write_probe (body BLOB)")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO write_probe VALUES (zeroblob(65536))")
            db.execute("DELETE FROM write_probe")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def events_after(self, seq: int) -> Iterator[tuple[int, Event, str]]:
        cursor = self._db.execute(
            "SELECT seq, payload, action FROM events WHERE seq > ? ORDER BY seq", (seq,)
        )
        decode = self._decode
        for row_seq, payload, action in cursor:
            # rows of the legacy layout keep their action in the old table: read as allowed
            yield row_seq, decode(payload), action or "allow"

    def newest(
        self, before_seq: int | None, filters: LogFilter
    ) -> Iterator[tuple[int, Event, Decision]]:
        """A newest-first scan on the primary key; the account is matched in the stored
        JSON (no index: every insert would pay for one), action and time on columns.
        Rows of the legacy layout (decision in the old table) are skipped."""
        where = ["seq <= ?", "decision IS NOT NULL"]
        args: list[int | str] = [self._durable_seq]
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        if filters.action is not None:
            where.append("action = ?")
            args.append(filters.action)
        if filters.since_ms is not None:
            where.append("ts >= ?")
            args.append(filters.since_ms)
        if filters.until_ms is not None:
            where.append("ts < ?")
            args.append(filters.until_ms)
        if filters.user_id is not None:
            where.append("json_extract(payload, '$.user_id') = ?")
            args.append(filters.user_id)
        for event_type in sorted(filters.exclude_types):
            where.append("type != ?")
            args.append(event_type)
        query = (
            "SELECT seq, payload, decision, feature_set FROM events "
            f"WHERE {' AND '.join(where)} ORDER BY seq DESC"
        )
        for seq, payload, stored, feature_set in self._db.execute(query, args):
            decision = self._decision(self._decode_row(stored), feature_set)
            yield seq, self._decode(payload), as_recorded(decision)

    def close(self) -> None:
        self.flush()
        self._db.close()
        self._writer.close()


def _connect(path: Path, synchronous: Literal["FULL", "NORMAL"]) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
    return db


def _write(db: sqlite3.Connection, sealed: SealedRecords) -> None:
    """Sealed records into the open transaction of `db` (no commit)."""
    db.executemany("INSERT INTO feature_sets VALUES (?, ?)", sealed.feature_sets)
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", sealed.rows)
    for write in sealed.companions:
        write(db)


def add_missing_columns(
    db: sqlite3.Connection, table: str, columns: Iterable[tuple[str, str]]
) -> set[str]:
    """Add to `table` the (name, type) columns a file written by an older payguard lacks;
    returns the names added (the caller may backfill them)."""
    have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    added: set[str] = set()
    for name, kind in columns:
        if name not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            added.add(name)
    return added
