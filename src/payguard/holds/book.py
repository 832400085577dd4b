"""Delayed, revocable transfers: money the policy accepted but holds for some hours.

The idea is the PBOC's 2016 rule for ATM transfers: a risky transfer is not refused (an
honest customer would only try again elsewhere) but waits, so that the owner who learns of
it — or whose loss or fraud report arrives — can take it back. A hold is placed when the
engine decides `hold`; it ends as `revoked` (by the customer through a trusted channel, by
staff, or by the owner's loss/fraud report) or `released` (by staff, or by expiry when its
time is up: a hold past `release_ts` that nobody touched reads as released).

Two books with one interface: in memory (backtests, tests) and SQL (the embedded
default: a table in the SQLite event log's database; scaled-out workers: a table beside
the Postgres event log, `PostgresHoldBook`), written in the event log's transaction, so a
restart keeps every hold and its state.
"""

import heapq
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

if TYPE_CHECKING:
    from payguard.store.postgres import PostgresRecorder
    from payguard.store.sqlite import SQLiteRecorder

HoldState = Literal["held", "released", "revoked"]
HOLD_STATES: tuple[HoldState, ...] = ("held", "released", "revoked")


class Hold(msgspec.Struct, frozen=True):
    """One held operation. Amount in fen; no PII (the event is already tokenized)."""

    hold_id: str
    event_id: str
    user_id: str | None
    type: str
    amount: int
    currency: str
    placed_ts: int
    release_ts: int
    counterparty: str | None = None
    """The payee or merchant id the money goes to."""
    state: HoldState = "held"
    resolved_ts: int | None = None
    resolved_by: str | None = None
    """`customer`, `staff`, `owner_report` or `expiry`."""
    note: str | None = None

    def as_of(self, now_ms: int) -> "Hold":
        """The hold as it stands at `now_ms`: untouched past its release time, released."""
        if self.state == "held" and now_ms >= self.release_ts:
            return msgspec.structs.replace(
                self, state="released", resolved_ts=self.release_ts, resolved_by="expiry"
            )
        return self


class HoldError(ValueError):
    """A hold cannot change as asked: unknown id (404) or no longer held (409)."""

    def __init__(self, hold_id: str, reason: str, status: int) -> None:
        super().__init__(f"hold {hold_id!r}: {reason}")
        self.hold_id = hold_id
        self.reason = reason
        self.status = status


class HoldBook(Protocol):
    def place(self, hold: Hold) -> None:
        """Record a new hold (a repeat of the same event id is ignored). Durable at the
        next `flush`, with the event that placed it."""
        ...

    def flush(self) -> None:
        """Make placed holds durable (the engine calls it when it flushes the event log)."""
        ...

    def discard_pending(self) -> None:
        """Forget holds placed since the last flush (their request failed)."""
        ...

    def get(self, hold_id: str) -> Hold | None: ...

    def find(
        self, *, user_id: str | None = None, state: HoldState | None = None, now_ms: int, limit: int
    ) -> list[Hold]:
        """Holds as of `now_ms`, newest first, optionally one account's or one state's."""
        ...

    def resolve(
        self, hold_id: str, state: HoldState, *, at_ms: int, by: str, note: str | None = None
    ) -> Hold:
        """Release or revoke a hold that is still held at `at_ms` (raises HoldError)."""
        ...

    def revoke_pending(self, user_id: str, *, at_ms: int, by: str, note: str) -> list[Hold]:
        """Revoke every hold of an account placed before and still held at `at_ms`."""
        ...

    def due(self, now_ms: int, limit: int) -> list[Hold]:
        """Holds stored as `held` whose release time is at or before `now_ms`, earliest
        first: what `expire` should mark (they already read as released)."""
        ...

    def expire(self, hold_id: str, now_ms: int) -> Hold | None:
        """Store a due hold as released by expiry (at its `release_ts`) and return it;
        None when it is not stored as held or not due (expired before, or resolved)."""
        ...

    def close(self) -> None: ...


def resolved(
    hold: Hold | None,
    hold_id: str,
    state: HoldState,
    *,
    at_ms: int,
    by: str,
    note: str | None = None,
) -> Hold:
    """The hold released or revoked at `at_ms`, if it exists and is still held then (else
    HoldError): both books' `resolve` and `revoke_pending` store what this returns."""
    if hold is None:
        raise HoldError(hold_id, "no such hold", 404)
    current = hold.as_of(at_ms)
    if current.state != "held":
        raise HoldError(hold_id, f"already {current.state} ({current.resolved_by})", 409)
    return msgspec.structs.replace(hold, state=state, resolved_ts=at_ms, resolved_by=by, note=note)


def expire_due(
    book: HoldBook,
    now_ms: int,
    announce: Callable[[Hold], None],
    recorded: Callable[[Hold], None],
    limit: int = 1000,
) -> list[Hold]:
    """Record the holds whose release time has passed as released by expiry, each once.

    `announce(hold)` runs first, with the hold as it will be stored: it must write what
    tells others (webhooks) idempotently, so that a crash before the hold is stored is
    repaired by the next run, which finds the hold still due and announces it again under
    the same delivery ids. `recorded(hold)` runs after the hold is stored, once per hold
    this run expired. Returns those holds."""
    done = []
    for hold in book.due(now_ms, limit):
        released = hold.as_of(now_ms)
        announce(released)
        if book.expire(hold.hold_id, now_ms) is not None:
            recorded(released)
            done.append(released)
    return done


def expired(hold: Hold | None, now_ms: int) -> Hold | None:
    """`hold` released by expiry if it is stored as held and due at `now_ms`, else None."""
    if hold is None or hold.state != "held" or now_ms < hold.release_ts:
        return None
    return hold.as_of(now_ms)


class DueIndex:
    """Release times of the holds that may still be held, earliest first (a heap), so
    finding the due ones costs only them. Built from the book's holds on first use;
    entries of holds resolved since are dropped as they come up."""

    def __init__(self, load: Callable[[], Iterable[Hold]]) -> None:
        self._load = load
        self._heap: list[tuple[int, str]] | None = None

    def add(self, hold: Hold) -> None:
        if self._heap is not None and hold.state == "held":
            heapq.heappush(self._heap, (hold.release_ts, hold.hold_id))

    def due(self, now_ms: int, limit: int, get: Callable[[str], Hold | None]) -> list[Hold]:
        """The held holds due at `now_ms` (at most `limit`), read through `get`; they stay
        in the index until a later call finds them resolved."""
        if self._heap is None:
            self._heap = [(h.release_ts, h.hold_id) for h in self._load() if h.state == "held"]
            heapq.heapify(self._heap)
        heap = self._heap
        found: list[Hold] = []
        while heap and heap[0][0] <= now_ms and len(found) < limit:
            _, hold_id = heapq.heappop(heap)
            hold = get(hold_id)
            if hold is not None and hold.state == "held":
                found.append(hold)
        for hold in found:  # kept until expired: a failed expiry is tried again
            heapq.heappush(heap, (hold.release_ts, hold.hold_id))
        return found


class MemoryHoldBook:
    def __init__(self) -> None:
        self._holds: dict[str, Hold] = {}
        self._by_user: dict[str, list[str]] = {}
        self._due = DueIndex(lambda: list(self._holds.values()))

    def place(self, hold: Hold) -> None:
        if hold.hold_id in self._holds:
            return
        self._holds[hold.hold_id] = hold
        self._due.add(hold)
        if hold.user_id is not None:
            self._by_user.setdefault(hold.user_id, []).append(hold.hold_id)

    def due(self, now_ms: int, limit: int) -> list[Hold]:
        return self._due.due(now_ms, limit, self._holds.get)

    def expire(self, hold_id: str, now_ms: int) -> Hold | None:
        done = expired(self._holds.get(hold_id), now_ms)
        if done is not None:
            self._holds[hold_id] = done
        return done

    def get(self, hold_id: str) -> Hold | None:
        return self._holds.get(hold_id)

    def find(
        self, *, user_id: str | None = None, state: HoldState | None = None, now_ms: int, limit: int
    ) -> list[Hold]:
        ids = self._by_user.get(user_id, []) if user_id is not None else list(self._holds)
        holds = [self._holds[i].as_of(now_ms) for i in ids]
        holds.sort(key=lambda h: (h.placed_ts, h.hold_id), reverse=True)
        return [h for h in holds if state is None or h.state == state][:limit]

    def resolve(
        self, hold_id: str, state: HoldState, *, at_ms: int, by: str, note: str | None = None
    ) -> Hold:
        done = resolved(self._holds.get(hold_id), hold_id, state, at_ms=at_ms, by=by, note=note)
        self._holds[hold_id] = done
        return done

    def revoke_pending(self, user_id: str, *, at_ms: int, by: str, note: str) -> list[Hold]:
        revoked = []
        for hold_id in self._by_user.get(user_id, ()):
            hold = self._holds[hold_id]
            if hold.placed_ts <= at_ms and hold.as_of(at_ms).state == "held":
                revoked.append(self.resolve(hold_id, "revoked", at_ms=at_ms, by=by, note=note))
        return revoked

    def flush(self) -> None:
        return None

    def discard_pending(self) -> None:
        """Nothing is queued: a hold is kept when it is placed."""

    def close(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS holds (
    hold_id   TEXT PRIMARY KEY,
    user_id   TEXT,
    placed_ts INTEGER NOT NULL,
    body      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_user ON holds (user_id, placed_ts);
"""
_UPSERT = (
    "INSERT INTO holds (hold_id, user_id, placed_ts, body) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (hold_id) DO UPDATE SET body = excluded.body"
)
"""A queued hold is new or a revocation of one: either way its latest body is written."""
HoldRows = list[tuple[str, str | None, int, bytes]]


class SQLiteHoldBook:
    """Holds in a `holds` table (WAL). New holds, and revocations by an owner's report,
    are queued and written with the events that caused them: `in_event_log` keeps the
    table in the event log's database and writes the queue inside the event log's own
    transaction, so an event, its decision and its hold are durable together or not at
    all (an exit between two commits used to lose a hold forever), and a report whose
    commit fails revokes nothing. A standalone book (`SQLiteHoldBook(path)`) commits its
    queue at its own `flush`. A revocation or release by staff or the customer
    (`resolve`) or by expiry is committed at once: it is acknowledged. Reads see queued
    and sealed holds too (sealed: handed to an event-log commit not yet acknowledged)."""

    def __init__(
        self, path: Path | None = None, *, db: "sqlite3.Connection | _Postgres | None" = None
    ) -> None:
        if db is None:
            if path is None:
                raise ValueError("SQLiteHoldBook needs a path or a connection")
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        self._db: Any = db
        """sqlite3, or a psycopg connection behind `_Postgres` (the same calls)."""
        self._owns_db = path is not None
        """A standalone book commits (and closes) its own database."""
        self._db.executescript(_SCHEMA)
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder(Hold).decode
        self._queued: dict[str, Hold] = {}
        self._sealed: list[dict[str, Hold]] = []
        """Queues handed to event-log commits not yet acknowledged, oldest first."""
        self._due = DueIndex(self._all)

    def _pending(self) -> dict[str, Hold]:
        """Every hold written by no commit yet, the newest version of each."""
        pending: dict[str, Hold] = {}
        for queue in [*self._sealed, self._queued]:
            pending.update(queue)
        return pending

    def _all(self) -> Iterator[Hold]:
        """Every hold, stored and pending (to build the due index once)."""
        pending = self._pending()
        for (body,) in self._db.execute("SELECT body FROM holds"):
            hold = self._decode(body)
            if hold.hold_id not in pending:
                yield hold
        yield from list(pending.values())

    def due(self, now_ms: int, limit: int) -> list[Hold]:
        return self._due.due(now_ms, limit, self.get)

    def expire(self, hold_id: str, now_ms: int) -> Hold | None:
        """Store a due hold as released by expiry; committed at once, as `resolve` is."""
        done = expired(self.get(hold_id), now_ms)
        if done is not None:
            self._store(done)
        return done

    @classmethod
    def in_event_log(cls, recorder: "SQLiteRecorder") -> "SQLiteHoldBook":
        """A book in the recorder's database whose new holds commit with their events."""
        book = cls(db=recorder.connection)
        recorder.companions.append(book)
        return book

    def migrate_from(self, old: Path) -> int:
        """Copy the holds of a separate `holds.db` (the earlier layout) into this table,
        keeping any hold already here; returns how many were copied."""
        before = self._db.execute("SELECT COUNT(*) FROM holds").fetchone()[0]
        self._db.execute("ATTACH DATABASE ? AS old_holds", (str(old),))
        try:
            self._db.execute(
                "INSERT OR IGNORE INTO holds SELECT hold_id, user_id, placed_ts, body "
                "FROM old_holds.holds"
            )
        finally:
            self._db.execute("DETACH DATABASE old_holds")
        after = self._db.execute("SELECT COUNT(*) FROM holds").fetchone()[0]
        return int(after - before)

    def place(self, hold: Hold) -> None:
        if hold.hold_id not in self._queued:
            self._queued[hold.hold_id] = hold
            self._due.add(hold)

    def _rows(self, queue: dict[str, Hold]) -> HoldRows:
        return [(h.hold_id, h.user_id, h.placed_ts, self._encode(h)) for h in queue.values()]

    def seal(self) -> Callable[[sqlite3.Connection], None]:
        """Hand the queue to the event log's next commit (a companion): returns what
        writes it inside that commit's transaction, from rows encoded now."""
        rows = self._rows(self._queued)
        self._sealed.append(self._queued)
        self._queued = {}
        return partial(_write_rows, rows)

    def committed(self) -> None:
        self._sealed.pop(0)

    def flush(self) -> None:
        """A standalone book commits its queue; one in the event log has nothing to do
        (the recorder wrote it with the events)."""
        if not self._queued or not self._owns_db:
            return
        with self._db:  # one transaction
            self._db.execute("BEGIN")
            _write_rows(self._rows(self._queued), self._db)
        self._queued.clear()

    def discard_pending(self) -> None:
        """Forget queued and sealed holds (their events were not recorded: a failed
        request, or a failed group commit)."""
        self._queued.clear()
        self._sealed.clear()

    def get(self, hold_id: str) -> Hold | None:
        for queue in [self._queued, *reversed(self._sealed)]:
            pending = queue.get(hold_id)
            if pending is not None:
                return pending
        row = self._db.execute("SELECT body FROM holds WHERE hold_id = ?", (hold_id,)).fetchone()
        return None if row is None else self._decode(row[0])

    def find(
        self, *, user_id: str | None = None, state: HoldState | None = None, now_ms: int, limit: int
    ) -> list[Hold]:
        query, args = "SELECT body FROM holds", []
        if user_id is not None:
            query, args = query + " WHERE user_id = ?", [user_id]
        query += " ORDER BY placed_ts DESC, hold_id DESC"
        pending = self._pending()
        newer = [h for h in pending.values() if user_id is None or h.user_id == user_id]
        newer.sort(key=lambda h: (h.placed_ts, h.hold_id), reverse=True)
        out: list[Hold] = []
        stored = (self._decode(body) for (body,) in self._db.execute(query, args))
        rows = (hold for hold in stored if hold.hold_id not in pending)
        for hold in _merged(newer, rows):
            hold = hold.as_of(now_ms)
            if state is None or hold.state == state:
                out.append(hold)
                if len(out) == limit:
                    break
        return out

    def resolve(
        self, hold_id: str, state: HoldState, *, at_ms: int, by: str, note: str | None = None
    ) -> Hold:
        done = resolved(self.get(hold_id), hold_id, state, at_ms=at_ms, by=by, note=note)
        self._store(done)
        return done

    def _store(self, hold: Hold) -> None:
        """Commit a resolution at once, or queue it if the hold itself is not yet written
        (it will be, resolved). The engine settles a group commit before a resolution, so
        on the HTTP path the hold is in the table."""
        if hold.hold_id in self._pending():
            self._queued[hold.hold_id] = hold
            return
        self._db.execute(
            "UPDATE holds SET body = ? WHERE hold_id = ?", (self._encode(hold), hold.hold_id)
        )

    def revoke_pending(self, user_id: str, *, at_ms: int, by: str, note: str) -> list[Hold]:
        """Queued with the report's event: its commit makes the revocations durable, and
        a failed one forgets them (issue 14: a refused event changes nothing)."""
        rows = self._db.execute(
            "SELECT body FROM holds WHERE user_id = ? AND placed_ts <= ?", (user_id, at_ms)
        ).fetchall()
        candidates = {hold.hold_id: hold for hold in (self._decode(body) for (body,) in rows)}
        for hold in self._pending().values():
            if hold.user_id == user_id and hold.placed_ts <= at_ms:
                candidates[hold.hold_id] = hold
        revoked = []
        for hold in candidates.values():
            if hold.as_of(at_ms).state == "held":
                done = resolved(hold, hold.hold_id, "revoked", at_ms=at_ms, by=by, note=note)
                self._queued[done.hold_id] = done
                revoked.append(done)
        return revoked

    def close(self) -> None:
        self.flush()
        if self._owns_db:
            self._db.close()


def _write_rows(rows: HoldRows, db: "sqlite3.Connection | _Postgres") -> None:
    db.executemany(_UPSERT, rows)


class PostgresHoldBook(SQLiteHoldBook):
    """The hold book of scaled-out workers: a `holds` table beside the Postgres event log,
    its queue written inside the log's commits, as the SQLite book's is (`in_event_log`).
    Every worker reads every worker's holds from the table; each worker's due index
    holds what it loaded at start and what it placed since, so a hold is released by
    expiry on the worker that placed it (or on any worker started after it was placed)."""

    @classmethod
    def in_postgres_log(cls, recorder: "PostgresRecorder") -> "PostgresHoldBook":
        book = cls(db=_Postgres(lambda: recorder.connection))
        recorder.companions.append(book)
        return book

    def seal(self) -> "Callable[[Any], None] | None":  # type: ignore[override]
        """The queue, for the log's next commit; None when empty (the log then commits a
        small batch as one statement), the empty queue still sealed for `committed`."""
        rows = self._rows(self._queued)
        self._sealed.append(self._queued)
        self._queued = {}
        return partial(_write_pg_rows, rows) if rows else None


def _write_pg_rows(rows: HoldRows, db: Any) -> None:
    """Rows into the Postgres log's open transaction (`db`: its psycopg connection)."""
    _write_rows(rows, _Postgres(lambda: db))


class _Postgres:
    """The sqlite3 calls the hold book makes, on a psycopg connection: `?` placeholders
    as `%s`, SQLite's column types as Postgres' (epoch ms need BIGINT). The connection is
    asked for at each call: the log opens a new one after the server dropped its own."""

    def __init__(self, connection: Callable[[], Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, args: Iterable[Any] = ()) -> Any:
        return self._connection().execute(sql.replace("?", "%s"), list(args))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        with self._connection().cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), [list(row) for row in rows])

    def executescript(self, script: str) -> None:
        script = script.replace("BLOB", "BYTEA").replace("INTEGER", "BIGINT")
        for statement in script.split(";"):
            if statement.strip():
                self._connection().execute(statement)


def _merged(newer: list[Hold], older: Iterator[Hold]) -> Iterator[Hold]:
    """Two newest-first sequences as one (queued holds are newer than stored ones, but
    placement times need not be)."""
    pending = list(newer)
    for hold in older:
        while pending and (pending[0].placed_ts, pending[0].hold_id) > (
            hold.placed_ts,
            hold.hold_id,
        ):
            yield pending.pop(0)
        yield hold
    yield from pending
