"""Postgres recorder: the event log and decisions of workers that scale out.

The same contract as the SQLite recorder, with the same crash guarantees:

- **Group commit.** Records are queued in memory and made durable by one transaction per
  commit (`seal` + `commit_sealed` on the writer connection, `COPY` of the whole batch;
  Postgres' `synchronous_commit=on` syncs its WAL before the commit returns). The HTTP
  server answers a request only after the commit holding its event returned
  (payguard.api.commits), so an answered event is in the log whatever process dies next.
- **Duplicates across workers.** The unique index on `event_id` is the last word: a
  commit that meets an id another worker recorded first rolls back whole and raises
  `DuplicateRecordError` naming the ids (the engine answers the recorded decision).
- **Sequence numbers from a shared sequence, in blocks.** `append` must number an event
  at once, without a round trip: each recorder takes a block of `SEQ_BLOCK` numbers with
  one `nextval` (the sequence steps by the block) and hands them out in order. Numbers
  are unique across workers and increase within one, but the log as a whole is not in
  commit order and has gaps (a restarted worker starts a new block). Nothing here needs
  more: `events_after` replays a whole log (`payguard rebuild-state`) in sequence order,
  and listings page by sequence number.

Decisions are stored as SQLite stores them (payguard.store.rows): msgpack rows whose
feature values are named by a feature set. A set's id is a hash of its names, so every
worker numbers the same set alike and inserts it with `ON CONFLICT DO NOTHING`.
"""

import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol

import msgspec
import psycopg

from payguard.decision import Decision
from payguard.events import Event
from payguard.store.base import (
    DuplicateRecordError,
    LogFilter,
    PendingRows,
    RecordError,
    SealedRecords,
    StoredDecision,
    as_recorded,
)
from payguard.store.rows import Row, decision_of, stored_row

SEQ_BLOCK: Final = 1_000
"""Sequence numbers one `nextval` reserves for one recorder."""
ONE_STATEMENT: Final = 4
"""Batches up to this many events commit as one INSERT statement in autocommit (one
round trip, atomic as any statement is: half the client CPU of BEGIN, COPY, COMMIT for
one event); larger ones by COPY, whose cost per row is a fifth of a bound parameter
list's (docs/benchmarks.md)."""
PAGE: Final = 2_000
"""Rows one query of a scan fetches (scans page by sequence number, never hold a cursor)."""
_COLUMNS: Final = (
    "seq, event_id, ts, type, user_id, payload, payload_hash, action, decision, feature_set"
)
_SCHEMA: Final = f"""
CREATE SEQUENCE IF NOT EXISTS events_seq INCREMENT BY {SEQ_BLOCK} START WITH 1;
CREATE TABLE IF NOT EXISTS feature_sets (
    id    BIGINT PRIMARY KEY,
    names BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq          BIGINT PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    ts           BIGINT NOT NULL,
    type         TEXT NOT NULL,
    user_id      TEXT,
    payload      BYTEA NOT NULL,
    payload_hash BYTEA NOT NULL,
    action       TEXT NOT NULL,
    decision     BYTEA NOT NULL,
    feature_set  BIGINT
);
CREATE TABLE IF NOT EXISTS write_probe (body BYTEA)
"""
_SCHEMA_LOCK: Final = 0x70617967  # "payg": workers starting together create it once


class Companion(Protocol):
    """A book whose queued rows commit in the log's transaction (the hold book)."""

    def seal(self) -> Callable[[Any], None] | None:
        """What writes the queue inside the next commit (given the psycopg connection),
        or None when nothing is queued; sealed rows stay visible to the book's reads."""
        ...

    def committed(self) -> None:
        """The oldest sealed rows are committed."""
        ...


class PostgresRecorder(PendingRows):
    """The event log in Postgres at `dsn` (psycopg 3), in `schema` if given."""

    on_disk = True
    remote = True

    def __init__(self, dsn: str, *, schema: str | None = None) -> None:
        self._dsn = dsn
        self._schema = schema
        self._db = self._connect()
        """Reads and bulk loads, on the owner's thread."""
        self._writer = self._connect()
        """Commits of sealed records (`commit_sealed`, maybe on a writer thread)."""
        self._create_schema()
        self.companions: list[Companion] = []
        """Books written in the same transaction as the events (holds)."""
        self._encode_row = msgspec.msgpack.Encoder().encode
        self._decode_row = msgspec.msgpack.Decoder(Row).decode
        self._decode = msgspec.json.Decoder(Event).decode
        self._names: dict[int, tuple[str, ...]] = {}
        """Feature set id → names, of every set this recorder wrote or read."""
        self._set_ids: dict[tuple[str, ...], tuple[int, bytes]] = {}
        """Names → (set id, names encoded), as `_feature_set` computes them: the id is a
        function of the names, so it is computed once per set, not per event (hashing
        the encoded names of every decision cost a few µs of each, issue 11)."""
        self._rows: list[tuple[Any, ...]] = []
        self._new_sets: list[tuple[int, bytes]] = []
        self._pending_ids: dict[str, int] = {}
        self._sealed: list[SealedRecords] = []
        self._lock = threading.Lock()
        """Guards `_names` (filled by the writer thread's commits and the owner's reads)."""
        self._loading = False
        self._durable_seq = 0
        self._next_seq = 1
        self._block_end = 1
        """Next number past the reserved block: `append` takes a new block there."""
        self.reload()

    # -- connections ------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            db = psycopg.connect(self._dsn, autocommit=True)
            db.execute("SET jit = off")  # its compile time dwarfs these short statements
            if self._schema is not None:
                name = self._schema.replace('"', "")
                db.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
                db.execute(f'SET search_path TO "{name}"')
        except psycopg.Error as exc:
            raise RecordError(f"event log at Postgres unreachable: {exc}") from exc
        return db

    def _fresh(self, db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        """`db`, or a new connection if the server dropped it (a restart, a failover)."""
        if not db.closed and not db.broken:
            return db
        return self._connect()

    def _create_schema(self) -> None:
        db = self._db
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA.split(";"):
                db.execute(statement)

    def _query(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read on the owner's connection; RecordError when it fails. A read
        that meets a dropped connection (a server restart, a failover) is tried once more
        on a new one: reads change nothing, so the retry is safe."""
        for attempt in (1, 2):
            try:
                if not self._loading:
                    self._db = self._fresh(self._db)
                return self._db.execute(sql, args).fetchall()
            except psycopg.Error as exc:
                if attempt == 1 and self._db.broken and not self._loading:
                    continue
                raise RecordError(f"event log read failed: {exc}") from exc
        raise AssertionError("unreachable")

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The main connection (reads), for companions whose tables stand beside the log;
        a new one if the server dropped it."""
        if not self._loading:
            self._db = self._fresh(self._db)
        return self._db

    # -- the recorder contract --------------------------------------------------------

    def reload(self) -> None:
        """Read the log's end again (another worker or process recorded in it)."""
        assert not self._rows and not self._sealed and not self._loading
        self._durable_seq = self._query("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0]

    def lookup(self, event_id: str) -> StoredDecision | None:
        row = self._pending_row(event_id)
        if row is None:
            found = self._query(
                "SELECT payload_hash, decision, feature_set FROM events WHERE event_id = %s",
                (event_id,),
            )
            if not found:
                return None
            payload_hash, stored, feature_set = found[0]
        else:
            payload_hash, stored, feature_set = row[6], row[8], row[9]
        decision = self._decision(stored, feature_set)
        return StoredDecision(bytes(payload_hash), as_recorded(decision))

    def get_event(self, event_id: str) -> Event | None:
        pending = self._pending_row(event_id)
        if pending is not None:
            return self._decode(pending[5])
        found = self._query("SELECT payload FROM events WHERE event_id = %s", (event_id,))
        return self._decode(found[0][0]) if found else None

    def append(self, event: Event, payload: bytes, payload_hash: bytes, decision: Decision) -> int:
        if self._next_seq >= self._block_end:
            self._reserve()
        seq = self._next_seq
        self._next_seq = seq + 1
        self._pending_ids[event.event_id] = len(self._rows)
        stored, feature_set = self._row(decision)
        self._rows.append(
            (
                seq,
                event.event_id,
                event.ts,
                event.type,
                event.user_id,
                payload,
                payload_hash,
                decision.action,
                stored,
                feature_set,
            )
        )
        return seq

    def _reserve(self) -> None:
        """Take the next block of sequence numbers (one round trip per `SEQ_BLOCK`)."""
        start = int(self._query("SELECT nextval('events_seq')")[0][0])
        self._next_seq, self._block_end = start, start + SEQ_BLOCK

    def _row(self, d: Decision) -> tuple[bytes, int | None]:
        """(decision column, feature set id); a set not seen before is queued."""
        features = d.features
        set_id = None
        if not isinstance(features, msgspec.UnsetType):
            names = tuple(features)
            known = self._set_ids.get(names)
            if known is None:
                known = self._set_ids[names] = _feature_set(names)
            set_id, encoded = known
            if set_id not in self._names:  # a read of the GIL's: the writer only adds
                with self._lock:
                    if set_id not in self._names:
                        self._names[set_id] = names
                        self._new_sets.append((set_id, encoded))
        return self._encode_row(stored_row(d)), set_id

    def _decision(self, stored: bytes, feature_set: int | None) -> Decision:
        names = None
        if feature_set is not None:
            with self._lock:
                names = self._names.get(feature_set)
            if names is None:  # written by another worker
                found = self._query("SELECT names FROM feature_sets WHERE id = %s", (feature_set,))
                names = tuple(msgspec.msgpack.decode(found[0][0]))
                with self._lock:
                    self._names[feature_set] = names
        return decision_of(self._decode_row(stored), names)

    def flush(self) -> None:
        """Commit everything queued or sealed, oldest first, on the calling thread."""
        if self._loading:
            if self._rows:
                sealed = self.seal()
                self._sealed.remove(sealed)
                try:
                    _write(self._db, sealed)
                except psycopg.Error as exc:
                    raise RecordError(f"event log load failed: {exc}") from exc
                for companion in self.companions:
                    companion.committed()
            return
        self._commit_in_order()

    def seal(self) -> SealedRecords:
        writers = [companion.seal() for companion in self.companions]
        companions = [w for w in writers if w]
        sealed = SealedRecords(self._rows, self._new_sets, companions, self._pending_ids)
        self._rows, self._new_sets, self._pending_ids = [], [], {}
        self._sealed.append(sealed)
        return sealed

    def commit_sealed(self, sealed: SealedRecords) -> None:
        """One transaction for the whole batch on the writer connection: durable when
        it returns. A duplicate event id rolls it all back (DuplicateRecordError);
        anything else raises RecordError. Safe on a writer thread."""
        if not sealed.rows:
            return
        try:
            self._writer = db = self._fresh(self._writer)
            if len(sealed.rows) <= ONE_STATEMENT and not sealed.companions:
                _insert(db, sealed)
            else:
                with db.transaction():
                    _write(db, sealed)
        except psycopg.errors.UniqueViolation as exc:
            ids = [row[1] for row in sealed.rows]
            found = self._writer.execute(
                "SELECT event_id FROM events WHERE event_id = ANY(%s)", (ids,)
            ).fetchall()
            if not found:
                raise RecordError(f"event log commit failed: {exc}") from exc
            raise DuplicateRecordError([row[0] for row in found]) from exc
        except psycopg.Error as exc:
            raise RecordError(f"event log commit failed: {exc}") from exc

    def acknowledge(self, sealed: SealedRecords) -> None:
        assert self._sealed and self._sealed[0] is sealed, "commits are acknowledged in order"
        self._sealed.pop(0)
        if sealed.rows:
            self._durable_seq = max(self._durable_seq, sealed.last_seq)
        for companion in self.companions:
            companion.committed()

    def discard_pending(self) -> None:
        """Forget queued and sealed records; their numbers are not reused (gaps are
        allowed), their new feature sets are forgotten."""
        new_sets = [s for sealed in self._sealed for s in sealed.feature_sets] + self._new_sets
        with self._lock:
            for set_id, _ in new_sets:
                self._names.pop(set_id, None)
        self._pending_ids, self._rows, self._new_sets = {}, [], []
        self._sealed.clear()

    def probe_write(self) -> None:
        """Commit a 64 KiB row and its removal: RecordError when the log cannot take a
        write now (server down, disk full, read-only standby)."""
        if self._loading:
            return
        try:
            self._db = db = self._fresh(self._db)
            with db.transaction():
                db.execute("INSERT INTO write_probe VALUES (%s)", (bytes(65536),))
                db.execute("DELETE FROM write_probe")
        except psycopg.Error as exc:
            raise RecordError(f"event log cannot be written: {exc}") from exc

    def begin_load(self) -> None:
        """Open one transaction on the main connection; flushes write into it."""
        self.flush()
        self._db.autocommit = False
        self._loading = True

    def end_load(self, *, commit: bool) -> None:
        if not self._loading:
            return
        try:
            if commit:
                self.flush()
                self._db.commit()
                self._durable_seq = max(self._durable_seq, self._next_seq - 1)
            else:
                self._db.rollback()
                self.discard_pending()
        finally:
            self._db.autocommit = True
            self._loading = False

    def last_seq(self) -> int:
        return self._durable_seq

    def events_after(self, seq: int) -> Iterator[tuple[int, Event, str]]:
        """Committed events past `seq`, in sequence order, a page at a time."""
        decode = self._decode
        while True:
            rows = self._query(
                "SELECT seq, payload, action FROM events WHERE seq > %s ORDER BY seq LIMIT %s",
                (seq, PAGE),
            )
            for seq, payload, action in rows:
                yield seq, decode(payload), action
            if len(rows) < PAGE:
                return

    def newest(
        self, before_seq: int | None, filters: LogFilter
    ) -> Iterator[tuple[int, Event, Decision]]:
        """Committed records newest first (every worker's), a page at a time."""
        where, args = _where(filters)
        top = before_seq
        while True:
            bound = ["seq < %s"] if top is not None else []
            clause = " AND ".join([*where, *bound]) or "TRUE"
            query = (
                "SELECT seq, payload, decision, feature_set FROM events "
                f"WHERE {clause} ORDER BY seq DESC LIMIT %s"
            )
            rows = self._query(query, [*args, *([top] if top is not None else []), PAGE])
            for seq, payload, stored, feature_set in rows:
                decision = self._decision(stored, feature_set)
                yield seq, self._decode(payload), as_recorded(decision)
            if len(rows) < PAGE:
                return
            top = rows[-1][0]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()
            self._writer.close()


def _feature_set(names: tuple[str, ...]) -> tuple[int, bytes]:
    """(set id, names encoded) of a feature set: the id is the first 64 bits of the
    encoded names' SHA-256, so every worker numbers a set alike without asking."""
    encoded = msgspec.msgpack.encode(names)
    return int.from_bytes(hashlib.sha256(encoded).digest()[:8], "big", signed=True), encoded


def _where(f: LogFilter) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for clause, value in (
        ("action = %s", f.action),
        ("ts >= %s", f.since_ms),
        ("ts < %s", f.until_ms),
        ("user_id = %s", f.user_id),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    if f.exclude_types:
        where.append("NOT (type = ANY(%s))")
        args.append(sorted(f.exclude_types))
    return where, args


def _insert(db: psycopg.Connection[Any], sealed: SealedRecords) -> None:
    """Sealed records as one statement, committed by itself (autocommit): the new
    feature sets ride along in a data-modifying CTE, so the whole batch is one round trip
    and lands whole or not at all."""
    row = "(" + ", ".join(["%s"] * 10) + ")"
    sql = f"INSERT INTO events ({_COLUMNS}) VALUES " + ", ".join([row] * len(sealed.rows))
    args: list[Any] = [value for values in sealed.rows for value in values]
    if sealed.feature_sets:
        sets = ", ".join(["(%s::bigint, %s::bytea)"] * len(sealed.feature_sets))
        sql = (
            f"WITH new_sets AS (INSERT INTO feature_sets VALUES {sets} "
            f"ON CONFLICT DO NOTHING) {sql}"
        )
        args = [value for pair in sealed.feature_sets for value in pair] + args
    db.execute(sql, args)


def _write(db: psycopg.Connection[Any], sealed: SealedRecords) -> None:
    """Sealed records into the open transaction of `db` (no commit): feature sets first,
    then one COPY of every event row, then the companions' rows."""
    with db.cursor() as cur:
        if sealed.feature_sets:
            cur.executemany(
                "INSERT INTO feature_sets VALUES (%s, %s) ON CONFLICT DO NOTHING",
                sealed.feature_sets,
            )
        with cur.copy(f"COPY events ({_COLUMNS}) FROM STDIN") as copy:
            for row in sealed.rows:
                copy.write_row(row)
    for write in sealed.companions:
        write(db)
