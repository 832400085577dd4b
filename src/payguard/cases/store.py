"""The case store: cases, alerts, notes, attachments, history and entity controls, in
embedded SQLite (the default, `cases.db` in the data directory) or Postgres
(`PAYGUARD_CASES_DSN`), behind one class and one contract test suite.

The two differ only in their DDL and placeholders (`Dialect`); every query is the same
SQL. Each case row keeps the columns queues filter and order by, and the whole `Case` as
JSON (`body`), so adding a field to `Case` needs no migration. One open (not closed) case
per (queue, entity) is enforced by a partial unique index, so two processes filing alerts
for one entity cannot open two cases.

Pages are keyset-paginated: the cursor is the last row's (order key, case_id), compared as
a row value in the order's direction (ties broken by case_id the same way), so a page is
an index range scan on (queue, status, key, case_id) however deep it is (100,000 cases:
docs/cases.md).
"""

import base64
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import msgspec

from payguard.cases.types import (
    ActionRecord,
    Alert,
    Attachment,
    Case,
    CaseError,
    CasePage,
    CaseQuery,
    Note,
    QueueSummary,
)
from payguard.types import EpochMs

CASES_DB: Final = "cases.db"
DSN_ENV: Final = "PAYGUARD_CASES_DSN"
ControlKind = Literal["block", "step_up", "snooze_rule"]


class Control(msgspec.Struct, frozen=True):
    """An analyst's control on one entity, read on the decision path (cases.controls):
    `rule` only for `snooze_rule`; live until `until_ts` (None: until lifted)."""

    control_id: str
    kind: ControlKind
    entity_kind: str
    entity_id: str
    case_id: str
    created_ts: EpochMs
    rule: str | None = None
    until_ts: EpochMs | None = None


_ORDER: Final[dict[str, tuple[str, str]]] = {
    "time_left": ("due_ts", "ASC"),
    "score": ("score", "DESC"),
    "amount": ("amount", "DESC"),
    "newest": ("opened_ts", "DESC"),
}
_CASE_COLUMNS: Final = (
    "case_id, queue, entity_kind, entity_id, status, opened_ts, updated_ts, due_ts, score, "
    "amount, held, assignee, body"
)
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY, queue TEXT NOT NULL, entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL, status TEXT NOT NULL, opened_ts BIGINT NOT NULL,
    updated_ts BIGINT NOT NULL, due_ts BIGINT NOT NULL, score INTEGER NOT NULL,
    amount BIGINT NOT NULL, held BIGINT NOT NULL, assignee TEXT, body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS cases_one_open
    ON cases (queue, entity_kind, entity_id) WHERE status <> 'closed';
CREATE INDEX IF NOT EXISTS cases_due ON cases (queue, status, due_ts, case_id);
CREATE INDEX IF NOT EXISTS cases_score ON cases (queue, status, score, case_id);
CREATE INDEX IF NOT EXISTS cases_amount ON cases (queue, status, amount, case_id);
CREATE INDEX IF NOT EXISTS cases_opened ON cases (queue, status, opened_ts, case_id);
CREATE INDEX IF NOT EXISTS cases_status_due ON cases (status, due_ts, case_id);
CREATE INDEX IF NOT EXISTS cases_status_score ON cases (status, score, case_id);
CREATE INDEX IF NOT EXISTS cases_status_amount ON cases (status, amount, case_id);
CREATE INDEX IF NOT EXISTS cases_status_opened ON cases (status, opened_ts, case_id);
CREATE INDEX IF NOT EXISTS cases_summary ON cases (status, queue, opened_ts, held);
CREATE INDEX IF NOT EXISTS cases_entity ON cases (entity_kind, entity_id);
CREATE INDEX IF NOT EXISTS cases_assignee ON cases (assignee, status);
CREATE TABLE IF NOT EXISTS case_alerts (
    alert_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, ts BIGINT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS case_alerts_case ON case_alerts (case_id, ts);
CREATE TABLE IF NOT EXISTS case_notes (
    note_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, ts BIGINT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS case_notes_case ON case_notes (case_id, ts);
CREATE TABLE IF NOT EXISTS case_attachments (
    attachment_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, ts BIGINT NOT NULL,
    body TEXT NOT NULL, data {blob} NOT NULL
);
CREATE INDEX IF NOT EXISTS case_attachments_case ON case_attachments (case_id, ts);
CREATE TABLE IF NOT EXISTS case_history (
    seq {serial}, case_id TEXT NOT NULL, ts BIGINT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS case_history_case ON case_history (case_id, seq);
CREATE TABLE IF NOT EXISTS case_controls (
    control_id TEXT PRIMARY KEY, entity_kind TEXT NOT NULL, entity_id TEXT NOT NULL,
    body TEXT NOT NULL
);
"""


class Dialect(msgspec.Struct, frozen=True):
    """What differs between the two databases."""

    name: str
    blob: str
    serial: str
    placeholder: str

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


SQLITE: Final = Dialect("sqlite", "BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT", "?")
POSTGRES: Final = Dialect("postgres", "BYTEA", "BIGSERIAL PRIMARY KEY", "%s")


class CaseStore(Protocol):
    """What `CaseService` needs from storage (one implementation, two dialects)."""

    def open_case(self, queue: str, entity_kind: str, entity_id: str) -> Case | None: ...
    def get(self, case_id: str) -> Case | None: ...
    def put(self, case: Case) -> None: ...
    def put_many(self, cases: Sequence[Case]) -> None: ...
    def batch(self) -> AbstractContextManager[None]: ...
    def claim(self, case_id: str, assignee: str, case: Case) -> bool: ...
    def find(self, query: CaseQuery) -> CasePage: ...
    def assigned(self, assignee: str) -> int: ...
    def due_snoozed(self, now_ms: EpochMs) -> list[Case]: ...
    def holding_money_due(self, horizon_ms: EpochMs) -> list[Case]: ...
    def cases_of(self, entity_kind: str, entity_id: str) -> list[Case]: ...
    def add_alert(self, case_id: str, alert: Alert) -> bool: ...
    def alerts(self, case_id: str) -> list[Alert]: ...
    def add_note(self, note: Note) -> None: ...
    def notes(self, case_id: str) -> list[Note]: ...
    def add_attachment(self, meta: Attachment, data: bytes) -> None: ...
    def attachments(self, case_id: str) -> list[Attachment]: ...
    def attachment_data(self, case_id: str, attachment_id: str) -> bytes | None: ...
    def add_history(self, record: ActionRecord) -> None: ...
    def history(self, case_id: str) -> list[ActionRecord]: ...
    def put_control(self, control: Control) -> None: ...
    def delete_control(self, control_id: str) -> None: ...
    def controls(self) -> list[Control]: ...
    def queues(self) -> list[QueueSummary]: ...
    def close(self) -> None: ...


class SqlCaseStore:
    """The case store over one DB-API connection (sqlite3 or psycopg), serialised by a
    lock; every write is its own committed transaction."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._db = connection
        self._dialect = dialect
        self._lock = threading.RLock()
        self._batch_depth = 0
        """Open `batch` blocks: writes inside one are savepoints of its transaction."""
        schema = _SCHEMA.replace("{blob}", dialect.blob).replace("{serial}", dialect.serial)
        with self._tx() as cur:
            for statement in schema.split(";"):
                if statement.strip():
                    cur.execute(statement)

    @classmethod
    def sqlite(cls, path: Path) -> "SqlCaseStore":
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        return cls(db, SQLITE)

    @classmethod
    def postgres(cls, dsn: str, *, schema: str | None = None) -> "SqlCaseStore":
        """A store in Postgres at `dsn` (psycopg 3), in `schema` if given (created)."""
        import psycopg

        db = psycopg.connect(dsn, autocommit=True)
        db.execute("SET jit = off")  # its compile time (~200 ms) dwarfs these short queries
        if schema is not None:
            db.execute(f'CREATE SCHEMA IF NOT EXISTS "{_identifier(schema)}"')
            db.execute(f'SET search_path TO "{_identifier(schema)}"')
        return cls(db, POSTGRES)

    @classmethod
    def open(cls, data_dir: Path, dsn: str | None) -> "SqlCaseStore":
        """Postgres when `dsn` is set (PAYGUARD_CASES_DSN), else SQLite in `data_dir`."""
        return cls.postgres(dsn) if dsn else cls.sqlite(data_dir / CASES_DB)

    # -- cases -----------------------------------------------------------------------------

    def open_case(self, queue: str, entity_kind: str, entity_id: str) -> Case | None:
        rows = self._rows(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE queue = ? AND entity_kind = ? "
            "AND entity_id = ? AND status <> 'closed'",
            (queue, entity_kind, entity_id),
        )
        return _case(rows[0]) if rows else None

    def get(self, case_id: str) -> Case | None:
        rows = self._rows(f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = ?", (case_id,))
        return _case(rows[0]) if rows else None

    def put(self, case: Case) -> None:
        """Insert or replace the case (CaseError 409 if it would be a second open case of
        its entity in its queue)."""
        values = _case_values(case)
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM cases WHERE case_id = ?"), (case.case_id,))
            try:
                cur.execute(
                    self._sql(f"INSERT INTO cases ({_CASE_COLUMNS}) VALUES ({_marks(13)})"),
                    values,
                )
            except Exception as exc:
                if "unique" in str(exc).lower():
                    raise CaseError("case_id", "the entity has an open case already", 409) from exc
                raise

    def put_many(self, cases: Sequence[Case]) -> None:
        """Insert many new cases in one transaction (an import, a benchmark's fill)."""
        sql = self._sql(f"INSERT INTO cases ({_CASE_COLUMNS}) VALUES ({_marks(13)})")
        with self._tx() as cur:
            cur.executemany(sql, [_case_values(case) for case in cases])
        self._execute("ANALYZE cases", ())  # the planner's statistics, stale after a bulk fill

    def claim(self, case_id: str, assignee: str, case: Case) -> bool:
        """Write `case` (claimed by `assignee`) only if nobody has the case now."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "UPDATE cases SET assignee = ?, status = ?, updated_ts = ?, body = ? "
                    "WHERE case_id = ? AND assignee IS NULL"
                ),
                (assignee, case.status, case.updated_ts, _json(case), case_id),
            )
            return bool(cur.rowcount == 1)

    def find(self, query: CaseQuery) -> CasePage:
        column, direction = _ORDER[query.order]
        clauses, args = _filters(query)
        if query.cursor is not None:
            key, last_id = _decode_cursor(query.cursor)
            op = ">" if direction == "ASC" else "<"
            clauses.append(f"({column}, case_id) {op} (?, ?)")
            args += [key, last_id]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"SELECT {_CASE_COLUMNS} FROM cases {where} "
            f"ORDER BY {column} {direction}, case_id {direction} LIMIT ?"
        )
        rows = self._rows(sql, (*args, query.limit + 1))
        cases = [_case(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        cursor = _encode_cursor(cases[-1], column) if more and cases else None
        return CasePage(cases, cursor)

    def assigned(self, assignee: str) -> int:
        rows = self._rows(
            "SELECT COUNT(*) FROM cases WHERE assignee = ? AND status = 'investigating'",
            (assignee,),
        )
        return int(rows[0][0])

    def due_snoozed(self, now_ms: EpochMs) -> list[Case]:
        rows = self._rows(f"SELECT {_CASE_COLUMNS} FROM cases WHERE status = 'snoozed'", ())
        return [c for c in map(_case, rows) if (c.snoozed_until or 0) <= now_ms]

    def holding_money_due(self, horizon_ms: EpochMs) -> list[Case]:
        """The cases not closed that hold money and are due by `horizon_ms`, earliest first:
        only those, so the server's once-a-second SLA look reads nothing else (an index
        range per status, not pages of every open case)."""
        rows = self._rows(
            f"SELECT {_CASE_COLUMNS} FROM cases "
            "WHERE status IN ('open', 'investigating', 'snoozed') AND due_ts <= ? AND held > 0 "
            "ORDER BY due_ts, case_id",
            (horizon_ms,),
        )
        return [_case(row) for row in rows]

    def cases_of(self, entity_kind: str, entity_id: str) -> list[Case]:
        rows = self._rows(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE entity_kind = ? AND entity_id = ? "
            "ORDER BY opened_ts, case_id",
            (entity_kind, entity_id),
        )
        return [_case(row) for row in rows]

    def queues(self) -> list[QueueSummary]:
        rows = self._rows(
            "SELECT queue, status, COUNT(*), MIN(opened_ts), SUM(held) FROM cases "
            "WHERE status IN ('open', 'investigating', 'snoozed') "
            "GROUP BY queue, status ORDER BY queue",
            (),
        )
        summary: dict[str, dict[str, Any]] = {}
        for queue, status, count, oldest, held in rows:
            entry = summary.setdefault(queue, {"oldest": None, "held": 0})
            entry[status] = int(count)
            if status == "open" and oldest is not None:
                entry["oldest"] = int(oldest)
            entry["held"] += int(held or 0)
        return [
            QueueSummary(
                queue=queue,
                open=entry.get("open", 0),
                investigating=entry.get("investigating", 0),
                snoozed=entry.get("snoozed", 0),
                oldest_open_ts=entry["oldest"],
                held=entry["held"],
            )
            for queue, entry in summary.items()
        ]

    # -- what hangs off a case -------------------------------------------------------------

    def add_alert(self, case_id: str, alert: Alert) -> bool:
        """File the alert in the case; False (and nothing written) if it was filed before."""
        with self._tx() as cur:
            cur.execute(
                self._sql("SELECT 1 FROM case_alerts WHERE alert_id = ?"), (alert.alert_id,)
            )
            if cur.fetchone() is not None:
                return False
            cur.execute(
                self._sql("INSERT INTO case_alerts VALUES (?,?,?,?)"),
                (alert.alert_id, case_id, alert.ts, _json(alert)),
            )
            return True

    def alerts(self, case_id: str) -> list[Alert]:
        return self._bodies("case_alerts", case_id, Alert)

    def add_note(self, note: Note) -> None:
        self._execute(
            "INSERT INTO case_notes VALUES (?,?,?,?)",
            (note.note_id, note.case_id, note.ts, _json(note)),
        )

    def notes(self, case_id: str) -> list[Note]:
        return self._bodies("case_notes", case_id, Note)

    def add_attachment(self, meta: Attachment, data: bytes) -> None:
        self._execute(
            "INSERT INTO case_attachments VALUES (?,?,?,?,?)",
            (meta.attachment_id, meta.case_id, meta.ts, _json(meta), data),
        )

    def attachments(self, case_id: str) -> list[Attachment]:
        return self._bodies("case_attachments", case_id, Attachment)

    def attachment_data(self, case_id: str, attachment_id: str) -> bytes | None:
        rows = self._rows(
            "SELECT data FROM case_attachments WHERE case_id = ? AND attachment_id = ?",
            (case_id, attachment_id),
        )
        return bytes(rows[0][0]) if rows else None

    def add_history(self, record: ActionRecord) -> None:
        self._execute(
            "INSERT INTO case_history (case_id, ts, body) VALUES (?,?,?)",
            (record.case_id, record.ts, _json(record)),
        )

    def history(self, case_id: str) -> list[ActionRecord]:
        rows = self._rows(
            "SELECT body FROM case_history WHERE case_id = ? ORDER BY seq", (case_id,)
        )
        return [msgspec.json.decode(row[0], type=ActionRecord) for row in rows]

    # -- controls --------------------------------------------------------------------------

    def put_control(self, control: Control) -> None:
        with self._tx() as cur:
            cur.execute(
                self._sql("DELETE FROM case_controls WHERE control_id = ?"), (control.control_id,)
            )
            cur.execute(
                self._sql("INSERT INTO case_controls VALUES (?,?,?,?)"),
                (control.control_id, control.entity_kind, control.entity_id, _json(control)),
            )

    def delete_control(self, control_id: str) -> None:
        self._execute("DELETE FROM case_controls WHERE control_id = ?", (control_id,))

    def controls(self) -> list[Control]:
        rows = self._rows("SELECT body FROM case_controls ORDER BY control_id", ())
        return [msgspec.json.decode(row[0], type=Control) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals -------------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        return self._dialect.sql(text)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write inside in one transaction, so one commit (one fsync with SQLite's
        `synchronous=FULL`) for all: the alerts that one group commit raises are filed on
        the event loop's thread, and a commit each stopped the loop for an fsync per
        alert (issue 16). A write that fails inside rolls back to where it began (a
        savepoint), as it would alone; the others stay. The lock is held throughout."""
        with self._lock:
            if self._batch_depth:
                self._batch_depth += 1
                try:
                    yield
                finally:
                    self._batch_depth -= 1
                return
            cur = self._db.cursor()
            cur.execute("BEGIN")
            self._batch_depth = 1
            try:
                yield
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                self._batch_depth = 0
            cur.execute("COMMIT")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction on a cursor, under the lock (inside `batch`: a savepoint)."""
        with self._lock:
            cur = self._db.cursor()
            begin, commit, rollback = (
                ("SAVEPOINT w", "RELEASE w", "ROLLBACK TO w; RELEASE w")
                if self._batch_depth
                else ("BEGIN", "COMMIT", "ROLLBACK")
            )
            cur.execute(begin)
            try:
                yield cur
            except BaseException:
                for statement in rollback.split("; "):
                    cur.execute(statement)
                raise
            cur.execute(commit)

    def _execute(self, sql: str, args: Sequence[Any]) -> None:
        with self._tx() as cur:
            cur.execute(self._sql(sql), args)

    def _rows(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._db.cursor()
            cur.execute(self._sql(sql), args)
            return list(cur.fetchall())

    def _bodies(self, table: str, case_id: str, type_: Callable[..., Any]) -> list[Any]:
        rows = self._rows(f"SELECT body FROM {table} WHERE case_id = ? ORDER BY ts", (case_id,))
        return [msgspec.json.decode(row[0], type=type_) for row in rows]


def _json(value: msgspec.Struct) -> str:
    return msgspec.json.encode(value).decode()


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _case_values(case: Case) -> tuple[Any, ...]:
    return (
        case.case_id,
        case.queue,
        case.entity_kind,
        case.entity_id,
        case.status,
        case.opened_ts,
        case.updated_ts,
        case.due_ts,
        case.score,
        case.amount,
        case.held,
        case.assignee,
        _json(case),
    )


def _case(row: tuple[Any, ...]) -> Case:
    return msgspec.json.decode(row[-1], type=Case)


def _filters(query: CaseQuery) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("queue", query.queue),
        ("status", query.status),
        ("entity_kind", query.entity_kind),
        ("entity_id", query.entity_id),
        ("assignee", query.assignee),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return clauses, args


def _encode_cursor(case: Case, column: str) -> str:
    key = msgspec.structs.asdict(case)[column]
    raw = msgspec.json.encode([key, case.case_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    """The (order key, case_id) of a cursor, or CaseError naming `cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key, case_id = msgspec.json.decode(base64.urlsafe_b64decode(padded), type=tuple[int, str])
    except (ValueError, msgspec.DecodeError):
        raise CaseError("cursor", "not a cursor this server gave out") from None
    return key, case_id


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain schema name: {name!r}")
    return name
